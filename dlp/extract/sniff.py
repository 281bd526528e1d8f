"""Content sniffing: which handler reads a blob, decided from its bytes (the signatures
of the containers we open, then our own classification of text, then libmagic via
python-magic for other binaries), never from its name or declared type.

The name only breaks ties among text types (a `.csv` name makes delimited text a table)
and is otherwise kept for locations and policies.
"""

from __future__ import annotations

import codecs
import re

import magic

from dlp.extract.encoding import looks_like_utf16

__all__ = ["HEAD_BYTES", "PGP_ARMOUR", "Kind", "sniff"]

HEAD_BYTES = 8192


class Kind:
    """Names of the handlers the walker dispatches to."""

    TEXT = "text"
    CSV = "csv"
    HTML = "html"
    XML = "xml"
    JSON = "json"
    RTF = "rtf"
    EMAIL = "email"
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    SEVENZIP = "7z"
    PDF = "pdf"
    OLE = "ole"
    CMS = "cms"
    TNEF = "tnef"
    ENCRYPTED = "encrypted"
    EMPTY = "empty"
    BINARY = "binary"


_BY_MIME = {
    "text/csv": Kind.CSV,
    "text/html": Kind.HTML,
    "application/xhtml+xml": Kind.HTML,
    "text/xml": Kind.XML,
    "application/xml": Kind.XML,
    "image/svg+xml": Kind.XML,
    "application/json": Kind.JSON,
    "text/rtf": Kind.RTF,
    "application/rtf": Kind.RTF,
    "message/rfc822": Kind.EMAIL,
    "message/news": Kind.EMAIL,
    "application/zip": Kind.ZIP,
    "application/x-zip-compressed": Kind.ZIP,
    "application/java-archive": Kind.ZIP,
    "application/epub+zip": Kind.ZIP,
    "application/x-tar": Kind.TAR,
    "application/x-ustar": Kind.TAR,
    "application/gzip": Kind.GZIP,
    "application/x-gzip": Kind.GZIP,
    "application/x-bzip2": Kind.BZIP2,
    "application/x-xz": Kind.XZ,
    "application/x-lzma": Kind.XZ,
    "application/x-7z-compressed": Kind.SEVENZIP,
    "application/pdf": Kind.PDF,
    "application/encrypted": Kind.ENCRYPTED,
    "application/pgp-encrypted": Kind.ENCRYPTED,
    "application/x-empty": Kind.EMPTY,
    "inode/x-empty": Kind.EMPTY,
}

_SIGNATURES = (
    (b"PK\x03\x04", Kind.ZIP, "application/zip"),
    (b"PK\x05\x06", Kind.ZIP, "application/zip"),
    (b"\x1f\x8b", Kind.GZIP, "application/gzip"),
    (b"\xfd7zXZ\x00", Kind.XZ, "application/x-xz"),
    (b"7z\xbc\xaf\x27\x1c", Kind.SEVENZIP, "application/x-7z-compressed"),
    (b"%PDF-", Kind.PDF, "application/pdf"),
    (b"{\\rtf", Kind.RTF, "text/rtf"),
    (b"\x78\x9f\x3e\x22", Kind.TNEF, "application/ms-tnef"),
)
PGP_ARMOUR = b"-----BEGIN PGP MESSAGE-----"
"""The first line of an OpenPGP encrypted message in ASCII armour (PGP/MIME's part, an `.asc` file)."""
_PKCS7_OID = b"\x2a\x86\x48\x86\xf7\x0d\x01\x07"
_SMIME_OID = b"\x2a\x86\x48\x86\xf7\x0d\x01\x09\x10\x01"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.")
_TABLE_NAMES = re.compile(r"\.(csv|tsv|tab)$", re.IGNORECASE)
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]{0,60}:[ \t]?[^\r\n]*\r?$")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_MBOX_FROM = re.compile(rb"^From \S+ [^\r\n]*\r?$")
_MAIL_HEADERS = frozenset(
    {b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"received", b"return-path"}
)


def sniff(head: bytes, name: str | None = None) -> tuple[str, str]:
    """The handler kind and MIME type for a blob whose first bytes are `head`.

    Container signatures first (cheap and exact), then text, which we classify ourselves
    (libmagic spends 1 to 12 ms on a text head and everything textual is read as text
    anyway), then libmagic for every other binary."""
    if not head:
        return Kind.EMPTY, "application/x-empty"
    for signature, known, known_mime in _SIGNATURES:
        if head.startswith(signature):
            return known, known_mime
    if head[257:262] == b"ustar":
        return Kind.TAR, "application/x-tar"
    if head[:3] == b"BZh" and head[4:10] == b"1AY&SY":
        return Kind.BZIP2, "application/x-bzip2"
    if _is_cms(head):
        return Kind.CMS, "application/pkcs7-mime"
    if _is_text(head):
        return _text_kind(head, name)
    try:
        mime = str(magic.from_buffer(head, mime=True))
    except Exception:
        mime = "application/octet-stream"
    if mime.startswith(_ZIP_PREFIXES):
        return Kind.ZIP, mime
    if mime == "application/CDFV2-encrypted" or mime == "application/encrypted":
        return Kind.ENCRYPTED, mime
    if head.startswith(_OLE):
        return Kind.OLE, mime
    kind = _BY_MIME.get(mime)
    if kind is None and mime.startswith("text/"):
        return _text_kind(head, name)
    if kind is None:
        return Kind.BINARY, mime
    return kind, mime


