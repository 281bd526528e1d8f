"""The fast MIME parse builds exactly the tree the standard library's feed parser builds
(headers, payloads, preambles, epilogues, no defects), or declines: checked on a table
of hand-written messages, on messages made by `email`, on the malformed corpus and
CPython's test messages, and on random mutations."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlp.extract.mimeparse import MAX_DEPTH, parse_simple
from tests.extract import samples
from tests.extract.test_malformed import MALFORMED, _cpython_messages
from tests.memory import traced_peak

Tree = tuple[object, ...]


def tree(message: Message) -> Tree:
    """Everything the feed parser decides, recursively."""
    payload = message.get_payload()
    body: object = [tree(p) for p in payload] if isinstance(payload, list) else payload
    return (
        message.get_unixfrom(),
        list(message.items()),
        message.preamble,
        message.epilogue,
        [type(d).__name__ for d in message.defects],
        message.get_default_type(),
        body,
    )


def stdlib(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def same_or_declined(data: bytes) -> bool:
    """True when the fast parse took the message (and then it must match exactly)."""
    fast = parse_simple(data)
    if fast is None:
        return False
    assert tree(fast) == tree(stdlib(data))
    return True


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


HEAD = "From: a@example.com\nTo: b@example.com\nSubject: hi\n"
MIXED = HEAD + "Content-Type: multipart/mixed; boundary=B\n\n"
TAKEN = {
    "plain": HEAD + "\nbody line\nlast",
    "no headers": "\nbody only\n",
    "folded header": "Subject: one\n two\n\tthree\nX-Empty:\n\nbody\n",
    "blank first value": "Subject: \n continued\n\nbody\n",
    "multipart": MIXED + "--B\nContent-Type: text/plain\n\nhello\n--B\n\nno headers\n--B--\n",
    "preamble and epilogue": MIXED + "pre\namble\n--B\n\nx\n--B--\nepi\nlogue\n",
    "close without line end": MIXED + "--B\n\nx\n--B--",
    "boundary with blanks": MIXED + "--B \t\n\nx\n--B-- \n",
    "boundary-like lines": MIXED + "--B\n\n--Bx\n --B\n--B--x\n--B--\n",
    "empty part body": MIXED + "--B\nContent-Type: text/plain\n\n\n--B--\n",
    "nested": HEAD
    + 'Content-Type: multipart/mixed; boundary="outer"\n\n--outer\n'
    + "Content-Type: multipart/alternative; boundary=inner\n\n--inner\n\nplain\n--inner\n"
    + "Content-Type: text/html\n\n<p>html</p>\n--inner--\ninner epilogue\n\n--outer\n"
    + 'Content-Disposition: attachment; filename="a.csv"\n\na,b\n--outer--\n',
    "nested, empty epilogue": MIXED + "--B\nContent-Type: multipart/alternative; boundary=C\n\n"
    "--C\n\nx\n--C--\n--B--\n",
    "8-bit bytes": "Subject: caf\u00e9\n\nna\u00efve \u00fc\n",
}
DECLINED = {
    "message/rfc822 part": MIXED + "--B\nContent-Type: message/rfc822\n\nSubject: x\n\ny\n--B--\n",
    "digest": HEAD + "Content-Type: multipart/digest; boundary=B\n\n--B\n\nSubject: x\n\ny\n--B--\n",
    "no close boundary": MIXED + "--B\n\nx\n",
    "no start boundary": MIXED + "just text\n",
    "close first": MIXED + "--B--\n",
    "double boundary": MIXED + "--B\n--B\n\nx\n--B--\n",
    "no boundary": HEAD + "Content-Type: multipart/mixed\n\n--B\n\nx\n--B--\n",
    "base64 multipart": HEAD + "Content-Type: multipart/mixed; boundary=B\n"
    "Content-Transfer-Encoding: base64\n\n--B\n\nx\n--B--\n",
    "unix from": "From someone Mon Jan 1 00:00:00 2024\n" + HEAD + "\nbody\n",
    "header without colon": HEAD + "not a header\n\nbody\n",
    "space before colon": "Subject : x\n\nbody\n",
    "first line folded": " folded\nSubject: x\n\nbody\n",
    "headers only": HEAD,
    "part without separator": MIXED + "--B\nContent-Type: text/plain\n--B--\n",
    "part without headers or separator": MIXED + "--B\ntext\n--B--\n",
}


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("name", sorted(TAKEN))
def test_taken_and_identical(name: str, line_end: str) -> None:
    assert same_or_declined(TAKEN[name].replace("\n", line_end).encode("utf-8"))


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize("name", sorted(DECLINED))
def test_declined(name: str, line_end: str) -> None:
    assert parse_simple(DECLINED[name].replace("\n", line_end).encode("utf-8")) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Subject: x\r\n\r\na\rb\r\n", None),
        ("Subject: x\n\na\r\n", "a\r\n"),
        ("Subject: x\r\n\nmixed ends\n", "mixed ends\n"),
    ],
)
def test_line_ends(text: str, expected: str | None) -> None:
    fast = parse_simple(text.encode())
    assert (None if fast is None else fast.get_payload()) == expected
    if fast is not None:
        assert tree(fast) == tree(stdlib(text.encode()))


def test_nesting_deeper_than_the_limit_is_declined() -> None:
    def nest(level: int) -> str:
        if level == 0:
            return "\nleaf\n"
        return (
            f"Content-Type: multipart/mixed; boundary=b{level}\n\n--b{level}\n{nest(level - 1)}--b{level}--\n"
        )

    assert same_or_declined(nest(MAX_DEPTH).encode())
    assert parse_simple(nest(MAX_DEPTH + 1).encode()) is None


def test_messages_made_by_email_are_taken() -> None:
    data = samples.email_bytes(
        {"a.zip": samples.zip_bytes({"b.csv": samples.csv_bytes()}), "c.csv": b"x,y\n"}
    )
    assert same_or_declined(data)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_corpus(name: str) -> None:
    same_or_declined(MALFORMED[name])


@pytest.mark.skipif(not _cpython_messages(), reason="this interpreter ships no test.test_email package")
def test_cpython_corpus() -> None:
    taken = [path.name for path in _cpython_messages() if same_or_declined(path.read_bytes())]
    assert taken


@st.composite
def generated(draw: st.DrawFn) -> bytes:
    """A message built by `email` with random headers, bodies and attachments."""
    text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
    message = EmailMessage()
    message["Subject"] = " ".join(draw(text).split())
    message["X-Note"] = " ".join(draw(text).split())
    message.set_content(draw(text) + "\n")
    if draw(st.booleans()):
        message.add_alternative(f"<p>{draw(text)}</p>", subtype="html")
    for index in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            message.add_attachment(draw(text), filename=f"n{index}.txt")
        else:
            message.add_attachment(draw(st.binary(max_size=200)), "application", "octet-stream")
    for number, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=={number}{draw(st.sampled_from(['', 'x y', '+/']))}==")
    if draw(st.booleans()):
        ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126) | st.just("\n"), max_size=40)
        message.preamble = draw(ascii_text)
        message.epilogue = draw(ascii_text)
    policy = email.policy.SMTP if draw(st.booleans()) else email.policy.default
    return message.as_bytes(policy=policy)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated())
def test_generated_messages_identical(data: bytes) -> None:
    assert same_or_declined(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(generated()))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["insert", "delete", "line"]))
        if action == "insert":
            data[at:at] = draw(st.sampled_from([b"\n", b"\r\n", b"--", b" ", b":", b"\r", b"x"]))
        elif action == "line":
            data[at:at] = draw(st.sampled_from([b"\n\n", b"\n--", b"\nFrom ", b"\n ", b"--\n"]))
        elif data:
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_identical_or_declined(data: bytes) -> None:
    same_or_declined(data)


@pytest.mark.parametrize(
    ("data", "most"),
    [
        (b"Subject: " + b"a\r\n " * 500_000 + b"x\r\n\r\nbody\r\n", 15),  # one field, 500,000 lines
        (b"X-A: b\r\n" * 250_000 + b"\r\nbody\r\n", 30),  # 250,000 fields
    ],
    ids=["folded", "many-fields"],
)
def test_a_huge_header_is_read_without_regex_state_per_line(data: bytes, most: int) -> None:
    """Matching the header block as one repetition kept the regular-expression engine's
    state for every line: 52 and 45 times the message's size (a 12-MB folded header took
    600 MB). Memory is traced, not timed."""
    message, peak = traced_peak(lambda: parse_simple(data))
    assert message is not None and message.get_payload() == "body\r\n"
    assert peak < most * len(data)
