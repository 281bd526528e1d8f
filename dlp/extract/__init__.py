"""Extraction: any item (bytes or a spool file) -> parts of text, each with a location,
a sniffed type and flags for whatever could not be fully read.

`extract(item, limits)` is a generator: it yields parts lazily (large texts as several
chunks of about 4 MiB with the same location and increasing `offset`), never holds a
whole large item in memory, and never raises on hostile content: damage, encryption,
unknown formats and limits become flags (`corrupt`, `encrypted`, `unsupported`,
`truncated`, `limit:depth|files|size|ratio|time`) on the part concerned. An item with
nothing readable still yields at least one flagged part, so it is never reported clean.

Locations
---------
- A plain item is located by its name, or `item` when it has none: `export.csv`.
- Members of archives (ZIP, TAR, 7z) append `/` and the member's path:
  `customers.zip/2024/export.csv`. A single compressed stream (gzip, bzip2, xz) appends
  its name without the compression suffix (`data.csv.gz/data.csv`); a compressed TAR
  lists its members directly under the compressed file (`backup.tar.gz/etc/x.txt`).
- An email item is `message`; its parts are `message/headers` (Subject, the display
  names of From, To, Cc, Reply-To, Sender, every other field that is not routing or
  transport data, such as `X-Notes`, RFC 2047 decoded, and one `File-Name: NAME` line
  per attachment), `message/body[N]` (inline text and HTML bodies,
  numbered from 1) and `message/attachment[N]:NAME` (everything else, numbered from 1;
  NAME is the decoded file name, or `unnamed`). A message nested in another (attached
  `message/rfc822`, or an .eml inside an archive) puts its parts under its own
  location: `message/attachment[1]:fwd.eml/body[1]`. A file uuencoded in a plain body
  is a member of that body: `message/body[1]/export.csv`.
- Signed data (S/MIME `smime.p7m`, a `.p7m` file) puts its content under its own
  location: a MIME entity as a nested message (`message/attachment[1]:smime.p7m/body[1]`),
  anything else as a member named without `.p7m` (`offer.pdf.p7m/offer.pdf`).
- An Outlook item (.msg) is a file: its parts follow the same scheme under its own
  location, `fwd.msg/headers`, `fwd.msg/body[N]` (the plain body, then the HTML one)
  and `fwd.msg/attachment[N]:NAME`, an embedded Outlook message being a nested one
  (`attachment[N]:message.msg` when it has no file name); attached to a mail it is
  `message/attachment[1]:fwd.msg/body[1]`.
- Outlook's TNEF part (`winmail.dat`, `application/ms-tnef`) is a container under its own
  location: `message/attachment[1]:winmail.dat` (an empty part carrying its flags), its
  body at `message/attachment[1]:winmail.dat/body[1]` (plain, then HTML; the compressed
  RTF one when there is neither) and its attachments at
  `message/attachment[1]:winmail.dat/attachment[N]:NAME`.
- Inside documents `#` names the piece: `report.xlsx#Sheet1` (every sheet, hidden ones
  too, rendered as TSV), `deck.pptx#slide3`, `deck.pptx#notes3`, `letter.docx#comments`,
  `letter.docx#header1`; the main text of a DOCX, ODT, RTF or PDF is at the document's
  own location. Objects embedded in Office files are members: `letter.docx/word/embeddings/x.xlsx`.
- Containers (archives, messages, office files) also yield an empty part at their own
  location, which carries their flags (for example `encrypted` on an encrypted member).
"""

from __future__ import annotations

from collections.abc import Iterator

from dlp.extract.members import location_segment
from dlp.extract.node import CORRUPT, Blob, Context, Node
from dlp.extract.walk import walk
from dlp.model import Item, Limits, Part

__all__ = ["extract"]


def extract(item: Item, limits: Limits) -> Iterator[Part]:
    """Yield every part of `item` within `limits`; never raises on hostile content.

    Why a generator: parts are detected as they come, so memory stays bounded by one
    chunk per nesting level rather than by the item's size.
    """
    location = location_segment(item.name) if item.name else "item"
    try:
        stream = item.open()
        size = item.size
    except Exception:
        yield Part(location, "application/octet-stream", 0, "", (CORRUPT,), item.name)
        return
    with stream:
        ctx = Context(limits, descend=_unset, item_size=size)
        ctx.descend = lambda child: walk(child, ctx)
        root = Node(
            location=location,
            blob=Blob(stream, size),
            name=item.name,
            depth=0,
            mime=item.declared_type or "application/octet-stream",
        )
        emitted = False
        for part in walk(root, ctx):
            emitted = True
            yield part
        if not emitted:
            yield root.part("", (CORRUPT,))


def _unset(node: Node) -> Iterator[Part]:
    raise RuntimeError("context used before the walker was attached")
