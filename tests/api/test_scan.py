"""Scanning over HTTP: raw and multipart bodies, text, 413, timeouts, quarantine on
scan, incidents, and that the spool is emptied and never holds a raw value afterwards."""

from __future__ import annotations

import gzip
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dlp.store.crypto import CHUNK_SIZE
from tests.api.conftest import BLOCK_MARK, MONITOR_MARK, SLOW_MARK, Running, StandInScanner, serve
from tests.store.factories import PLANTED_CARD, PLANTED_MESSAGE

LIMIT = 4 * 1024 * 1024


def _scan_raw(api: Running, body: bytes, **kwargs: object) -> httpx.Response:
    with api.client("scanner") as client:
        return client.post("/v1/scan", content=body, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "expected_name"),
    [
        ({"params": {"filename": "report.csv"}}, "report.csv"),
        ({"headers": {"Content-Disposition": 'attachment; filename="q3 export.xlsx"'}}, "q3 export.xlsx"),
        (
            {"headers": {"Content-Disposition": "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"}},
            "résumé.pdf",
        ),
        ({"headers": {"Content-Type": "text/plain"}}, None),
    ],
)
def test_raw_body_is_scanned_with_its_name(
    api: Running, kwargs: dict[str, object], expected_name: str | None
) -> None:
    response = _scan_raw(api, b"nothing to see", **kwargs)
    assert response.status_code == 200
    body = response.json()
    assert body["action"] == "allow"
    assert body["quarantine_id"] is None and body["incident_id"] is None
    assert body["parts"] == [
        {"location": "file", "type": "application/octet-stream", "size": 14, "flags": []}
    ]
    scanner = api.scanner
    assert isinstance(scanner, StandInScanner)
    assert scanner.names[-1] == expected_name
    assert scanner.contexts[-1].channel == "http"
    assert scanner.contexts[-1].client is not None and scanner.contexts[-1].client.startswith("scanner-")


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE + 3])
def test_multipart_field_file(api: Running, size: int) -> None:
    data = b"a" * size
    with api.client("scanner") as client:
        response = client.post(
            "/v1/scan",
            files={"file": ("notes.txt", data, "text/plain")},
            data={"comment": "ignored field"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["parts"][0]["size"] == size
    assert isinstance(api.scanner, StandInScanner)
    assert api.scanner.names[-1] == "notes.txt"


def test_multipart_with_non_ascii_headers(api: Running) -> None:
    body = (
        b'--b0\r\nContent-Disposition: form-data; name="\xc3\x97\xf1\x8e\xab\x8c"\r\n\r\n{}\r\n'
        b'--b0\r\nContent-Disposition: form-data; name="file"; filename="r\xc3\xa9sum\xc3\xa9.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--b0--\r\n"
    )
    with api.client("scanner") as client:
        response = client.post(
            "/v1/scan", content=body, headers={"Content-Type": "multipart/form-data; boundary=b0"}
        )
    assert response.status_code == 200, response.text
    assert isinstance(api.scanner, StandInScanner)
    assert api.scanner.names[-1] == "résumé.txt"


def test_multipart_file_name_with_a_quote(api: Running) -> None:
    """httpx writes '"' in a form file name as %22, as browsers do; the name is the file's."""
    with api.client("scanner") as client:
        response = client.post("/v1/scan", files={"file": ('q3 "final".txt', b"hello", "text/plain")})
    assert response.status_code == 200, response.text
    assert isinstance(api.scanner, StandInScanner)
    assert api.scanner.names[-1] == 'q3 "final".txt'


@pytest.mark.parametrize(
    ("files", "content", "headers", "detail"),
    [
        ({"other": ("x.txt", b"x")}, None, None, "the multipart body has no field named 'file'"),
        (None, b"not multipart at all", {"Content-Type": "multipart/form-data; boundary=abc"}, None),
        (None, b"--abc\r\n", {"Content-Type": "multipart/form-data"}, "multipart body without a boundary"),
    ],
)
def test_broken_multipart_is_a_400(
    api: Running,
    files: dict[str, tuple[str, bytes]] | None,
    content: bytes | None,
    headers: dict[str, str] | None,
    detail: str | None,
) -> None:
    with api.client("scanner") as client:
        response = client.post("/v1/scan", files=files, content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "bad upload"
    if detail:
        assert response.json()["detail"] == detail


def test_second_file_field_is_refused(api: Running) -> None:
    """Only one file is scanned per request: a card in a second `file` field (curl
    `-F file=@a -F file=@b`, a browser's multiple file input) must not pass unscanned."""
    files = [
        ("file", ("a.txt", b"plain", "text/plain")),
        ("file", ("b.txt", PLANTED_CARD.encode(), "text/plain")),
    ]
    with api.client("scanner") as client:
        response = client.post("/v1/scan", files=files)
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad upload",
        "detail": "the multipart body has more than one field named 'file'; send one file per request",
    }
    assert list((api.settings.state_dir / "spool").iterdir()) == []


def test_text_scan(api: Running) -> None:
    with api.client("scanner") as client:
        response = client.post("/v1/scan/text", json={"text": f"card {PLANTED_CARD}", "name": "chat"})
    body = response.json()
    assert response.status_code == 200
    assert body["action"] == "quarantine"
    assert body["findings"][0]["preview"] == "4111 **** **** 1111"
    assert PLANTED_CARD not in response.text
    with api.client("reviewer") as reviewer:
        content = reviewer.get(f"/v1/quarantine/{body['quarantine_id']}/content")
    assert content.content == f"card {PLANTED_CARD}".encode()


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({}, 422),
        ({"text": 5}, 422),
        ({"text": "x", "extra": 1}, 422),
        ({"text": "x", "name": "n" * 300}, 422),
    ],
)
def test_text_scan_validation(api: Running, payload: dict[str, object], status: int) -> None:
    with api.client("scanner") as client:
        response = client.post("/v1/scan/text", json=payload)
    assert response.status_code == status
    assert response.json()["error"] == "invalid request"


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "text/plain", "application/json; charset=utf-8"],
)
def test_text_scan_reads_json_whatever_the_declared_type(api: Running, content_type: str | None) -> None:
    """`curl -d '{"text": ...}'` declares a form, other clients text/plain or nothing:
    the body is still the JSON the route takes."""
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps({"text": f"card {PLANTED_CARD}"}).encode()
    with api.client("scanner") as client:
        response = client.post("/v1/scan/text", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "quarantine"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"text": "caf\xe9"}'.encode("latin-1"), "body: not JSON text in UTF-8 (byte 13 is not)"),
        (b'{"text": "abc', "body: not JSON: Unterminated string starting at at line 1 column 10"),
        (b"", "body: not JSON: Expecting value at line 1 column 1"),
        (b"[" * 100_000 + b"]" * 100_000, "body: the JSON is nested too deeply"),
        (b'["text"]', "body: Input should be a valid dictionary or instance of ScanTextIn"),
        (b'{"text": null}', "body.text: Input should be a valid string"),
    ],
)
def test_text_scan_body_errors_say_why(api: Running, body: bytes, detail: str) -> None:
    with api.client("scanner") as client:
        response = client.post("/v1/scan/text", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"error": "invalid request", "detail": detail}
    assert "abc" not in response.text


