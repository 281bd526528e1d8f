"""Text formats: plain text in any encoding, CSV/TSV tables, HTML, JSON and XML.

Everything here streams: bytes are decoded block by block and emitted as chunks of about
`CHUNK_CHARS` characters cut at line ends, each carrying its character offset in the
whole part, so a 1 GiB file never sits in memory.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import Any

from defusedxml.ElementTree import DefusedXMLParser

from dlp.extract.encoding import detect_encoding
from dlp.extract.node import BLOCK, Context, LimitReached, Node
from dlp.extract.sniff import HEAD_BYTES
from dlp.model import Part, Table

__all__ = [
    "CHUNK_CHARS",
    "Chunker",
    "decoded_blocks",
    "detect_table",
    "read_csv",
    "read_html",
    "read_json",
    "read_text",
    "read_xml",
    "text_parts",
]

CHUNK_CHARS = 4 * 1024 * 1024
JSON_PARSE_MAX = 16 * 1024 * 1024
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

    Unhinted text needs at least three complete lines with the same number (two or more)
    of fields for one delimiter; a CSV type or name (`hinted`) accepts any delimiter
    that splits the first line, defaulting to a comma.
    """
    lines = sample.splitlines()
    if len(sample) >= 64 * 1024 and lines:
        lines = lines[:-1]
    lines = [line for line in lines[:20] if line.strip()]
    if not lines:
        return Table(",", ()) if hinted else None
    best: tuple[int, str] | None = None
    for delimiter in _DELIMITERS:
        try:
            counts = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        except csv.Error:
            continue
        width = max(counts)
        if width < 2:
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
    """Plain text; delimited text that looks like a table becomes a table part."""
    table = detect_table(_first_text(node), hinted=False)
    mime = _table_mime(table) if table else "text/plain"
    yield from text_parts(node, decoded_blocks(node, ctx), table=table, mime=mime)


def read_csv(node: Node, ctx: Context) -> Iterator[Part]:
    """CSV or TSV: the text as it is, marked as a table with its delimiter and header."""
    table = detect_table(_first_text(node), hinted=True)
    assert table is not None
    yield from text_parts(node, decoded_blocks(node, ctx), table=table, mime=_table_mime(table))


_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "option",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "ul",
    ]
)
_TEXT_ATTRIBUTES = frozenset({"alt", "title", "value", "placeholder", "content", "label", "aria-label"})


class _HtmlText(HTMLParser):
    """Collects every text node (visible or hidden: scripts, styles, comments and text
    attributes included) with line breaks at block elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.out.append("\n")
        for key, value in attrs:
            if not value:
                continue
            if key in _TEXT_ATTRIBUTES or (key == "href" and value.lower().startswith(("mailto:", "tel:"))):
                self.out.append(f"\n{value}\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_comment(self, data: str) -> None:
        self.out.append(f"\n{data}\n")

    def take(self) -> str:
        text = "".join(self.out)
        self.out = []
        return text


def read_html(node: Node, ctx: Context) -> Iterator[Part]:
    """HTML without markup: visible and hidden text, comments and text attributes."""

    def pieces() -> Iterator[str]:
        parser = _HtmlText()
        for block in decoded_blocks(node, ctx):
            parser.feed(block)
            yield parser.take()
        parser.close()
        yield parser.take()

    yield from text_parts(node, pieces(), mime="text/html")


def read_json(node: Node, ctx: Context) -> Iterator[Part]:
    """JSON rendered as `path: value` lines (escapes decoded); raw text if it is too
    large to parse at once or does not parse."""
    if node.blob.size <= JSON_PARSE_MAX:
        text = "".join(decoded_blocks(node, ctx))
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            yield from text_parts(node, [text], mime="application/json")
            return
        lines: list[str] = []
        _json_lines(value, "", lines)
        yield from text_parts(node, lines, mime="application/json")
        return
    yield from text_parts(node, decoded_blocks(node, ctx), mime="application/json")


def _json_lines(value: Any, path: str, out: list[str]) -> None:
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        key, current = stack.pop()
        if isinstance(current, dict):
            stack.extend((f"{key}.{k}" if key else str(k), v) for k, v in reversed(current.items()))
        elif isinstance(current, list):
            stack.extend((key, v) for v in reversed(current))
        elif current is not None:
            out.append(f"{key}: {current}\n" if key else f"{current}\n")


class _XmlText:
    """An expat target that keeps character data and attribute values in document order."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        for key, value in attrib.items():
            if value.strip():
                self.out.append(f"\n{key.rpartition('}')[2]}: {value}\n")

    def end(self, tag: str) -> None:
        self.out.append("\n")

    def data(self, data: str) -> None:
        self.out.append(data)

    def close(self) -> None:
        return None

    def take(self) -> str:
        text = "".join(self.out)
        self.out = []
        return text


def read_xml(node: Node, ctx: Context) -> Iterator[Part]:
    """XML text and attribute values, parsed with defusedxml (no entity expansion, no
    DTD fetches); malformed, entity-laden or very large XML is scanned as raw text."""
    if node.blob.size <= XML_PARSE_MAX:
        target = _XmlText()
        parser = DefusedXMLParser(target=target)
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
            parser.close()
            texts.append(target.take())
        except LimitReached:
            raise
        except Exception:
            texts = []
        if texts:
            yield from text_parts(node, texts, mime="text/xml")
            return
    yield from text_parts(node, decoded_blocks(node, ctx), mime="text/xml")
