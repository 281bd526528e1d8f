"""The quarantine lifecycle and incident review over HTTP, with the audit trail:
list, read content, release to a Maildir or SMTP next hop (once), delete, retention."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from dlp.model import ScanContext
from dlp.store import parse_time, run_retention
from dlp.store.retention import purge_once
from tests.api.conftest import Running, serve
from tests.store.factories import PLANTED_CARD, PLANTED_MESSAGE, card_result, mail_context


def _quarantined(api: Running) -> str:
    item_id = api.store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    api.store.record_incident(card_result(), mail_context(), item_id)
    return item_id


def _audit(api: Running, target: str) -> list[tuple[str, str]]:
    with api.client("admin") as admin:
        items = admin.get("/v1/audit", params={"target": target}).json()["items"]
    return [(entry["actor"], entry["action"]) for entry in reversed(items)]


def test_lifecycle_list_read_release_to_maildir(api: Running) -> None:
    item_id = _quarantined(api)
    outbox = api.settings.state_dir.parent / "outbox"
    before = set((outbox / "new").iterdir()) if (outbox / "new").exists() else set()
    with api.client("reviewer") as reviewer:
        listed = reviewer.get(
            "/v1/quarantine", params={"status": "held", "channel": "smtp", "limit": 500}
        ).json()
        assert item_id in [i["id"] for i in listed["items"]]
        item = reviewer.get(f"/v1/quarantine/{item_id}").json()
        assert item["findings"][0]["preview"] == "4111 **** **** 1111"
        assert item["recipients"] == ["bob@partner.example"]
        assert reviewer.get(f"/v1/quarantine/{item_id}/content").content == PLANTED_MESSAGE
        released = reviewer.post(f"/v1/quarantine/{item_id}/release")
        assert released.status_code == 200, released.text
        assert released.json()["released"] is True
        assert released.json()["item"]["status"] == "released"
        assert released.json()["outcome"] == f"delivered to maildir:{outbox} for 1 recipient(s)"
        again = reviewer.post(f"/v1/quarantine/{item_id}/release")
        assert again.status_code == 409
        assert again.json() == {"error": "conflict", "detail": f"quarantine item {item_id} is released"}
    delivered = set((outbox / "new").iterdir()) - before
    assert [p.read_bytes() for p in delivered] == [b"X-DLP-Verdict: released\r\n" + PLANTED_MESSAGE]
    reviewer = api.store.verify_token(api.tokens["reviewer"])
    assert reviewer is not None
    reviewer_name = reviewer.name
    assert _audit(api, item_id) == [(reviewer_name, "quarantine.read"), (reviewer_name, "quarantine.release")]


def test_concurrent_releases_deliver_once(api: Running) -> None:
    item_id = _quarantined(api)
    outbox = api.settings.state_dir.parent / "outbox" / "new"
    before = len(list(outbox.iterdir())) if outbox.exists() else 0

    async def race() -> list[int]:
        import httpx

        headers = {"Authorization": f"Bearer {api.tokens['reviewer']}"}
        async with httpx.AsyncClient(base_url=api.url, headers=headers, verify=False) as client:
            replies = await asyncio.gather(
                *(client.post(f"/v1/quarantine/{item_id}/release") for _ in range(6))
            )
        return sorted(r.status_code for r in replies)

    assert asyncio.run(race()) == [200, 409, 409, 409, 409, 409]
    assert len(list(outbox.iterdir())) == before + 1


class _Sink:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_release_to_smtp_next_hop_as_originally_addressed(tmp_path: Path) -> None:
    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with serve(
            tmp_path / "var", smtp={"next_hop": f"smtp://127.0.0.1:{port}", "next_hop_tls": "none"}
        ) as api:
            item_id = _quarantined(api)
            with api.client() as anyone:
                assert anyone.get("/readyz").json()["checks"]["next_hop"] == "ok"
            with api.client("reviewer") as reviewer:
                response = reviewer.post(f"/v1/quarantine/{item_id}/release")
            assert response.status_code == 200, response.text
    finally:
        controller.stop()
    assert len(sink.envelopes) == 1
    sender, recipients, data = sink.envelopes[0]
    assert (sender, recipients) == ("alice@example.com", ["bob@partner.example"])
    assert email.message_from_bytes(data)["Subject"] == "numbers"


FORGED_MESSAGE = (
    b"X-DLP-Verdict: allow\r\nFrom: alice@example.com\r\nX-DLP-Incident: forged\r\n"
    b"To: bob@partner.example\r\nSubject: numbers\r\n\r\nX-DLP-Verdict: body text stays\r\n"
)


@pytest.mark.parametrize(
    ("add_headers", "expected"),
    [
        (
            True,
            b"X-DLP-Verdict: released\r\nFrom: alice@example.com\r\nTo: bob@partner.example\r\n"
            b"Subject: numbers\r\n\r\nX-DLP-Verdict: body text stays\r\n",
        ),
        (
            False,
            b"From: alice@example.com\r\nTo: bob@partner.example\r\n"
            b"Subject: numbers\r\n\r\nX-DLP-Verdict: body text stays\r\n",
        ),
    ],
)
def test_release_strips_forged_dlp_headers(tmp_path: Path, add_headers: bool, expected: bytes) -> None:
    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        hop = {"next_hop": f"smtp://127.0.0.1:{port}", "next_hop_tls": "none", "add_headers": add_headers}
        with serve(tmp_path / "var", smtp=hop) as api:
            item_id = api.store.quarantine(FORGED_MESSAGE, card_result(), mail_context())
            with api.client("reviewer") as reviewer:
                response = reviewer.post(f"/v1/quarantine/{item_id}/release")
                assert response.status_code == 200, response.text
                assert reviewer.get(f"/v1/quarantine/{item_id}/content").content == FORGED_MESSAGE
    finally:
        controller.stop()
    assert [data for _, _, data in sink.envelopes] == [expected]


def test_failed_release_is_recorded_and_can_be_retried(tmp_path: Path) -> None:
    port = _free_port()
    with serve(
        tmp_path / "var", smtp={"next_hop": f"smtp://127.0.0.1:{port}", "next_hop_timeout_seconds": 2}
    ) as api:
        item_id = _quarantined(api)
        with api.client() as anyone:
            ready = anyone.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["next_hop"].startswith(f"smtp://127.0.0.1:{port} unreachable")
        with api.client("reviewer") as reviewer:
            failed = reviewer.post(f"/v1/quarantine/{item_id}/release")
            assert failed.status_code == 502
            assert failed.json()["error"] == "release failed"
            assert failed.json()["detail"].startswith("temporary delivery failure")
            item = reviewer.get(f"/v1/quarantine/{item_id}").json()
        assert item["status"] == "held"
        assert item["release"]["attempts"] == 1
        assert [a for _, a in _audit(api, item_id)] == ["quarantine.release"]


def test_a_running_release_shows_when_it_was_claimed_but_not_its_claim_id(api: Running) -> None:
    item_id = _quarantined(api)
    before = time.time()
    ticket = api.store.claim_release(item_id, "reviewer-1")
    after = time.time()
    with api.client("reviewer") as reviewer:
        item = reviewer.get(f"/v1/quarantine/{item_id}")
        listed = reviewer.get("/v1/quarantine", params={"status": "releasing", "limit": 500}).json()
        release = item.json()["release"]
        assert (item.json()["status"], release["claimed_by"]) == ("releasing", "reviewer-1")
        assert release["claimed_at"].endswith("Z")
        assert before - 0.001 <= parse_time(release["claimed_at"]) <= after
        assert [i["release"] for i in listed["items"] if i["id"] == item_id] == [release]
        assert ticket.claim not in item.text + json.dumps(listed)
        api.store.finish_release(ticket, "delivered", ok=True)
        done = reviewer.get(f"/v1/quarantine/{item_id}").json()
    assert (done["status"], done["release"]["claimed_at"]) == ("released", None)


def test_release_of_an_upload_without_recipients(api: Running) -> None:
    item_id = api.store.quarantine(b"upload", card_result(), ScanContext(channel="http", client="portal"))
    with api.client("reviewer") as reviewer:
        response = reviewer.post(f"/v1/quarantine/{item_id}/release").json()
    assert response["outcome"] == "released to the caller (no mail recipients to deliver to)"


def test_delete_destroys_content_and_is_audited(api: Running) -> None:
    item_id = _quarantined(api)
    with api.client("reviewer") as reviewer:
        deleted = reviewer.delete(f"/v1/quarantine/{item_id}")
        assert deleted.status_code == 200
        assert deleted.json()["status"] == "deleted"
        gone = reviewer.get(f"/v1/quarantine/{item_id}/content")
        assert gone.status_code == 404
        assert gone.json()["error"] == "not found"
        assert reviewer.post(f"/v1/quarantine/{item_id}/release").status_code == 409
    assert not (api.settings.state_dir / "quarantine" / f"{item_id}.bin").exists()
    assert [a for _, a in _audit(api, item_id)] == ["quarantine.delete"]


def test_incident_review(api: Running) -> None:
    incident_id = api.store.record_incident(card_result(), mail_context())
    with api.client("reviewer") as reviewer:
        listed = reviewer.get("/v1/incidents", params={"status": "open", "limit": 500}).json()
        assert incident_id in [i["id"] for i in listed["items"]]
        patched = reviewer.patch(
            f"/v1/incidents/{incident_id}", json={"status": "false-positive", "notes": "test"}
        )
        assert patched.status_code == 200
        assert (patched.json()["status"], patched.json()["notes"]) == ("false-positive", "test")
        fp = reviewer.get("/v1/incidents", params={"status": "false-positive"}).json()["items"]
        assert incident_id in [i["id"] for i in fp]
        bad = reviewer.patch(f"/v1/incidents/{incident_id}", json={"status": "closed"})
        assert bad.status_code == 422
    assert [a for _, a in _audit(api, incident_id)] == ["incident.update"]


def test_incident_patch_sent_as_curl_does(api: Running) -> None:
    """`curl -X PATCH -d '{"status": ...}'` declares a form body; it is the JSON patch."""
    incident_id = api.store.record_incident(card_result(), mail_context())
    with api.client("reviewer") as reviewer:
        patched = reviewer.patch(
            f"/v1/incidents/{incident_id}",
            content=b'{"status": "resolved"}',
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "resolved"


@pytest.mark.parametrize(
    ("notes", "stored"),
    [
        ("customer says card 4111 1111 1111 1111 is theirs", "customer says card [masked] is theirs"),
        ("SSN 536-22-8451 confirmed", "SSN [masked] confirmed"),
        ("asked jane.roe@gmail.com", "asked j***@gmail.com"),
        ("benign: matched a test pattern", "benign: matched a test pattern"),
    ],
)
def test_incident_notes_never_store_a_raw_value(api: Running, notes: str, stored: str) -> None:
    incident_id = api.store.record_incident(card_result(), mail_context())
    with api.client("reviewer") as reviewer:
        patched = reviewer.patch(f"/v1/incidents/{incident_id}", json={"notes": notes})
        assert patched.status_code == 200
        assert patched.json()["notes"] == stored
    assert api.store.get_incident(incident_id)["notes"] == stored


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"since": "2020-01-01T00:00:00Z"}, 200),
        ({"since": "yesterday"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 501}, 422),
        ({"offset": -1}, 422),
        ({"status": "lost"}, 422),
    ],
)
def test_list_parameters(api: Running, params: dict[str, Any], status: int) -> None:
    with api.client("reviewer") as reviewer:
        assert reviewer.get("/v1/quarantine", params=params).status_code == status
        assert reviewer.get("/v1/incidents", params=params).status_code == status


def test_retention_purges_content_and_keys(tmp_path: Path) -> None:
    with serve(tmp_path / "var", retention={"quarantine_days": 1e-6, "purge_interval_seconds": 0.05}) as api:
        item_id = _quarantined(api)
        report = asyncio.run(purge_once(api.store, time.time() + 60))
        assert report.quarantine_items >= 1
        with api.client("reviewer") as reviewer:
            assert reviewer.get(f"/v1/quarantine/{item_id}/content").status_code == 404
            assert reviewer.get(f"/v1/quarantine/{item_id}").status_code == 404
        assert list((api.settings.state_dir / "quarantine").iterdir()) == []

        async def briefly() -> None:
            task = asyncio.create_task(run_retention(api.store, api.settings))
            await asyncio.sleep(0.3)
            task.cancel()

        second = _quarantined(api)
        time.sleep(0.1)
        asyncio.run(briefly())
        with api.client("reviewer") as reviewer:
            assert reviewer.get(f"/v1/quarantine/{second}").status_code == 404


@pytest.mark.parametrize(
    ("name", "disposition"),
    [
        ("mail.eml", 'attachment; filename="mail.eml"'),
        (
            "résumé q3.csv",
            "attachment; filename=\"r_sum_q3.csv\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20q3.csv",
        ),
    ],
)
def test_content_download_keeps_the_original_name(api: Running, name: str, disposition: str) -> None:
    """A browser or `curl -OJ` saves the download under the uploaded name (RFC 6266)."""
    with api.client("scanner") as scanner:
        scanned = scanner.post("/v1/scan", files={"file": (name, PLANTED_CARD.encode())}).json()
    with api.client("reviewer") as reviewer:
        response = reviewer.get(f"/v1/quarantine/{scanned['quarantine_id']}/content")
    assert response.headers["content-disposition"] == disposition