def test_text_scan_utf16_json(api: Running) -> None:
    body = json.dumps({"text": f"card {PLANTED_CARD}"}).encode("utf-16")
    with api.client("scanner") as client:
        response = client.post("/v1/scan/text", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["action"] == "quarantine"


def test_text_scan_body_limit(api: Running) -> None:
    with api.client("scanner") as client:
        response = client.post("/v1/scan/text", content=b'{"text": "' + b"a" * (11 * 1024 * 1024) + b'"}')
    assert response.status_code == 413
    assert response.json()["error"] == "too large"


def _chunks(total: int, block: bytes = b"z" * 65536) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = block[: min(len(block), total - sent)]
        sent += len(piece)
        yield piece


@pytest.mark.parametrize(
    ("size", "status"),
    [(LIMIT, 200), (LIMIT + 1, 413), (3 * LIMIT, 413)],
)
@pytest.mark.parametrize("declared_length", [True, False])
def test_upload_limit_while_streaming(api: Running, size: int, status: int, declared_length: bool) -> None:
    body: bytes | Iterator[bytes] = b"z" * size if declared_length else _chunks(size)
    with api.client("scanner") as client:
        response = client.post("/v1/scan", content=body)
    assert response.status_code == status
    if status == 413:
        assert response.json() == {
            "error": "too large",
            "detail": f"the body is larger than the limit of {LIMIT} bytes",
        }
    assert list((api.settings.state_dir / "spool").iterdir()) == []


@pytest.mark.parametrize(
    ("content_type", "length", "first_line"),
    [
        ("application/octet-stream", LIMIT + 1, b"HTTP/1.1 413 Request Entity Too Large"),
        ("multipart/form-data; boundary=b0", LIMIT + 1, b"HTTP/1.1 100 Continue"),
        (
            "multipart/form-data; boundary=b0",
            LIMIT + 1024 * 1024 + 1,
            b"HTTP/1.1 413 Request Entity Too Large",
        ),
    ],
)
def test_declared_length_above_limit_is_refused_before_100_continue(
    api: Running, content_type: str, length: int, first_line: bytes
) -> None:
    """curl sends `Expect: 100-continue` and waits: a raw body declared above the limit
    gets its 413 at once, before the server asks for the body."""
    host, port = api.url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/scan HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api.tokens['scanner']}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode())
        reply = sock.recv(65536)
    assert reply.split(b"\r\n", 1)[0] == first_line


