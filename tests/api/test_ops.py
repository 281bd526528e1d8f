"""Liveness, readiness, metrics, OpenAPI, bounded memory on a large upload, and that no
stored row, spool file or log line ever holds a planted raw value."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from tests.api.conftest import Running, serve
from tests.store.factories import PLANTED_CARD, PLANTED_MESSAGE, card_result, mail_context

DOCUMENTED = {
    ("post", "/v1/scan"),
    ("post", "/v1/scan/text"),
    ("get", "/v1/detectors"),
    ("get", "/v1/policies"),
    ("get", "/v1/quarantine"),
    ("get", "/v1/quarantine/{item_id}"),
    ("get", "/v1/quarantine/{item_id}/content"),
    ("post", "/v1/quarantine/{item_id}/release"),
    ("delete", "/v1/quarantine/{item_id}"),
    ("get", "/v1/incidents"),
    ("get", "/v1/incidents/{incident_id}"),
    ("patch", "/v1/incidents/{incident_id}"),
    ("get", "/v1/audit"),
    ("get", "/v1/tokens"),
    ("post", "/v1/tokens"),
    ("delete", "/v1/tokens/{token_id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


def test_health_and_readiness(api: Running) -> None:
    with api.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"policies": "ok", "store": "ok", "next_hop": "ok"}}


def test_not_ready_without_policies(tmp_path: Path) -> None:
    with serve(tmp_path / "var", policies=[], smtp={"enabled": False}) as api, api.client() as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"ready": False, "checks": {"policies": "no policies loaded", "store": "ok"}}


def test_metrics_show_scans_and_store_gauges(api: Running) -> None:
    api.store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    with api.client("scanner") as scanner:
        scanner.post("/v1/scan", content=b"hello")
    with api.client() as client:
        text = client.get("/metrics").text
    assert re.search(r'^dlp_items_scanned_total\{action="allow",channel="http"\} [1-9]', text, re.M)
    counts = api.store.counts()
    assert f"dlp_quarantine_items {float(counts.quarantine_items)}" in text
    assert f"dlp_quarantine_bytes {float(counts.quarantine_bytes)}" in text
    assert f"dlp_incidents_open {float(counts.open_incidents)}" in text
    assert "dlp_auth_failures_total" in text


def test_metrics_can_require_a_token(tmp_path: Path) -> None:
    with serve(tmp_path / "var", http={"metrics_public": False}) as api:
        with api.client() as anonymous:
            assert anonymous.get("/metrics").status_code == 401
        with api.client("scanner") as scanner:
            assert scanner.get("/metrics").status_code == 200


def test_openapi_documents_every_route_and_error(api: Running) -> None:
    with api.client() as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    operations = {(m, p) for p, methods in spec["paths"].items() for m in methods}
    assert operations == DOCUMENTED
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            if path.startswith("/v1/"):
                assert {"401", "403", "429"} <= codes, (method, path)
            if "requestBody" in operation or operation.get("parameters"):
                assert "422" in codes or path == "/v1/scan", (method, path)
    upload = spec["paths"]["/v1/scan"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/octet-stream", "multipart/form-data"}
    assert {"400", "413", "503"} <= set(upload["responses"])


def _peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_large_upload_is_streamed_with_bounded_memory(tmp_path: Path) -> None:
    size = 200 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    spool_sizes: list[int] = []

    def body() -> Iterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    def watch_spool(folder: Path, stop: threading.Event) -> None:
        while not stop.is_set():
            spool_sizes.extend(p.stat().st_size for p in folder.iterdir() if p.exists())
            time.sleep(0.02)

    with serve(tmp_path / "var", http={"max_upload_bytes": 256 * 1024 * 1024}) as api:
        stop = threading.Event()
        watcher = threading.Thread(target=watch_spool, args=(api.settings.state_dir / "spool", stop))
        watcher.start()
        _peak_rss_reset()
        baseline = _rss_kib("VmRSS")
        with api.client("scanner", timeout=120) as client:
            response = client.post("/v1/scan", content=body(), params={"filename": "big.bin"})
        growth_mib = (_rss_kib("VmHWM") - baseline) / 1024
        stop.set()
        watcher.join()
    assert response.status_code == 200
    assert response.json()["parts"][0]["size"] == size
    assert max(spool_sizes) > 8 * 1024 * 1024
    assert growth_mib < 64, f"server and client grew by {growth_mib:.0f} MiB for a 200 MiB upload"


def test_no_raw_value_in_rows_spool_or_logs(tmp_path: Path) -> None:
    with serve(tmp_path / "var") as api:
        with api.client("scanner") as scanner:
            raw = scanner.post("/v1/scan", content=PLANTED_MESSAGE, params={"filename": "m.eml"}).json()
            multi = scanner.post("/v1/scan", files={"file": ("m.eml", PLANTED_MESSAGE)}).json()
            text = scanner.post("/v1/scan/text", json={"text": PLANTED_MESSAGE.decode()}).json()
        with api.client("reviewer") as reviewer:
            for result in (raw, multi, text):
                assert (
                    reviewer.get(f"/v1/quarantine/{result['quarantine_id']}/content").content
                    == PLANTED_MESSAGE
                )
                incident = reviewer.patch(
                    f"/v1/incidents/{result['incident_id']}", json={"status": "resolved"}
                )
                assert PLANTED_CARD not in incident.text
            assert PLANTED_CARD not in reviewer.get("/v1/quarantine").text
            assert PLANTED_CARD not in reviewer.get("/v1/incidents").text
        with api.client("admin") as admin:
            assert PLANTED_CARD not in admin.get("/v1/audit").text
        state = api.settings.state_dir
        stored = [p for p in state.rglob("*") if p.is_file()]
        assert {p.name for p in stored} >= {"dlp.sqlite3", "dlp.sqlite3-wal", "quarantine.key", "admin-token"}
        assert len([p for p in stored if p.parent.name == "quarantine"]) == 3
        assert list((state / "spool").iterdir()) == []
        for path in stored:
            assert PLANTED_CARD.encode() not in path.read_bytes(), path
        assert len(api.logs.lines) > 10
        assert not [line for line in api.logs.lines if PLANTED_CARD in line]


@pytest.mark.parametrize(
    ("role", "path", "status", "headers"),
    [
        (None, "/healthz", 200, {"content-type": "application/json", "content-length": "15"}),
        (None, "/readyz", 200, {"content-type": "application/json"}),
        (None, "/metrics", 200, {"content-type": CONTENT_TYPE_LATEST}),
        ("reviewer", "/v1/quarantine", 200, {"content-type": "application/json"}),
        (None, "/v1/quarantine", 401, {"www-authenticate": "Bearer"}),
        ("scanner", "/v1/quarantine", 403, {"content-type": "application/json"}),
        ("scanner", "/v1/scan", 405, {"allow": "POST"}),
        (None, "/v1/nothing", 404, {"content-type": "application/json"}),
    ],
)
def test_head_answers_as_get_without_a_body(
    api: Running, role: str | None, path: str, status: int, headers: dict[str, str]
) -> None:
    """`curl -I` and uptime checkers probe with HEAD: same status and headers as GET."""
    with api.client(role) as client:
        response = client.head(path)
        got = client.get(path)
    assert (response.status_code, got.status_code) == (status, status)
    assert response.content == b""
    assert {k: response.headers.get(k) for k in headers} == headers
    if "content-length" in got.headers and path != "/metrics":
        assert response.headers["content-length"] == got.headers["content-length"]
