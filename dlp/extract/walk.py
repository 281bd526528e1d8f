"""The walker: sniff a node's type, hand it to the handler for that type, and turn every
failure into a flagged part, so that hostile content never raises out of extraction.

Handlers are generators of parts; containers call `ctx.descend(child)` for each member,
which comes back here, one level deeper.

The caller's declared type is trusted in one case only: an item declared
`message/rfc822` (the relay's messages) that sniffs as text or HTML is read as mail, so
a message with few headers still has its base64 and quoted-printable parts decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from dlp.extract import archive, cms, documents, mail, ole, text, tnef
from dlp.extract.node import CORRUPT, ENCRYPTED, LIMIT_DEPTH, UNSUPPORTED, Context, LimitReached, Node
from dlp.extract.sniff import HEAD_BYTES, Kind, sniff
from dlp.model import Part

__all__ = ["HANDLERS", "walk"]

Handler = Callable[[Node, Context], Iterator[Part]]


def _empty(node: Node, ctx: Context) -> Iterator[Part]:
    yield node.part("")


def _encrypted(node: Node, ctx: Context) -> Iterator[Part]:
    yield node.part("", (ENCRYPTED,))


HANDLERS: dict[str, Handler] = {
    Kind.TEXT: text.read_text,
    Kind.CSV: text.read_csv,
    Kind.HTML: text.read_html,
    Kind.JSON: text.read_json,
    Kind.XML: text.read_xml,
    Kind.RTF: documents.read_rtf,
    Kind.PDF: documents.read_pdf,
    Kind.EMAIL: mail.read_email,
    Kind.ZIP: archive.read_zip,
    Kind.TAR: archive.read_tar,
    Kind.GZIP: lambda node, ctx: archive.read_compressed(node, ctx, Kind.GZIP),
    Kind.BZIP2: lambda node, ctx: archive.read_compressed(node, ctx, Kind.BZIP2),
    Kind.XZ: lambda node, ctx: archive.read_compressed(node, ctx, Kind.XZ),
    Kind.SEVENZIP: archive.read_7z,
    Kind.OLE: ole.read_ole,
    Kind.CMS: cms.read_cms,
    Kind.TNEF: tnef.read_tnef,
    Kind.EMPTY: _empty,
    Kind.ENCRYPTED: _encrypted,
}


_DECLARED_MAIL = "message/rfc822"


def walk(node: Node, ctx: Context) -> Iterator[Part]:
    """Every part of `node`, flagged where a limit, encryption or damage stopped reading."""
    try:
        if node.depth > ctx.limits.max_depth:
            yield node.part("", (LIMIT_DEPTH,))
            return
        ctx.check_time()
        kind, mime = sniff(node.blob.head(HEAD_BYTES), node.name)
        if node.depth == 0 and node.mime == _DECLARED_MAIL and kind in (Kind.TEXT, Kind.HTML):
            kind, mime = Kind.EMAIL, _DECLARED_MAIL
        node = replace(node, mime=mime)
        handler = HANDLERS.get(kind)
        if handler is None:
            yield node.part("", (UNSUPPORTED,))
            return
        yield from handler(node, ctx)
    except LimitReached as hit:
        yield node.part("", (hit.flag,))
    except Exception:
        yield node.part("", (CORRUPT,))