def _is_cms(head: bytes) -> bool:
    """A CMS / PKCS #7 ContentInfo: a SEQUENCE (definite or indefinite length) whose
    first element is a PKCS #7 or S/MIME content-type OID."""
    if head[:1] != b"\x30" or len(head) < 4:
        return False
    first = head[1]
    start = 2 if first <= 0x80 else 2 + (first & 0x7F)
    oid = head[start : start + 13]
    return oid[:1] == b"\x06" and (oid[2:10] == _PKCS7_OID or oid[2:12] == _SMIME_OID)


def _text_kind(head: bytes, name: str | None) -> tuple[str, str]:
    """Mail (by its headers, or any text named `.eml`), OpenPGP armour (encrypted), JSON,
    HTML, XML, CSV (by name) or plain text, from the first bytes (UTF-16 ones read as such).

    HTML is a document (doctype, `<html>`, `<body>`), a fragment that starts with a tag
    and holds common block or inline tags (exported snippets, saved mail bodies), or any
    text named `.htm`/`.html`: read as plain text, its entities (`&nbsp;` between the
    groups of a card number) would hide values from the detectors."""
    if _looks_like_mail(head) or (name is not None and name.lower().endswith(".eml")):
        return Kind.EMAIL, "message/rfc822"
    utf16 = "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else looks_like_utf16(head)
    if utf16:
        head = head.decode(utf16, "ignore").encode("utf-8")
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith(PGP_ARMOUR):
        return Kind.ENCRYPTED, "application/pgp-encrypted"
    if start[:1] in (b"{", b"["):
        return Kind.JSON, "application/json"
    lower = start[:2048].lower()
    if (
        lower.startswith((b"<!doctype html", b"<html"))
        or any(tag in lower for tag in _HTML_TAGS)
        or (lower[:1] == b"<" and any(tag in lower for tag in _FRAGMENT_TAGS))
        or (name is not None and _HTML_NAMES.search(name) is not None)
    ):
        return Kind.HTML, "text/html"
    if lower.startswith((b"<?xml", b"<svg", b"<!doctype")):
        return Kind.XML, "text/xml"
    if name and _TABLE_NAMES.search(name):
        return Kind.CSV, "text/csv"
    return Kind.TEXT, "text/plain"


_HTML_TAGS = (b"<html", b"<body", b"<head>", b"<!doctype html")
_FRAGMENT_TAGS = (
    b"</p>",
    b"</div>",
    b"</td>",
    b"</span>",
    b"</a>",
    b"</li>",
    b"</b>",
    b"<br>",
    b"<br/>",
    b"<br />",
)
_HTML_NAMES = re.compile(r"\.x?html?$", re.IGNORECASE)


def _looks_like_mail(head: bytes) -> bool:
    """At least two known mail headers in an unbroken block of header lines at the start
    (checked before libmagic, which is slow on mail-like text and calls much of it plain).

    The block may follow an mbox `From ` separator line and may run past the head (an
    Exchange message carries dozens of `X-MS-*` fields before `From:`): every complete
    line of the head counts, the last, possibly cut, one does not."""
    blank = _BLANK_LINE.search(head)
    lines = (head if blank is None else head[: blank.end()]).split(b"\n")[:-1]
    if lines and _MBOX_FROM.match(lines[0]):
        lines = lines[1:]
    known = 0
    for line in lines:
        if line in (b"", b"\r"):
            return known >= 2
        if line[:1] in (b" ", b"\t"):
            continue
        if not _HEADER_LINE.match(line):
            return False
        if line.split(b":", 1)[0].lower() in _MAIL_HEADERS:
            known += 1
    return known >= 2


_CONTROL_BYTES = bytes(sorted(set(range(32)) - {9, 10, 12, 13})) + b"\x7f"
_HIGH_BYTES = bytes(range(128, 256))


def _is_text(head: bytes) -> bool:
    """Text in UTF-8, UTF-16 or a legacy 8-bit code page, stray control bytes allowed
    (NULs in a log, say), which libmagic would call binary."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or looks_like_utf16(head):
        return True
    sample = head[:4096]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if controls * 10 >= len(sample):
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return True
    except UnicodeDecodeError:
        high = len(sample) - len(sample.translate(None, _HIGH_BYTES))
        return high * 4 < len(sample)
