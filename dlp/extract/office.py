"""Office documents, read from the ZIP archive they are with our limited reader and
parsed with defusedxml (never openpyxl or python-docx, which open ZIPs without limits).

- DOCX: body, headers, footers, footnotes, endnotes, comments (deleted text of tracked
  changes too); XLSX: every sheet, hidden ones included, with shared strings, rendered
  as TSV tables whose first row is the header; PPTX: slides and speaker notes;
  ODT/ODP text; ODS sheets as TSV; password-protected OpenDocument files are flagged.
- Objects embedded in OOXML files (`*/embeddings/*`) are extracted as members.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation

from defusedxml.ElementTree import DefusedXMLParser

from dlp.extract.members import location_segment, spool_zip_entry, zip_members
from dlp.extract.node import BLOCK, CORRUPT, ENCRYPTED, LIMIT_FILES, LIMIT_SIZE, Context, LimitReached, Node
from dlp.extract.text import Chunker
from dlp.extract.zipreader import ZipArchive, ZipEntry
from dlp.model import Part, Table

__all__ = ["MIME_TYPES", "classify", "read_office"]

MIME_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
}
_ODF = {MIME_TYPES[k]: k for k in ("odt", "ods", "odp")}
_MAX_COLUMNS = 16384
_MAX_REPEAT = 1000
_CELL_BREAKS = re.compile(r"[\t\r\n]+")
_DOCX_EXTRA = re.compile(r"^word/(header\d*|footer\d*|footnotes|endnotes|comments)\.xml$")
_SLIDE = re.compile(r"^ppt/(slides/slide|notesSlides/notesSlide)(\d+)\.xml$")
_EMBEDDED = re.compile(r"^(word|xl|ppt)/embeddings/")
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"

Rows = Iterator[tuple[str, list[str], tuple[str, ...]]]


def classify(archive: ZipArchive) -> str | None:
    """`docx`, `xlsx`, `pptx`, `odt`, `ods`, `odp`, or None for a plain archive."""
    names = {entry.name: entry for entry in archive.entries}
    if "[Content_Types].xml" in names:
        for marker, flavour in (("word/document.xml", "docx"), ("xl/workbook.xml", "xlsx")):
            if marker in names:
                return flavour
        if "ppt/presentation.xml" in names:
            return "pptx"
    mimetype = names.get("mimetype")
    if mimetype is not None and not mimetype.encrypted and mimetype.supported:
        try:
            declared = archive.read_small(mimetype, 100).decode("ascii", "replace").strip()
        except Exception:
            return None
        return _ODF.get(declared)
    return None


def read_office(node: Node, ctx: Context, archive: ZipArchive, flavour: str) -> Iterator[Part]:
    """Every text piece of an Office or OpenDocument file, each at its own location."""
    mime = MIME_TYPES[flavour]
    entries = {entry.name: entry for entry in archive.entries}
    reader = _Reader(node, ctx, archive, mime)
    if flavour.startswith("od") and _odf_encrypted(reader, entries):
        yield node.part("", (ENCRYPTED,), mime=mime)
        return
    yield node.part("", (LIMIT_FILES,) if archive.truncated else (), mime=mime)
    if flavour == "docx":
        yield from reader.text(entries.get("word/document.xml"), node.location, _docx_text)
        for name in sorted(entries):
            match = _DOCX_EXTRA.match(name)
            if match:
                yield from reader.text(entries[name], f"{node.location}#{match.group(1)}", _docx_text)
    elif flavour == "pptx":
        slides = sorted(
            (int(m.group(2)), "slide" if m.group(1).startswith("slides") else "notes", name)
            for name in entries
            if (m := _SLIDE.match(name))
        )
        for number, what, name in sorted(slides, key=lambda s: (s[0], s[1] != "slide")):
            yield from reader.text(entries[name], f"{node.location}#{what}{number}", _pptx_text)
    elif flavour == "xlsx":
        yield from _xlsx(reader, entries)
    elif flavour == "ods":
        yield from reader.tables(entries.get("content.xml"), _ods_rows)
    else:
        yield from reader.text(entries.get("content.xml"), node.location, _odf_text)
    embedded = [entry for entry in archive.entries if _EMBEDDED.match(entry.name)]
    yield from zip_members(node, ctx, archive, embedded)


class _Sink:
    """Callbacks bound straight to the expat parser inside defusedxml's parser (which
    keeps its entity and DTD defences), skipping ElementTree's per-element wrappers:
    start/end/data events are dispatched by local tag name; output pieces collect in `out`."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.stack: list[str] = []

    def attach(self, parser: DefusedXMLParser) -> None:
        """Route the parser's expat events to this sink."""
        expat = parser.parser
        expat.StartElementHandler = self._start
        expat.EndElementHandler = self._end
        expat.CharacterDataHandler = self.on_data

    def _start(self, tag: str, attributes: list[str]) -> None:
        local = tag.rpartition("}")[2]
        self.stack.append(local)
        attrib = dict(zip(attributes[::2], attributes[1::2], strict=False)) if attributes else {}
        self.on_start(local, attrib)

    def _end(self, tag: str) -> None:
        local = self.stack.pop() if self.stack else tag.rpartition("}")[2]
        self.on_end(local)

    def on_start(self, tag: str, attrib: dict[str, str]) -> None:
        return None

    def on_end(self, tag: str) -> None:
        return None

    def on_data(self, data: str) -> None:
        return None


