"""Text formats: plain text in any encoding, CSV/TSV tables, HTML, JSON and XML.

Everything here streams: bytes are decoded block by block and emitted as chunks of about
`CHUNK_CHARS` characters cut at line ends, each carrying its character offset in the
whole part, so a 1 GiB file never sits in memory.
"""

from __future__ import annotations

import codecs
import csv
import html
import re
from collections.abc import Iterable, Iterator

from defusedxml.ElementTree import DefusedXMLParser

from dlp.extract.encoding import detect_encoding
from dlp.extract.node import BLOCK, Context, LimitReached, Node
from dlp.extract.sniff import HEAD_BYTES
from dlp.model import Part, Table

__all__ = [
    "CHUNK_CHARS",
    "FOLDED_TYPES",
    "Chunker",
    "decoded_blocks",
    "detect_table",
    "html_text",
    "is_folded_directory",
    "read_csv",
    "read_html",
    "read_json",
    "read_text",
    "read_xml",
    "text_parts",
    "unfolded",
]

CHUNK_CHARS = 4 * 1024 * 1024
XML_PARSE_MAX = 32 * 1024 * 1024
MAX_COLUMNS = 1024
MAX_HEADER_CELL = 256
_DELIMITERS = ("\t", ",", ";", "|")


class Chunker:
    """Collects text pieces and hands out chunks of about `size` characters, cut after
    the last line end when there is one, with each chunk's offset in the whole text."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or CHUNK_CHARS
        self.pieces: list[str] = []
        self.pending = 0
        self.offset = 0

    def add(self, text: str) -> Iterator[tuple[int, str]]:
        """Add a piece; yields (offset, chunk) whenever a chunk is full."""
        if not text:
            return
        self.pieces.append(text)
        self.pending += len(text)
        while self.pending >= self.size:
            buffer = "".join(self.pieces)
            cut = buffer.rfind("\n", 0, self.size)
            cut = self.size if cut < 0 else cut + 1
            chunk, rest = buffer[:cut], buffer[cut:]
            self.pieces = [rest] if rest else []
            self.pending = len(rest)
            yield self.offset, chunk
            self.offset += len(chunk)

    def finish(self) -> Iterator[tuple[int, str]]:
        """The last (possibly short) chunk, if any text is left."""
        if self.pending:
            chunk = "".join(self.pieces)
            self.pieces, self.pending = [], 0
            yield self.offset, chunk
            self.offset += len(chunk)


def decoded_blocks(node: Node, ctx: Context) -> Iterator[str]:
    """The node's bytes decoded block by block (encoding chosen from the first bytes and
    the declared charset; invalid bytes replaced), checking the deadline between blocks."""
    stream = node.blob.stream
    encoding = detect_encoding(node.blob.head(HEAD_BYTES), node.charset)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    stream.seek(0)
    while True:
        ctx.check_time()
        data = stream.read(BLOCK * 4)
        if not data:
            break
        yield decoder.decode(data)
    yield decoder.decode(b"", final=True)


def text_parts(
    node: Node, pieces: Iterable[str], table: Table | None = None, mime: str | None = None
) -> Iterator[Part]:
    """Chunk a stream of text pieces into parts of `node`; always at least one part."""
    chunker = Chunker()
    emitted = False
    for piece in pieces:
        for offset, chunk in chunker.add(piece):
            emitted = True
            yield node.part(chunk, offset=offset, table=table, mime=mime)
    for offset, chunk in chunker.finish():
        emitted = True
        yield node.part(chunk, offset=offset, table=table, mime=mime)
    if not emitted:
        yield node.part("", table=table, mime=mime)


def _first_text(node: Node) -> str:
    head = node.blob.head(64 * 1024)
    encoding = detect_encoding(head[:HEAD_BYTES], node.charset)
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)


def detect_table(sample: str, hinted: bool) -> Table | None:
    """The table shape of delimited text from its first lines, or None if it is prose.

    Unhinted text needs at least three complete lines with the same number of fields for
    one delimiter (two or more for tabs, three or more for commas, semicolons and pipes,
    so that prose with a comma per line stays prose); a CSV type or name (`hinted`)
    accepts any delimiter that splits the first line, defaulting to a comma.
    """
    lines = sample.splitlines()
    if len(sample) >= 64 * 1024 and lines:
        lines = lines[:-1]
    lines = [line for line in lines[:20] if line.strip()]
    if not lines:
        return Table(",", ()) if hinted else None
    best: tuple[int, str] | None = None
    for delimiter in _DELIMITERS:
        if delimiter not in lines[0]:
            continue  # the first row would have one field: never the same width as a table's
        try:
            counts = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        except csv.Error:
            continue
        width = max(counts)
        if width < (2 if hinted or delimiter == "\t" else 3):
            continue
        if len(counts) == 1 and (hinted or len(lines) >= 3) and (best is None or width > best[0]):
            best = (width, delimiter)
    if best is None and hinted:
        widths = [(lines[0].count(d), d) for d in _DELIMITERS]
        count, delimiter = max(widths)
        best = (count + 1, delimiter if count else ",")
    if best is None:
        return None
    return Table(best[1], _header(lines[0], best[1]))


def _header(line: str, delimiter: str) -> tuple[str, ...]:
    try:
        row = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        row = line.split(delimiter)
    return tuple(cell.strip()[:MAX_HEADER_CELL] for cell in row[:MAX_COLUMNS])


def _table_mime(table: Table) -> str:
    return "text/tab-separated-values" if table.delimiter == "\t" else "text/csv"


def read_text(node: Node, ctx: Context) -> Iterator[Part]:
    """Plain text; delimited text that looks like a table becomes a table part; an iCalendar
    or vCard file is read with its folded lines joined."""
    first = _first_text(node)
    if is_folded_directory(first):
        yield from text_parts(node, unfolded(decoded_blocks(node, ctx)), mime="text/plain")
        return
    table = detect_table(first, hinted=False)
    mime = _table_mime(table) if table else "text/plain"
    yield from text_parts(node, decoded_blocks(node, ctx), table=table, mime=mime)


_FOLDED_KINDS = ("BEGIN:VCALENDAR", "BEGIN:VCARD")
FOLDED_TYPES = frozenset({"text/calendar", "text/vcard", "text/x-vcard", "text/directory"})
"""Content types whose lines are folded (RFC 5545, RFC 6350): a meeting invite's
description, a contact card's note."""
_FOLD = re.compile(r"\r?\n[ \t]")


