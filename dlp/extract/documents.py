"""Documents: the PDF text layer (pypdf, whose calls run under the item's time limit
since it is pure Python and may be slow on hostile input) and RTF (our own tokenizer,
which checks the deadline itself). Inputs larger than the per-member limit are cut and
flagged.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

from dlp.extract.guard import GuardTimeout, time_guard
from dlp.extract.node import CORRUPT, ENCRYPTED, LIMIT_SIZE, LIMIT_TIME, Context, Node
from dlp.extract.rtf import rtf_text
from dlp.extract.text import Chunker, text_parts
from dlp.model import Part

__all__ = ["read_pdf", "read_rtf"]

logging.getLogger("pypdf").setLevel(logging.ERROR)


def read_pdf(node: Node, ctx: Context) -> Iterator[Part]:
    """The text layer of every page, as one part (chunked) at the document's location.
    An encrypted PDF that does not open with the empty password is flagged `encrypted`."""
    from pypdf import PdfReader

    mime = "application/pdf"
    if node.blob.size > ctx.limits.max_member_bytes:
        yield node.part("", (LIMIT_SIZE,), mime=mime)
        return
    chunker = Chunker()
    stream = node.blob.stream
    stream.seek(0)
    flags: tuple[str, ...] = ()
    emitted = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with time_guard(ctx.remaining()):
                reader = PdfReader(stream, strict=False)
                if reader.is_encrypted and not reader.decrypt(""):
                    flags = (ENCRYPTED,)
                count = 0 if flags else len(reader.pages)
        except GuardTimeout:
            flags, count = (LIMIT_TIME,), 0
        except Exception:
            flags, count = (CORRUPT,), 0
        for number in range(count):
            try:
                with time_guard(ctx.remaining()):
                    page = reader.pages[number].extract_text() or ""
            except GuardTimeout:
                flags = (LIMIT_TIME,)
                break
            except Exception:
                flags = (CORRUPT,)
                continue
            for offset, chunk in chunker.add(page.rstrip("\n") + "\n\f\n"):
                emitted = True
                yield node.part(chunk, offset=offset, mime=mime)
    for offset, chunk in chunker.finish():
        emitted = True
        yield node.part(chunk, flags, offset=offset, mime=mime)
        flags = ()
    if flags or not emitted:
        yield node.part("", flags, offset=chunker.offset, mime=mime)


def read_rtf(node: Node, ctx: Context) -> Iterator[Part]:
    """RTF text (see `dlp.extract.rtf`); inputs above the per-member limit are cut."""
    raw, flags = ctx.read_capped(node)
    for part in text_parts(node, rtf_text(raw, ctx), mime="text/rtf"):
        yield node.part(part.text, flags, offset=part.offset, mime=part.type) if flags else part