class _Reader:
    """Reads entries of one Office archive into text or table parts."""

    def __init__(self, node: Node, ctx: Context, archive: ZipArchive, mime: str) -> None:
        self.node = node
        self.ctx = ctx
        self.archive = archive
        self.mime = mime

    def parse(self, entry: ZipEntry, sink: _Sink) -> Iterator[tuple[str, ...]]:
        """Feed an entry to `sink` block by block; yields after each block (empty
        tuple) and finally the entry's flags if it could not be fully read."""
        self.ctx.check_time()
        self.ctx.count_file()
        blob, flags = spool_zip_entry(self.ctx, self.archive, entry)
        try:
            parser = DefusedXMLParser()
            sink.attach(parser)
            stream = blob.stream
            try:
                while True:
                    self.ctx.check_time()
                    data = stream.read(BLOCK)
                    if not data:
                        break
                    parser.feed(data)
                    yield ()
                parser.parser.Parse(b"", True)
            except LimitReached:
                raise
            except Exception:
                flags = (*flags, CORRUPT)
            if blob.size == 0 and not flags:
                flags = (CORRUPT,)
            yield flags
        finally:
            blob.close()

    def text(self, entry: ZipEntry | None, location: str, make: Callable[[], _Sink]) -> Iterator[Part]:
        """One entry's text as chunked parts at `location`."""
        if entry is None:
            yield self.node.part("", (CORRUPT,), location=location, mime=self.mime)
            return
        sink = make()
        chunker = Chunker()
        emitted = False
        flags: tuple[str, ...] = ()
        for step in self.parse(entry, sink):
            flags = step
            pieces, sink.out = sink.out, []
            for offset, chunk in chunker.add("".join(pieces)):
                emitted = True
                yield self.node.part(chunk, offset=offset, location=location, mime=self.mime)
        for offset, chunk in chunker.finish():
            emitted = True
            yield self.node.part(chunk, flags, offset=offset, location=location, mime=self.mime)
            flags = ()
        if flags or not emitted:
            yield self.node.part("", flags, offset=chunker.offset, location=location, mime=self.mime)

    def tables(self, entry: ZipEntry | None, rows: Callable[[_Reader, ZipEntry], Rows]) -> Iterator[Part]:
        """Sheets as TSV table parts at `#sheet`, the first row being the header. The rows'
        text counts against the item's expanded bytes: shared strings and repeated cells
        make it far larger than the sheet's XML (a 1 MB XLSX gave gigabytes of text)."""
        if entry is None:
            yield self.node.part("", (CORRUPT,), mime=self.mime)
            return
        current: str | None = None
        chunker = Chunker()
        header: tuple[str, ...] | None = None
        flags: tuple[str, ...] = ()
        emitted = False
        for sheet, cells, more in rows(self, entry):
            if sheet != current:
                if current is not None:
                    yield from self._finish_sheet(chunker, current, header or (), flags, emitted)
                current, chunker, header, flags, emitted = sheet, Chunker(), None, (), False
            flags = (*flags, *more)
            if not cells:
                continue
            if header is None:
                header = tuple(cells)
            line = "\t".join(_CELL_BREAKS.sub(" ", cell) for cell in cells) + "\n"
            self.ctx.expanded += len(line)
            if self.ctx.expanded > self.ctx.limits.max_total_bytes:
                self.ctx.exhausted.add(LIMIT_SIZE)
                flags = (*flags, LIMIT_SIZE)
                break
            for offset, chunk in chunker.add(line):
                emitted = True
                yield self._sheet_part(current, chunk, offset, header, ())
        if current is not None:
            yield from self._finish_sheet(chunker, current, header or (), flags, emitted)

    def _finish_sheet(
        self, chunker: Chunker, sheet: str, header: tuple[str, ...], flags: tuple[str, ...], emitted: bool
    ) -> Iterator[Part]:
        for offset, chunk in chunker.finish():
            emitted = True
            yield self._sheet_part(sheet, chunk, offset, header, flags)
            flags = ()
        if flags or not emitted:
            yield self._sheet_part(sheet, "", chunker.offset, header, flags)

    def _sheet_part(
        self, sheet: str, text: str, offset: int, header: tuple[str, ...], flags: tuple[str, ...]
    ) -> Part:
        location = f"{self.node.location}#{location_segment(sheet)}"
        table = Table("\t", header)
        return self.node.part(text, flags, offset=offset, location=location, mime=self.mime, table=table)


