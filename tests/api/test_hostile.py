"""Hostile requests found by fuzzing the live API (schemathesis and hand-made requests):
each gets a clear answer, never a 500 or a server that stops answering."""

from __future__ import annotations

import re
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