def is_folded_directory(first: str) -> bool:
    """Whether a text starts like an iCalendar or vCard file."""
    return first.lstrip("\ufeff \t\r\n")[:15].upper().startswith(_FOLDED_KINDS)


def unfolded(pieces: Iterable[str]) -> Iterator[str]:
    """The text with folded lines joined (a line break followed by a space or tab is
    removed), so a card number or an SSN that an invite's DESCRIPTION folded across two
    lines reads whole. A line break at the end of a piece is held back until the next
    piece shows whether a fold follows."""
    held = ""
    for piece in pieces:
        text = held + piece
        cut = len(text)
        while cut and text[cut - 1] in "\r\n":
            cut -= 1
        text, held = text[:cut], text[cut:]
        if text:
            yield _FOLD.sub("", text)
    if held:
        yield held


def read_csv(node: Node, ctx: Context) -> Iterator[Part]:
    """CSV or TSV: the text as it is, marked as a table with its delimiter and header."""
    table = detect_table(_first_text(node), hinted=True)
    assert table is not None
    yield from text_parts(node, decoded_blocks(node, ctx), table=table, mime=_table_mime(table))


_BLOCK_TAG_NAMES = """address article aside blockquote br dd div dl dt fieldset figcaption figure
    footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol option p pre section
    table tbody td tfoot th thead title tr ul"""