def _odf_encrypted(reader: _Reader, entries: dict[str, ZipEntry]) -> bool:
    manifest = entries.get("META-INF/manifest.xml")
    if manifest is None:
        return False
    sink = _Find("encryption-data")
    for _ in reader.parse(manifest, sink):
        pass
    return sink.found


class _Find(_Sink):
    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted = wanted
        self.found = False

    def on_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == self.wanted:
            self.found = True


class _DocxText(_Sink):
    def on_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "tab":
            self.out.append("\t")
        elif tag in ("br", "cr"):
            self.out.append("\n")

    def on_end(self, tag: str) -> None:
        if tag == "p":
            self.out.append(" " if "tc" in self.stack else "\n")
        elif tag == "tc":
            self.out.append("\t")
        elif tag == "tr":
            self.out.append("\n")

    def on_data(self, data: str) -> None:
        if self.stack and self.stack[-1] in ("t", "delText"):
            self.out.append(data)


def _docx_text() -> _Sink:
    return _DocxText()


class _PptxText(_Sink):
    def on_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "br":
            self.out.append("\n")

    def on_end(self, tag: str) -> None:
        if tag == "p":
            self.out.append("\n")

    def on_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "t":
            self.out.append(data)


def _pptx_text() -> _Sink:
    return _PptxText()


class _OdfText(_Sink):
    def on_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "s":
            count = _int(_attr(attrib, "c"), 1)
            self.out.append(" " * min(max(count, 1), 100))
        elif tag == "tab":
            self.out.append("\t")
        elif tag == "line-break":
            self.out.append("\n")

    def on_end(self, tag: str) -> None:
        if tag in ("p", "h"):
            self.out.append("\n")

    def on_data(self, data: str) -> None:
        if "p" in self.stack or "h" in self.stack or "span" in self.stack:
            self.out.append(data)


def _odf_text() -> _Sink:
    return _OdfText()


def _attr(attrib: dict[str, str], local: str) -> str | None:
    for key, value in attrib.items():
        if key.rpartition("}")[2] == local:
            return value
    return None


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _xlsx(reader: _Reader, entries: dict[str, ZipEntry]) -> Iterator[Part]:
    shared = _SharedStrings()
    if "xl/sharedStrings.xml" in entries:
        for _ in reader.parse(entries["xl/sharedStrings.xml"], shared):
            pass
    targets = _Relationships()
    if "xl/_rels/workbook.xml.rels" in entries:
        for _ in reader.parse(entries["xl/_rels/workbook.xml.rels"], targets):
            pass
    book = _Workbook()
    workbook = entries.get("xl/workbook.xml")
    if workbook is not None:
        for _ in reader.parse(workbook, book):
            pass
    sheets: list[tuple[str, ZipEntry]] = []
    for name, rel in book.sheets:
        target = targets.map.get(rel, "")
        path = (
            target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        )
        if path in entries:
            sheets.append((name, entries[path]))
    for name, entry in sheets:

        def rows(r: _Reader, e: ZipEntry, sheet: str = name) -> Rows:
            return _xlsx_rows(r, e, sheet, shared.strings)

        yield from reader.tables(entry, rows)


class _SharedStrings(_Sink):
    def __init__(self) -> None:
        super().__init__()
        self.strings: list[str] = []
        self.current: list[str] = []

    def on_end(self, tag: str) -> None:
        if tag == "si":
            self.strings.append("".join(self.current))
            self.current = []

    def on_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "t" and "rPh" not in self.stack:
            self.current.append(data)


class _Relationships(_Sink):
    def __init__(self) -> None:
        super().__init__()
        self.map: dict[str, str] = {}

    def on_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "Relationship" and "Id" in attrib:
            self.map[attrib["Id"]] = attrib.get("Target", "")


class _Workbook(_Sink):
    def __init__(self) -> None:
        super().__init__()
        self.sheets: list[tuple[str, str]] = []

    def on_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "sheet":
            self.sheets.append((attrib.get("name", f"Sheet{len(self.sheets) + 1}"), attrib.get(_REL_NS, "")))


