"""Malformed and hostile input never raises: a corpus of broken messages (our own, plus
CPython's test_email messages when the interpreter ships its test package) and a
hypothesis fuzz test of `extract` on random and mutated bytes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlp.extract import extract
from dlp.model import Item, Limits, Part
from tests.extract import samples
from tests.extract.samples import CARD

FLAGS = {
    "encrypted",
    "corrupt",
    "unsupported",
    "truncated",
    "limit:depth",
    "limit:files",
    "limit:size",
    "limit:ratio",
    "limit:time",
}
SMALL = Limits(max_depth=4, max_files=50, max_total_bytes=4 << 20, max_member_bytes=1 << 20, max_seconds=10)

HEAD = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: test\r\n"
MALFORMED = {
    "no-close-boundary": HEAD
    + b"Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\ncard "
    + CARD.encode()
    + b"\r\n",
    "no-boundary-param": HEAD
    + b"Content-Type: multipart/mixed\r\n\r\n--X\r\n\r\ncard "
    + CARD.encode()
    + b"\r\n",
    "boundary-never-used": HEAD + b"Content-Type: multipart/mixed; boundary=Y\r\n\r\ncard " + CARD.encode(),
    "bad-charset": HEAD + b'Content-Type: text/plain; charset="\xff\xfe"\r\n\r\ncard ' + CARD.encode(),
    "bad-cte": HEAD + b"Content-Transfer-Encoding: x-uuencode-zz\r\n\r\ncard " + CARD.encode(),
    "bad-qp": HEAD + b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncard =ZZ=\r\n" + CARD.encode(),
    "bad-2047": b"Subject: =?utf-8?B?!!!?= =?x-none?Q?a?= =?utf-8?Q?=FF=FE?=\r\n\r\nbody",
    "bad-2231": HEAD
    + b"Content-Type: application/octet-stream; name*0*=bogus'xx'%ZZ; name*2=x\r\n"
    + b"Content-Disposition: attachment; filename*=''%FF%FE.txt\r\n\r\ncard "
    + CARD.encode(),
    "headers-only": HEAD,
    "no-headers": b"\r\n\r\ncard " + CARD.encode(),
    "nul-bytes": HEAD + b"X-Null: a\x00b\r\n\r\n\x00\x00card " + CARD.encode(),
    "long-header": HEAD + b"X-Long: " + b"a" * 200_000 + b"\r\n\r\nbody",
    "deep-multipart": HEAD
    + b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(300))
    + b"\r\ncard "
    + CARD.encode(),
    "empty-rfc822": HEAD
    + b"Content-Type: multipart/mixed; boundary=X\r\n\r\n"
    + b"--X\r\nContent-Type: message/rfc822\r\n\r\n--X--\r\n",
    "8bit-headers": b"Subject: caf\xe9 \xff\xfe\r\nFrom: \xc3\xa9l\xc3\xa8ve <x@example.com>\r\n"
    + b"To: x\r\n\r\nbody",
    "base64-garbage": HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n!!!!****====\r\n",
    "multipart-no-parts": HEAD + b"Content-Type: multipart/alternative; boundary=Z\r\n\r\n--Z--\r\n",
}


def check(parts: list[Part], item_size: int) -> None:
    assert parts
    assert all(part.location for part in parts)
    assert {flag for part in parts for flag in part.flags} <= FLAGS
    assert sum(len(part.text) for part in parts) <= 4 * (SMALL.max_total_bytes + item_size) + 65536


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_messages_never_raise(name: str) -> None:
    data = MALFORMED[name]
    parts = list(extract(Item(data=data, name=f"{name}.eml"), SMALL))
    check(parts, len(data))


@pytest.mark.parametrize(
    "name", ["no-close-boundary", "boundary-never-used", "bad-charset", "bad-cte", "nul-bytes"]
)
def test_text_survives_damage(name: str) -> None:
    parts = list(extract(Item(data=MALFORMED[name], name=f"{name}.eml"), SMALL))
    assert any(CARD in part.text for part in parts)


def _cpython_messages() -> list[Path]:
    spec = importlib.util.find_spec("test.test_email")
    if spec is None or spec.origin is None:
        return []
    return sorted((Path(spec.origin).parent / "data").glob("msg_*.txt"))


@pytest.mark.skipif(not _cpython_messages(), reason="this interpreter ships no test.test_email package")
def test_cpython_email_corpus_never_raises() -> None:
    for path in _cpython_messages():
        parts = list(extract(Item(path=path, name=path.name), SMALL))
        check(parts, path.stat().st_size)
        assert parts[0].location == "message" or parts[0].type.startswith("text/")


SEEDS = [
    samples.email_bytes({"a.zip": samples.zip_bytes({"b.csv": samples.csv_bytes()})}),
    samples.zip_bytes({"a.txt": b"hello", "b/c.csv": samples.csv_bytes()}),
    samples.tar_bytes({"a.txt": b"hello"}, "w:gz"),
    samples.docx_bytes(),
    samples.xlsx_bytes(),
    samples.pdf_bytes(),
    samples.rtf_bytes(),
    samples.sevenzip_bytes({"a.txt": b"hello"}),
    samples.html_bytes(),
    b'{"a": [1, {"b": "c"}]}',
    b'<?xml version="1.0"?><r a="1"><b>x</b></r>',
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    data=st.one_of(st.binary(max_size=4096), mutated()),
    name=st.sampled_from([None, "x.csv", "a.eml", "z.zip"]),
)
def test_fuzz_extract_never_raises_and_limits_hold(data: bytes, name: str | None) -> None:
    parts = list(extract(Item(data=data, name=name), SMALL))
    check(parts, len(data))
    assert max(part.size for part in parts) <= max(len(data), SMALL.max_member_bytes)