def test_multipart_above_limit(api: Running) -> None:
    with api.client("scanner") as client:
        response = client.post("/v1/scan", files={"file": ("big.bin", b"z" * (LIMIT + 1))})
    assert response.status_code == 413


def test_scan_timeout_is_a_503(api: Running) -> None:
    response = _scan_raw(api, b"xx " + SLOW_MARK)
    assert response.status_code == 503
    assert response.json() == {"error": "scan timeout", "detail": "scan did not finish within 1 s"}
    assert list((api.settings.state_dir / "spool").iterdir()) == []


def test_quarantine_on_scan_stores_the_item_and_records_an_incident(api: Running) -> None:
    response = _scan_raw(api, PLANTED_MESSAGE, params={"filename": "mail.eml"})
    body = response.json()
    assert (body["action"], body["regulations"]) == ("quarantine", ["pci-dss"])
    assert body["quarantine_id"] and body["incident_id"]
    with api.client("reviewer") as reviewer:
        item = reviewer.get(f"/v1/quarantine/{body['quarantine_id']}").json()
        incident = reviewer.get(f"/v1/incidents/{body['incident_id']}").json()
        content = reviewer.get(f"/v1/quarantine/{body['quarantine_id']}/content")
    assert (item["status"], item["channel"], item["size"], item["item_name"]) == (
        "held",
        "http",
        len(PLANTED_MESSAGE),
        "mail.eml",
    )
    assert item["client"].startswith("scanner-")
    assert incident["quarantine_id"] == body["quarantine_id"]
    assert incident["scan_id"] == body["id"]
    assert content.content == PLANTED_MESSAGE
    assert content.headers["content-disposition"] == 'attachment; filename="mail.eml"'


@pytest.mark.parametrize(
    ("content", "action", "incident", "monitor"),
    [
        (BLOCK_MARK, "block", True, False),
        (MONITOR_MARK, "allow", True, True),
        (b"plain", "allow", False, None),
    ],
)
def test_incidents_for_non_allow_and_monitor(
    api: Running, content: bytes, action: str, incident: bool, monitor: bool | None
) -> None:
    body = _scan_raw(api, content).json()
    assert body["action"] == action
    assert body["quarantine_id"] is None
    assert (body["incident_id"] is not None) is incident
    if incident:
        with api.client("reviewer") as reviewer:
            assert reviewer.get(f"/v1/incidents/{body['incident_id']}").json()["monitor"] is monitor


def test_response_matches_the_documented_schema(api: Running) -> None:
    with api.client() as client:
        spec = client.get("/openapi.json").json()
    documented = spec["components"]["schemas"]["ScanOut"]["properties"]
    body = _scan_raw(api, PLANTED_MESSAGE).json()
    assert set(body) <= set(documented)
    assert set(spec["components"]["schemas"]["ScanOut"]["required"]) <= set(body)
    assert json.dumps(body).count(PLANTED_CARD) == 0


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


