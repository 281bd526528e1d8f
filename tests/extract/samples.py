"""Files made by real libraries (and a few hand-built ZIP byte layouts) for the
extraction tests and the benchmark: each builder plants `CARD` where its format keeps text."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

CARD = "4111 1111 1111 1111"


def csv_bytes() -> bytes:
    return f"name,card\nBob,{CARD}\n".encode()


def html_bytes() -> bytes:
    return f'<html><body><p>Hi</p><div style="display:none">{CARD}</div></body></html>'.encode()


def docx_bytes(extra: str = "") -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(f"Card {CARD}")
    document.sections[0].header.paragraphs[0].text = "Confidential header"
    if extra:
        document.add_paragraph(extra)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx_bytes(rows: int = 1) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Customers"
    sheet.append(["name", "card"])
    for index in range(rows):
        sheet.append([f"Customer {index}", CARD])
    hidden = book.create_sheet("Archive")
    hidden.sheet_state = "hidden"
    hidden.append(["number"])
    hidden.append([4111111111111111])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def encrypted_office(plain: bytes, password: str = "secret") -> bytes:
    """A password-protected OOXML file (an OLE compound file holding EncryptedPackage)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(plain)).encrypt(password, out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    import pptx

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly numbers"
    slide.placeholders[1].text = f"Card {CARD}"
    slide.notes_slide.notes_text_frame.text = "Speaker notes"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def odt_bytes() -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    document = OpenDocumentText()
    document.text.addElement(P(text=f"Card {CARD}"))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def ods_bytes() -> bytes:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    table = Table(name="Cards")
    for row in (["name", "card"], ["Bob", CARD]):
        table_row = TableRow()
        for value in row:
            cell = TableCell()
            cell.addElement(P(text=value))
            table_row.addElement(cell)
        table.addElement(table_row)
    document.spreadsheet.addElement(table)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pdf_bytes(pages: int = 1, password: str | None = None) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    for number in range(pages):
        pdf.drawString(72, 720, f"Page {number + 1} card {CARD}")
        pdf.showPage()
    pdf.save()
    if password is None:
        return out.getvalue()
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(out.getvalue())))
    writer.encrypt(password, "owner-secret", algorithm="AES-128")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    return encrypted.getvalue()


def rtf_bytes() -> bytes:
    return ("{\\rtf1\\ansi{\\fonttbl\\f0\\fswiss Helvetica;}\\f0\\pard Card " + CARD + "\\par}").encode()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


def sevenzip_bytes(members: dict[str, bytes], password: str | None = None) -> bytes:
    import py7zr

    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password=password) as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return out.getvalue()


def email_bytes(attachments: dict[str, bytes] | None = None, body: str = f"Card {CARD}\n") -> bytes:
    message = EmailMessage()
    message["Subject"] = "Quarterly export"
    message["From"] = "Bob Smith <bob@example.com>"
    message["To"] = "partner@example.org"
    message.set_content(body)
    message.add_alternative(f"<p>{body}</p>", subtype="html")
    for name, data in (attachments or {}).items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


FORMATS: dict[str, Callable[[], bytes]] = {
    "export.csv": csv_bytes,
    "page.html": html_bytes,
    "letter.docx": docx_bytes,
    "export.xlsx": xlsx_bytes,
    "deck.pptx": pptx_bytes,
    "letter.odt": odt_bytes,
    "sheet.ods": ods_bytes,
    "report.pdf": pdf_bytes,
    "letter.rtf": rtf_bytes,
}


@dataclass(frozen=True)
class RawEntry:
    """A ZIP entry written byte for byte (for bombs, encryption bits and lying headers)."""

    name: str
    data: bytes
    method: int = 8
    size: int = 0
    crc: int = 0
    flags: int = 0


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def deflated_zeros(size: int) -> bytes:
    """Raw deflate of `size` zero bytes, built without holding them all in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1 << 20)
    out = [packer.compress(block[: min(len(block), size - i)]) for i in range(0, size, len(block))]
    return b"".join(out) + packer.flush()


def raw_entry(name: str, data: bytes) -> RawEntry:
    """An honest deflated entry."""
    return RawEntry(name, deflate(data), 8, len(data), zlib.crc32(data))


def _local(entry: RawEntry) -> bytes:
    name = entry.name.encode()
    return (
        struct.pack(
            "<4s5H3L2H",
            b"PK\x03\x04",
            20,
            entry.flags,
            entry.method,
            0,
            0,
            entry.crc,
            len(entry.data),
            entry.size,
            len(name),
            0,
        )
        + name
    )


def _central(entry: RawEntry, offset: int, compressed: int | None = None) -> bytes:
    name = entry.name.encode()
    size = len(entry.data) if compressed is None else compressed
    return (
        struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            entry.flags,
            entry.method,
            0,
            0,
            entry.crc,
            size,
            entry.size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        + name
    )


def _end(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, 0)


def raw_zip(entries: list[RawEntry]) -> bytes:
    """A ZIP written byte for byte from `entries`."""
    body, directory = bytearray(), bytearray()
    for entry in entries:
        directory += _central(entry, len(body))
        body += _local(entry) + entry.data
    return bytes(body + directory + _end(len(entries), len(directory), len(body)))


def nested_bomb(levels: int = 4, copies: int = 16, leaf_size: int = 16 << 20) -> bytes:
    """A 42.zip-style bomb: `copies` identical members per level, zeros at the leaves."""
    leaf = RawEntry("0.txt", deflated_zeros(leaf_size), 8, leaf_size, 0)
    layer = raw_zip([RawEntry(f"{i}.txt", leaf.data, 8, leaf.size) for i in range(copies)])
    for level in range(levels - 1):
        packed = raw_entry("x", layer)
        layer = raw_zip(
            [RawEntry(f"lib{level}_{i}.zip", packed.data, 8, packed.size, packed.crc) for i in range(copies)]
        )
    return layer


def overlap_bomb(files: int = 200, kernel_size: int = 32 << 20) -> bytes:
    """David Fifield's overlapping-entry bomb: every entry's deflate stream quotes the
    next entry's local header in a stored block and all end in one shared kernel."""
    kernel = deflated_zeros(kernel_size)
    names = [f"{i:04d}" for i in range(files)]
    headers = [RawEntry(name, b"", 8, 0) for name in names]
    body = bytearray()
    offsets: list[int] = []
    for index, entry in enumerate(headers):
        offsets.append(len(body))
        body += _local(entry)
        if index + 1 < files:
            quoted = len(_local(headers[index + 1]))
            body += struct.pack("<BHH", 0, quoted, quoted ^ 0xFFFF)
    body += kernel
    directory = bytearray()
    for entry, offset in zip(headers, offsets, strict=True):
        compressed = len(body) - offset - len(_local(entry))
        directory += _central(RawEntry(entry.name, b"", 8, kernel_size, 0), offset, compressed)
    return bytes(body + directory + _end(files, len(directory), len(body)))
