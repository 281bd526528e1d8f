"""Who may call what: the 401/403 matrix, rate limiting, the first-start admin token."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dlp.api import ADMIN_TOKEN_FILE, ensure_admin_token
from dlp.metrics import AUTH_FAILURES
from dlp.store import open_store
from tests.api.conftest import Running, serve, server_settings

ROLES = ("scanner", "reviewer", "admin")
MISSING = "01NOSUCHRECORD000000000000"

# method, path, lowest role, status for an allowed role
ROUTES = [
    ("POST", "/v1/scan", "scanner", 200),
    ("POST", "/v1/scan/text", "scanner", 200),
    ("GET", "/v1/detectors", "scanner", 200),
    ("GET", "/v1/policies", "scanner", 200),
    ("GET", "/v1/quarantine", "reviewer", 200),
    ("GET", f"/v1/quarantine/{MISSING}", "reviewer", 404),
    ("GET", f"/v1/quarantine/{MISSING}/content", "reviewer", 404),
    ("POST", f"/v1/quarantine/{MISSING}/release", "reviewer", 404),
    ("DELETE", f"/v1/quarantine/{MISSING}", "reviewer", 404),
    ("GET", "/v1/incidents", "reviewer", 200),
    ("GET", f"/v1/incidents/{MISSING}", "reviewer", 404),
    ("PATCH", f"/v1/incidents/{MISSING}", "reviewer", 404),
    ("GET", "/v1/audit", "admin", 200),
    ("GET", "/v1/tokens", "admin", 200),
    ("POST", "/v1/tokens", "admin", 201),
    ("DELETE", f"/v1/tokens/{MISSING}", "admin", 404),
]

BODIES = {
    "/v1/scan": {"content": b"hello", "params": {"filename": "a.txt"}},
    "/v1/scan/text": {"json": {"text": "hello"}},
    "/v1/tokens": {"json": {"role": "scanner"}},
    f"/v1/incidents/{MISSING}": {"json": {"status": "resolved"}},
}


def _call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    return client.request(method, path, **BODIES.get(path, {}) if method != "GET" else {})


@pytest.mark.parametrize(("method", "path", "lowest", "allowed_status"), ROUTES)
def test_role_matrix(api: Running, method: str, path: str, lowest: str, allowed_status: int) -> None:
    with api.client() as anonymous:
        response = _call(anonymous, method, path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"error": "unauthorized", "detail": "a valid bearer token is required"}
    with api.client() as forged:
        forged.headers["Authorization"] = "Bearer dlp_not-a-real-token"
        assert _call(forged, method, path).status_code == 401
    for role in ROLES:
        with api.client(role) as client:
            response = _call(client, method, path)
            if ROLES.index(role) >= ROLES.index(lowest):
                assert response.status_code == allowed_status, (role, response.text)
            else:
                assert response.status_code == 403
                assert response.json() == {
                    "error": "forbidden",
                    "detail": f"this route needs the {lowest} role",
                }


def test_revoked_token_is_refused(api: Running) -> None:
    with api.client("admin") as admin:
        created = admin.post("/v1/tokens", json={"role": "reviewer", "name": "temp-reviewer"}).json()
        assert created["role"] == "reviewer" and created["token"].startswith("dlp_")
        with api.client() as client:
            client.headers["Authorization"] = f"Bearer {created['token']}"
            assert client.get("/v1/incidents").status_code == 200
            assert admin.delete("/v1/tokens/temp-reviewer").json()["revoked"] is True
            assert client.get("/v1/incidents").status_code == 401
        assert admin.post("/v1/tokens", json={"role": "reviewer", "name": "temp-reviewer"}).status_code == 409
        listed = {t["name"]: t for t in admin.get("/v1/tokens").json()}
        assert listed["temp-reviewer"]["revoked"] is True
        assert "token" not in listed["temp-reviewer"]
        actions = [
            e["action"] for e in admin.get("/v1/audit", params={"target": created["id"]}).json()["items"]
        ]
        assert actions == ["token.revoke", "token.create"]


def test_failed_authentications_are_counted_and_rate_limited(tmp_path: Path) -> None:
    with serve(tmp_path / "var", http={"auth_failures_per_minute": 3}) as api:
        before = AUTH_FAILURES._value.get()
        with api.client() as client:
            client.headers["Authorization"] = "Bearer wrong"
            assert [client.get("/v1/policies").status_code for _ in range(3)] == [401, 401, 401]
            limited = client.get("/v1/policies")
            assert limited.status_code == 429
            assert 1 <= int(limited.headers["retry-after"]) <= 61
            assert limited.json() == {
                "error": "too many failed authentications",
                "detail": f"try again in {limited.headers['retry-after']} s",
            }
        with api.client() as anonymous:
            assert anonymous.get("/v1/policies").status_code == 429
            assert anonymous.post("/v1/scan/text", content=b"{").status_code == 429
        assert AUTH_FAILURES._value.get() - before == 3
        with api.client() as anyone:
            assert anyone.get("/healthz").status_code == 200


def test_valid_tokens_are_served_from_an_address_over_the_failure_limit(tmp_path: Path) -> None:
    """One script with a bad token behind a shared (NAT) address locks out only itself."""
    with serve(tmp_path / "var", http={"auth_failures_per_minute": 2}) as api, api.client() as bad:
        bad.headers["Authorization"] = "Bearer dlp_stale-token-from-a-broken-script"
        assert [bad.get("/v1/incidents").status_code for _ in range(3)] == [401, 401, 429]
        with api.client("scanner") as scanner, api.client("reviewer") as reviewer:
            assert scanner.post("/v1/scan/text", json={"text": "hello"}).status_code == 200
            assert scanner.get("/v1/incidents").status_code == 403
            assert scanner.post("/v1/scan/text", content=b"{").status_code == 422
            assert reviewer.get("/v1/incidents").status_code == 200
        assert bad.get("/v1/incidents").status_code == 429
        assert bad.get("/v1/incidents", headers={"Authorization": ""}).status_code == 429


def _json_bytes(body: bytes) -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": "application/json"}}


# invalid body, query or path: 401 without a valid token, 403 for too small a role, then the route's answer
INVALID = [
    ("POST", "/v1/scan/text", _json_bytes(b"{not json"), 422),
    ("POST", "/v1/scan/text", {"json": {"txt": "no text field"}}, 422),
    ("POST", "/v1/scan", {"content": b"hi", "params": {"filename": "x" * 300}}, 422),
    ("GET", "/v1/policies", {"params": {"unused": "x"}}, 200),
    ("GET", "/v1/quarantine", {"params": {"limit": "-1"}}, 422),
    ("GET", "/v1/quarantine/not-an-id!", {}, 422),
    ("PATCH", f"/v1/incidents/{MISSING}", _json_bytes(b"["), 422),
    ("PATCH", f"/v1/incidents/{MISSING}", {"json": {"status": "burnt"}}, 422),
    ("GET", "/v1/audit", {"params": {"limit": "0"}}, 422),
    ("POST", "/v1/tokens", _json_bytes(b"{"), 422),
    ("POST", "/v1/tokens", {"json": {"role": "emperor"}}, 422),
    ("DELETE", "/v1/tokens/" + "x" * 101, {}, 422),
]
LOWEST = {
    "/v1/scan": "scanner",
    "/v1/policies": "scanner",
    "/v1/quarantine": "reviewer",
    "/v1/incidents": "reviewer",
    "/v1/audit": "admin",
    "/v1/tokens": "admin",
}


@pytest.mark.parametrize(("method", "path", "request_args", "allowed_status"), INVALID)
def test_authentication_comes_before_validation(
    api: Running, method: str, path: str, request_args: dict[str, Any], allowed_status: int
) -> None:
    lowest = next(role for prefix, role in LOWEST.items() if path.startswith(prefix))
    with api.client() as anonymous:
        response = anonymous.request(method, path, **request_args)
        assert (response.status_code, response.json()) == (
            401,
            {"error": "unauthorized", "detail": "a valid bearer token is required"},
        )
        headers = {**request_args.get("headers", {}), "Authorization": "Bearer dlp_x"}
        forged = anonymous.request(method, path, **{**request_args, "headers": headers})
        assert forged.status_code == 401
    for role in ROLES:
        with api.client(role) as client:
            response = client.request(method, path, **request_args)
            if ROLES.index(role) < ROLES.index(lowest):
                assert (response.status_code, response.json()["error"]) == (403, "forbidden")
            else:
                assert response.status_code == allowed_status, (role, response.text)


def test_first_start_writes_an_admin_token_file(tmp_path: Path) -> None:
    state = tmp_path / "var"
    with serve(state) as api:
        token_file = state / ADMIN_TOKEN_FILE
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        secret = token_file.read_text().strip()
        with api.client() as client:
            client.headers["Authorization"] = f"Bearer {secret}"
            assert client.get("/v1/audit").status_code == 200
        assert not any(secret in line for line in api.logs.lines)
        assert any(str(token_file) in line for line in api.logs.lines)
    with serve(state):
        assert token_file.read_text().strip() == secret


def test_replicas_starting_together_write_one_admin_token(tmp_path: Path) -> None:
    """Two replicas on one empty store: one creates the admin token and writes its file."""
    settings = server_settings(tmp_path / "var")
    stores = [open_store(settings) for _ in range(2)]
    folders = [tmp_path / f"replica-{i}" for i in range(2)]
    barrier = threading.Barrier(2)
    written: list[Path | None] = [None, None]

    def start(index: int) -> None:
        folders[index].mkdir()
        barrier.wait(timeout=10)
        written[index] = ensure_admin_token(stores[index], folders[index])

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        files = [path for path in written if path is not None]
        assert files == [f / ADMIN_TOKEN_FILE for f in folders if (f / ADMIN_TOKEN_FILE).exists()]
        assert len(files) == 1
        tokens = stores[0].list_tokens()
        assert [(t.name, t.role.label) for t in tokens] == [("admin", "admin")]
        assert stores[1].verify_token(files[0].read_text().strip()) == tokens[0]
        assert ensure_admin_token(stores[0], folders[0]) is None
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("declared_length", [True, False], ids=["content-length", "chunked"])
def test_authentication_comes_before_the_body_limit(api: Running, declared_length: bool) -> None:
    text = b'{"text": "' + b"a" * (11 * 1024 * 1024) + b'"}'

    def body() -> bytes | Iterator[bytes]:
        return text if declared_length else iter([text[i : i + 65536] for i in range(0, len(text), 65536)])

    with api.client() as anonymous:
        assert anonymous.post("/v1/scan/text", content=body()).status_code == 401
    with api.client("reviewer") as reviewer:
        assert reviewer.post("/v1/tokens", content=body()).status_code == 403
    with api.client("scanner") as scanner:
        response = scanner.post("/v1/scan/text", content=body())
    assert (response.status_code, response.json()) == (
        413,
        {"error": "too large", "detail": f"the body is larger than the limit of {10 * 1024 * 1024} bytes"},
    )