GZIP = {"Content-Encoding": "gzip"}


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "GZIP, identity"])
def test_gzip_raw_upload_is_scanned_and_quarantined_decoded(api: Running, coding: str) -> None:
    """`curl -H 'Content-Encoding: gzip' --data-binary @x.csv.gz '...?filename=x.csv'`:
    the file is the CSV (its name, size and quarantined bytes), not a gzip archive."""
    raw = f"name,card\nalice,{PLANTED_CARD}\n".encode()
    response = _scan_raw(api, _gzip(raw), params={"filename": "x.csv"}, headers={"Content-Encoding": coding})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["action"] == "quarantine"
    assert isinstance(api.scanner, StandInScanner)
    assert api.scanner.names[-1] == "x.csv"
    with api.client("reviewer") as reviewer:
        assert reviewer.get(f"/v1/quarantine/{body['quarantine_id']}/content").content == raw


def test_gzip_upload_of_several_members_and_blocks(api: Running) -> None:
    first, second = b"a" * (CHUNK_SIZE + 5), os.urandom(300_000)
    response = _scan_raw(api, _gzip(first) + _gzip(second), headers=GZIP)
    assert response.status_code == 200, response.text
    assert (response.json()["action"], response.json()["parts"][0]["size"]) == (
        "allow",
        len(first) + len(second),
    )


def test_gzip_multipart_and_text(api: Running) -> None:
    multipart = (
        b'--b0\r\nContent-Disposition: form-data; name="file"; filename="x.txt"\r\n\r\n'
        + PLANTED_CARD.encode()
        + b"\r\n--b0--\r\n"
    )
    with api.client("scanner") as client:
        uploaded = client.post(
            "/v1/scan",
            content=_gzip(multipart),
            headers={**GZIP, "Content-Type": "multipart/form-data; boundary=b0"},
        )
        text = client.post(
            "/v1/scan/text",
            content=_gzip(json.dumps({"text": PLANTED_CARD}).encode()),
            headers={**GZIP, "Content-Type": "application/json"},
        )
    assert (uploaded.status_code, uploaded.json()["action"]) == (200, "quarantine")
    assert (text.status_code, text.json()["action"]) == (200, "quarantine")


@pytest.mark.parametrize(
    ("body", "headers", "status", "expected"),
    [
        (
            b"\x1f\x8b\x08\x00junk and more junk",
            GZIP,
            400,
            {"error": "bad request", "detail": "the gzip body is corrupt"},
        ),
        (
            _gzip(b"x" * 1000)[:-4],
            GZIP,
            400,
            {"error": "bad request", "detail": "the gzip body is truncated"},
        ),
        (b"", GZIP, 400, {"error": "bad request", "detail": "the gzip body is truncated"}),
        (
            _gzip(os.urandom(LIMIT + 1)),
            GZIP,
            413,
            {"error": "too large", "detail": f"the body is larger than the limit of {LIMIT} bytes"},
        ),
        (
            b"compressed",
            {"Content-Encoding": "br"},
            415,
            {
                "error": "unsupported content encoding",
                "detail": "Content-Encoding br is not accepted; send gzip or no encoding",
            },
        ),
        (
            b"compressed",
            {"Content-Encoding": "gzip, br"},
            415,
            {
                "error": "unsupported content encoding",
                "detail": "Content-Encoding gzip, br is not accepted; send gzip or no encoding",
            },
        ),
    ],
)
def test_bad_or_unsupported_encodings(
    api: Running, body: bytes, headers: dict[str, str], status: int, expected: dict[str, str]
) -> None:
    response = _scan_raw(api, body, headers=headers)
    assert (response.status_code, response.json()) == (status, expected)
    if status == 415:
        assert response.headers["accept-encoding"] == "gzip"
    assert list((api.settings.state_dir / "spool").iterdir()) == []


def test_unsupported_encoding_without_token_is_a_401(api: Running) -> None:
    with api.client() as client:
        response = client.post("/v1/scan", content=b"x", headers={"Content-Encoding": "br"})
    assert response.status_code == 401


def test_gzip_expanding_past_the_ratio_limit_is_a_413(tmp_path: Path) -> None:
    with serve(tmp_path / "var", limits={"max_ratio": 20}) as api:
        response = _scan_raw(api, _gzip(b"0123456789abcdef" * 200_000), headers=GZIP)
        text = _scan_raw(api, _gzip(b"plain text " * 10_000), headers=GZIP)
    assert (response.status_code, response.json()) == (
        413,
        {"error": "too large", "detail": "the gzip body expands more than 20 times (limits.max_ratio)"},
    )
    assert text.status_code == 200