class _SheetRows(_Sink):
    """Rows of one worksheet: cells placed by their reference, values resolved. The
    hot path of spreadsheet extraction, so it handles expat events itself (no element
    stack, no attribute dictionaries)."""

    def __init__(self, shared: list[str]) -> None:
        super().__init__()
        self.shared = shared
        self.rows: list[list[str]] = []
        self.row: list[str] = []
        self.kind = "n"
        self.column = 0
        self.value: list[str] = []
        self.capture = False
        self.inline = False

    def _start(self, tag: str, attributes: list[str]) -> None:
        local = tag[tag.rfind("}") + 1 :]
        if local == "v" or (local == "t" and self.inline):
            self.capture = True
        elif local == "c":
            self.kind, reference = "n", None
            for index in range(0, len(attributes) - 1, 2):
                if attributes[index] == "t":
                    self.kind = attributes[index + 1]
                elif attributes[index] == "r":
                    reference = attributes[index + 1]
            self.column = _column(reference, len(self.row))
            self.value = []
        elif local == "is":
            self.inline = True
        elif local == "row":
            self.row = []

    def on_data(self, data: str) -> None:
        if self.capture:
            self.value.append(data)

    def _end(self, tag: str) -> None:
        local = tag[tag.rfind("}") + 1 :]
        if local in ("v", "t"):
            self.capture = False
        elif local == "is":
            self.inline = False
        elif local == "c":
            text = self._resolve("".join(self.value))
            if text and self.column < _MAX_COLUMNS:
                if self.column >= len(self.row):
                    self.row.extend([""] * (self.column - len(self.row) + 1))
                self.row[self.column] = text
        elif local == "row":
            if self.row:
                self.rows.append(self.row)
            self.row = []

    def _resolve(self, raw: str) -> str:
        if self.kind == "s":
            index = _int(raw, -1)
            return self.shared[index] if 0 <= index < len(self.shared) else ""
        if self.kind == "b":
            return "TRUE" if raw == "1" else "FALSE"
        if self.kind == "n" and ("E" in raw or "e" in raw):
            return _plain_number(raw)
        return raw


def _plain_number(raw: str) -> str:
    """`4.1111111111111E+15` as `4111111111111100`: integral numbers without exponent."""
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return raw
    if number.is_finite() and number == number.to_integral_value() and abs(number) < Decimal("1e22"):
        return str(int(number))
    return raw


def _column(ref: str | None, default: int) -> int:
    if not ref:
        return default
    index = 0
    for char in ref:
        if "A" <= char <= "Z":
            index = index * 26 + ord(char) - 64
            if index > _MAX_COLUMNS:
                return _MAX_COLUMNS
        else:
            break
    return index - 1 if index else default


def _xlsx_rows(reader: _Reader, entry: ZipEntry, sheet: str, shared: list[str]) -> Rows:
    sink = _SheetRows(shared)
    flags: tuple[str, ...] = ()
    for step in reader.parse(entry, sink):
        flags = step
        rows, sink.rows = sink.rows, []
        for row in rows:
            yield sheet, row, ()
    yield sheet, [], flags


class _OdsRows(_Sink):
    """Rows of every sheet of an ODS `content.xml`, with repeated cells and rows capped."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.sheet = ""
        self.row: list[str] = []
        self.cell: list[str] = []
        self.repeat_cells = 1
        self.repeat_rows = 1

    def on_start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "table":
            self.sheet = _attr(attrib, "name") or f"Sheet{len(self.rows) + 1}"
            self.rows.append((self.sheet, []))
        elif tag == "table-row":
            self.row = []
            self.repeat_rows = _int(_attr(attrib, "number-rows-repeated"), 1)
        elif tag in ("table-cell", "covered-table-cell"):
            self.cell = []
            self.repeat_cells = _int(_attr(attrib, "number-columns-repeated"), 1)
        elif tag == "p" and self.cell:
            self.cell.append(" ")

    def on_data(self, data: str) -> None:
        if "table-cell" in self.stack and "p" in self.stack:
            self.cell.append(data)

    def on_end(self, tag: str) -> None:
        if tag in ("table-cell", "covered-table-cell"):
            text = "".join(self.cell).strip()
            repeat = min(max(self.repeat_cells, 1), _MAX_COLUMNS - len(self.row))
            if text:
                self.row.extend([text] * min(repeat, _MAX_REPEAT))
            elif repeat > 0:
                self.row.extend([""] * repeat)
        elif tag == "table-row":
            while self.row and not self.row[-1]:
                self.row.pop()
            if self.row:
                for _ in range(min(max(self.repeat_rows, 1), _MAX_REPEAT)):
                    self.rows.append((self.sheet, self.row))


def _ods_rows(reader: _Reader, entry: ZipEntry) -> Rows:
    sink = _OdsRows()
    flags: tuple[str, ...] = ()
    for step in reader.parse(entry, sink):
        flags = step
        rows, sink.rows = sink.rows, []
        for sheet, row in rows:
            yield sheet, row, ()
    yield sink.sheet, [], flags