_BLOCK_TAGS = frozenset(_BLOCK_TAG_NAMES.split())
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]{0,64}+)((?:[^<>\"']|\"[^\"<>]*+\"|'[^'<>]*+')*+)>|<![^<>]*+>")
_TEXT_ATTRIBUTE = re.compile(
    r"""\b(alt|title|value|placeholder|content|label|aria-label|href)\s*+=\s*+("[^"]*+"|'[^']*+'|[^\s>]++)""",
    re.I,
)
_HOLD = 64 * 1024


def _tag_text(match: re.Match[str]) -> str:
    name = match.group(2)
    if name is None:
        return ""
    out = "\n" if name.lower() in _BLOCK_TAGS else ""
    attributes = match.group(3)
    if attributes and "=" in attributes:
        for key, value in _TEXT_ATTRIBUTE.findall(attributes):
            value = value.strip("\"'")
            if value and (key.lower() != "href" or value.lower().startswith(("mailto:", "tel:"))):
                out += f"\n{value}\n"
    return out


def html_text(markup: str) -> str:
    """Text of HTML without markup: visible and hidden text (scripts, styles, comments,
    text attributes such as alt, title and value), line breaks at block tags, character
    references decoded. Linear time: comments are found with `str.find`, and the tag
    pattern cannot run past the next `<`."""
    out: list[str] = []
    position = 0
    while True:
        start = markup.find("<!--", position)
        if start < 0:
            out.append(_TAG.sub(_tag_text, markup[position:]))
            break
        out.append(_TAG.sub(_tag_text, markup[position:start]))
        end = markup.find("-->", start + 4)
        if end < 0:
            out.append(f"\n{markup[start + 4 :]}\n")
            break
        out.append(f"\n{markup[start + 4 : end]}\n")
        position = end + 3
    return html.unescape("".join(out))


def read_html(node: Node, ctx: Context) -> Iterator[Part]:
    """HTML without markup (see `html_text`), streamed block by block; a tag or reference
    cut by a block boundary is carried into the next block."""

    def pieces() -> Iterator[str]:
        carry = ""
        for block in decoded_blocks(node, ctx):
            buffer = carry + block
            cut = _safe_cut(buffer)
            carry = buffer[cut:]
            yield html_text(buffer[:cut])
        yield html_text(carry)

    yield from text_parts(node, pieces(), mime="text/html")


def _safe_cut(buffer: str) -> int:
    """Where to split `buffer` so that no tag, comment or reference is cut (within reach)."""
    cut = len(buffer)
    start = max(0, cut - _HOLD)
    comment = buffer.rfind("<!--", start)
    if comment >= 0 and buffer.find("-->", comment) < 0:
        cut = comment
    tag = buffer.rfind("<", start, cut)
    if tag >= 0 and buffer.find(">", tag, cut) < 0:
        cut = tag
    amp = buffer.rfind("&", max(start, cut - 40), cut)
    if amp >= 0 and buffer.find(";", amp, cut) < 0:
        cut = amp
    return cut


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\([/\"\\])")


def _json_unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if not code:
        return match.group(2)
    point = int(code, 16)
    return "\ufffd" if 0xD800 <= point <= 0xDFFF else chr(point)


def read_json(node: Node, ctx: Context) -> Iterator[Part]:
    """JSON as its text, streamed, with `\\uXXXX`, `\\/`, `\\"` and `\\\\` escapes decoded
    so that escaped digits and names read as they display (keys stay next to values)."""
    blocks = decoded_blocks(node, ctx)
    pieces = (_JSON_ESCAPE.sub(_json_unescape, block) if "\\" in block else block for block in blocks)
    yield from text_parts(node, pieces, mime="application/json")


class _XmlText:
    """Character data and attribute values in document order, taken straight from the
    expat parser inside defusedxml's parser (its entity and DTD defences stay on)."""

    def __init__(self, parser: DefusedXMLParser) -> None:
        self.out: list[str] = []
        expat = parser.parser
        expat.StartElementHandler = self.start
        expat.EndElementHandler = self.end
        expat.CharacterDataHandler = self.out.append

    def start(self, tag: str, attributes: list[str]) -> None:
        for index in range(0, len(attributes) - 1, 2):
            value = attributes[index + 1]
            if value.strip():
                self.out.append(f"\n{attributes[index].rpartition('}')[2]}: {value}\n")

    def end(self, tag: str) -> None:
        self.out.append("\n")

    def take(self) -> str:
        text = "".join(self.out)
        self.out.clear()
        return text


def read_xml(node: Node, ctx: Context) -> Iterator[Part]:
    """XML text and attribute values, parsed with defusedxml (no entity expansion, no
    DTD fetches); malformed, entity-laden or very large XML is scanned as raw text."""
    if node.blob.size <= XML_PARSE_MAX:
        parser = DefusedXMLParser()
        target = _XmlText(parser)
        texts: list[str] = []
        stream = node.blob.stream
        stream.seek(0)
        try:
            while True:
                ctx.check_time()
                data = stream.read(BLOCK * 4)
                if not data:
                    break
                parser.feed(data)
                texts.append(target.take())
            parser.parser.Parse(b"", True)
            texts.append(target.take())
        except LimitReached:
            raise
        except Exception:
            texts = []
        if texts:
            yield from text_parts(node, texts, mime="text/xml")
            return
    yield from text_parts(node, decoded_blocks(node, ctx), mime="text/xml")
