"""Hostile requests found by fuzzing the live API (schemathesis and hand-made requests):
each gets a clear answer, never a 500 or a server that stops answering."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

from dlp.logging import RedactFilter
from tests.api.conftest import Running, serve


def test_long_path_does_not_stall_the_log_filter(tmp_path: Path) -> None:
    """The access log line of a 64,000-character path goes through the scrubbing filter,
    whose secret-shaped pattern retried at every character of a run that was not a
    secret (quadratic): such a
    path held the event loop for about a minute (nothing else, not /healthz, was answered), so this
    request ran into the client's timeout."""
    with serve(tmp_path / "var") as running:
        running.logs.addFilter(RedactFilter())
        with running.client("reviewer") as client:
            response = client.get(f"/v1/quarantine/{'a' * 64_000}")
            health = client.get("/healthz")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid request"
    assert health.status_code == 200
    access = [line for line in running.logs.lines if " 422" in line and line.startswith("127.0.0.1:")]
    assert len(access) == 1
    assert re.fullmatch(r'127\.0\.0\.1:\d+ - "GET /v1/quarantine/a{64000} HTTP/1\.1" 422', access[0])


def test_json_number_with_too_many_digits_is_a_422(api: Running) -> None:
    """json.loads raised ValueError (Python's 4300-digit int limit): it was a 500."""
    with api.client("scanner") as client:
        response = client.post("/v1/scan/text", content=b'{"text": ' + b"9" * 5000 + b"}")
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid request",
        "detail": "body: the JSON holds a number with too many digits",
    }


def test_multipart_boundary_too_long_is_a_400(api: Running) -> None:
    """python-multipart refuses a boundary above 256 characters when the parser is made,
    with an exception the upload path did not catch: it was a 500."""
    boundary = "b" * 5000
    part = 'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nx'
    body = f"--{boundary}\r\n{part}\r\n--{boundary}--\r\n"
    with api.client("scanner") as client:
        response = client.post(
            "/v1/scan",
            content=body.encode(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad upload",
        "detail": "broken multipart body: Boundary length 5000 exceeds maximum of 256",
    }


def test_client_leaving_mid_json_body_is_no_internal_error(api: Running) -> None:
    """A client that declares a body and closes the connection halfway: the server logged
    an internal error with a traceback (no client saw it); it is a plain bad request now."""
    host, port = api.url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/scan/text HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api.tokens['scanner']}\r\n"
        'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"text": "half'
    )
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(request.encode())
    # The server logs what it makes of the disconnect as soon as it reads the end of the
    # stream; nothing answers, so give it a second to show up.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and not _errors(api):
        time.sleep(0.05)
    assert _errors(api) == []
    with api.client("scanner") as client:
        assert client.post("/v1/scan/text", json={"text": "hello"}).status_code == 200


def _errors(api: Running) -> list[str]:
    return [line for line in api.logs.lines if "internal error" in line or "Traceback" in line]


def test_405_names_every_method_of_the_path(api: Running) -> None:
    """/v1/incidents/{id} has a GET and a PATCH route; the router's 405 named only the
    first (`Allow: GET`), and RFC 9110 wants every method the resource takes."""
    with api.client("reviewer") as client:
        response = client.delete("/v1/incidents/01M8W0AMT9SB64HRYRTGM5B7TR")
        docs = client.post("/openapi.json")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PATCH"
    assert (docs.status_code, docs.headers["allow"]) == (405, "GET, HEAD")
    assert response.json() == {"error": "method not allowed", "detail": "Method Not Allowed"}


def test_body_that_stops_arriving_gets_408(tmp_path: Path) -> None:
    """A client that declares a body and stops sending held its request open for ever
    (uvicorn has no body timeout): JSON and upload routes alike answer 408 now."""
    with serve(tmp_path / "var", http={"body_timeout_seconds": 1.0}) as running:
        host, port = running.url.removeprefix("http://").split(":")
        answers = []
        for path, content_type in (("/v1/scan/text", "application/json"), ("/v1/scan", "text/plain")):
            request = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {running.tokens['scanner']}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n" + '{"text": "half'
            )
            with socket.create_connection((host, int(port)), timeout=10) as raw:
                raw.sendall(request.encode())
                answers.append(_read_answer(raw))
    for answer in answers:
        head, _, body = answer.partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 408 ")
        assert body == '{"error":"request timeout","detail":"no body bytes arrived for 1 s"}'


def _read_answer(raw: socket.socket) -> str:
    """One HTTP response read off a raw socket: the head, then Content-Length bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += raw.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    declared = re.search(rb"(?i)content-length: (\d+)", head)
    assert declared is not None
    length = int(declared.group(1))
    while len(body) < length:
        body += raw.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()
