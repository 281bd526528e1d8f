"""Structured JSON logs: one object per line, and no planted raw value ever gets through."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.logging import MASK, configure_logging, scrub

PLANTED = {
    "card": "4111 1111 1111 1111",
    "card-plain": "5500005555555559",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ssn": "078-05-1120",
    "aws-key": "AKIAIOSFODNN7EXAMPLE",
    "github-token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "generic-secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
}


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_event(log_stream: io.StringIO) -> None:
    log = logging.getLogger("dlp.test")
    log.info("listening", extra={"smtp": "127.0.0.1:10025", "http": "127.0.0.1:8080"})
    log.warning("mail blocked", extra={"incident_id": "01JDQ3Z5X9K2M4N6P8R0S2T4V6", "findings": 3})
    first, second = lines(log_stream)
    assert (first["event"], first["level"], first["logger"]) == ("listening", "info", "dlp.test")
    assert (first["smtp"], first["http"]) == ("127.0.0.1:10025", "127.0.0.1:8080")
    assert second["incident_id"] == "01JDQ3Z5X9K2M4N6P8R0S2T4V6"
    assert second["findings"] == 3
    assert str(first["ts"]).endswith("+00:00")


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_no_raw_value_in_any_part_of_a_record(log_stream: io.StringIO, name: str) -> None:
    raw = PLANTED[name]
    log = logging.getLogger("dlp.test")
    log.info("saw %s in message", raw)
    log.info(f"inline {raw}")
    log.info("extra", extra={"detail": f"value={raw}", "values": [raw], "nested": {"k": raw}})
    try:
        raise ValueError(f"bad value {raw}")
    except ValueError:
        log.exception("failed")
    logging.getLogger("uvicorn.error").info("library says %s", raw)
    output = log_stream.getvalue()
    assert raw not in output
    assert raw.replace(" ", "") not in output
    assert output.count(MASK) >= 6
    assert len(lines(log_stream)) == 5


def test_aiosmtpd_protocol_debug_is_held_back(log_stream: io.StringIO) -> None:
    logging.getLogger("mail.log").debug("b'DATA' %s", PLANTED["card"])
    logging.getLogger("mail.log").warning("peer went away")
    assert [line["event"] for line in lines(log_stream)] == ["peer went away"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("incident 01JDQ3Z5X9K2M4N6P8R0S2T4V6 blocked", "incident 01JDQ3Z5X9K2M4N6P8R0S2T4V6 blocked"),
        ("listening on 192.168.100.200:10025", "listening on 192.168.100.200:10025"),
        ("preview 4111 **** **** 1111", "preview 4111 **** **** 1111"),
        ("hash hmac-sha256:" + "9f" * 32, "hash hmac-sha256:" + "9f" * 32),
        ("sent by alice@example.com", "sent by a***@example.com"),
        ("card 4111-1111-1111-1111.", f"card {MASK}."),
        ("14 findings in 3 parts", "14 findings in 3 parts"),
    ],
)
def test_scrub_keeps_ids_and_masks_values(text: str, expected: str) -> None:
    assert scrub(text) == expected


@settings(max_examples=80, deadline=None)
@given(
    digits=st.text(alphabet="0123456789", min_size=13, max_size=19),
    separator=st.sampled_from(["", " ", "-"]),
    before=st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Nd",)), max_size=20),
    after=st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Nd",)), max_size=20),
)
def test_scrub_never_lets_a_long_number_through(digits: str, separator: str, before: str, after: str) -> None:
    grouped = separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    cleaned = scrub(f"{before}{grouped}{after}")
    assert digits not in cleaned.replace(" ", "").replace("-", "")
