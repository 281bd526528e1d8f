"""The embedded store on a real SQLite file: quarantine, release claims, incidents,
audit, tokens, retention, file modes, and that no raw value is ever written."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dlp.errors import NotFound, StoreError
from dlp.model import Action
from dlp.store import Conflict, PurgeReport, Role, Store, StoreCounts, incident_warranted, open_store
from dlp.store.crypto import CHUNK_SIZE
from dlp.store.sqlite import DB_NAME
from tests.store.factories import PLANTED_CARD, PLANTED_MESSAGE, card_result, mail_context, settings_for


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(settings_for(tmp_path / "var"))
    yield opened
    opened.close()


IMPATIENT_LEASE = 0.001


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[Store]:
    """The same store opened again with a 1 ms release lease: every claim looks abandoned to it."""
    opened = open_store(settings_for(tmp_path / "var", retention={"release_lease_seconds": IMPATIENT_LEASE}))
    yield opened
    opened.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_folders_are_private(store: Store, tmp_path: Path) -> None:
    store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    root = tmp_path / "var"
    assert _mode(root) == 0o700
    assert _mode(root / "keys") == 0o700
    assert _mode(root / "quarantine") == 0o700
    assert _mode(root / "keys" / "quarantine.key") == 0o600
    assert _mode(root / "dlp.sqlite3") == 0o600
    assert _mode(root / "dlp.sqlite3-wal") == 0o600
    assert [_mode(p) for p in (root / "quarantine").iterdir()] == [0o600]


@pytest.mark.parametrize("size", [0, 5, CHUNK_SIZE, 3 * CHUNK_SIZE + 11])
def test_quarantine_roundtrip_from_bytes_and_path(store: Store, tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    spooled = tmp_path / "spool.bin"
    spooled.write_bytes(data)
    from_bytes = store.quarantine(data, card_result(), mail_context())
    from_path = store.quarantine(spooled, card_result(), mail_context())
    assert store.read_quarantine_bytes(from_bytes) == data
    assert b"".join(store.read_quarantine(from_path)) == data
    assert store.get_quarantine(from_path)["size"] == size


def test_quarantine_metadata(store: Store) -> None:
    result = card_result()
    item_id = store.quarantine(PLANTED_MESSAGE, result, mail_context())
    item = store.get_quarantine(item_id)
    assert item["id"] == item_id
    assert item["status"] == "held"
    assert item["channel"] == "smtp"
    assert item["sender"] == "alice@example.com"
    assert item["recipients"] == ["bob@partner.example"]
    assert item["client"] == "127.0.0.1"
    assert item["item_name"] == "mail.eml"
    assert item["action"] == "quarantine"
    assert item["scan_id"] == result.id
    assert item["rules"] == [r.to_dict() for r in result.verdict.rules]
    assert item["findings"] == [f.to_dict() for f in result.findings]
    assert item["regulations"] == ["pci-dss"]
    assert item["created_at"].endswith("Z")
    assert item["release"] == {
        "claimed_by": None,
        "claimed_at": None,
        "released_at": None,
        "outcome": None,
        "attempts": 0,
    }


def test_content_is_encrypted_and_nothing_stores_the_raw_value(store: Store, tmp_path: Path) -> None:
    item_id = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    store.record_incident(card_result(), mail_context(), item_id)
    store.append_audit("reviewer-1", "quarantine.read", item_id)
    assert store.read_quarantine_bytes(item_id) == PLANTED_MESSAGE
    files = [p for p in (tmp_path / "var").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"dlp.sqlite3", "dlp.sqlite3-wal", f"{item_id}.bin"}
    for path in files:
        raw = path.read_bytes()
        assert PLANTED_CARD.encode() not in raw, path
        assert b"card 4111" not in raw, path


def test_unknown_and_hostile_ids(store: Store) -> None:
    for bad in ("01NOSUCHITEM0000000000000", "../../etc/passwd", ""):
        with pytest.raises(NotFound):
            store.get_quarantine(bad)
        with pytest.raises(NotFound):
            store.read_quarantine(bad)
        with pytest.raises(NotFound):
            store.claim_release(bad, "r")
        with pytest.raises(NotFound):
            store.delete_quarantine(bad, "r")


def test_delete_destroys_content_and_key(store: Store, tmp_path: Path) -> None:
    item_id = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    store.delete_quarantine(item_id, "reviewer-1")
    assert not (tmp_path / "var" / "quarantine" / f"{item_id}.bin").exists()
    assert store.get_quarantine(item_id)["status"] == "deleted"
    with pytest.raises(NotFound):
        store.read_quarantine(item_id)
    with pytest.raises(Conflict):
        store.claim_release(item_id, "reviewer-1")
    assert store.counts() == StoreCounts(0, 0, 0)


def test_tampered_content_is_refused(store: Store, tmp_path: Path) -> None:
    item_id = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    path = tmp_path / "var" / "quarantine" / f"{item_id}.bin"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError):
        store.read_quarantine_bytes(item_id)


def test_release_is_claimed_once_even_under_contention(store: Store) -> None:
    item_id = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        try:
            store.claim_release(item_id, f"reviewer-{n}")
            outcomes.append("claimed")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["claimed"] + ["conflict"] * 7
    assert store.get_quarantine(item_id)["status"] == "releasing"
    with pytest.raises(Conflict):
        store.delete_quarantine(item_id, "reviewer-1")


def test_failed_release_can_be_retried_and_success_is_final(store: Store) -> None:
    item_id = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    ticket = store.claim_release(item_id, "reviewer-1")
    assert (ticket.sender, ticket.recipients, ticket.channel) == (
        "alice@example.com",
        ("bob@partner.example",),
        "smtp",
    )
    store.finish_release(ticket, "451 4.4.1 next hop down", ok=False)
    item = store.get_quarantine(item_id)
    assert (item["status"], item["release"]["outcome"], item["release"]["attempts"]) == (
        "held",
        "451 4.4.1 next hop down",
        1,
    )
    second = store.claim_release(item_id, "reviewer-2")
    store.finish_release(second, "delivered", ok=True)
    item = store.get_quarantine(item_id)
    assert item["status"] == "released"
    assert item["release"]["claimed_by"] == "reviewer-2"
    assert item["release"]["attempts"] == 2
    assert item["release"]["released_at"] is not None
    with pytest.raises(Conflict):
        store.claim_release(item_id, "reviewer-1")
    with pytest.raises(Conflict):
        store.finish_release(second, "again", ok=True)


def test_a_claim_past_its_lease_is_taken_over_and_the_old_claim_cannot_finish(
    store: Store, impatient: Store
) -> None:
    item_id = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    abandoned = store.claim_release(item_id, "reviewer-1")
    with pytest.raises(Conflict):
        store.claim_release(item_id, "reviewer-2")
    time.sleep(10 * IMPATIENT_LEASE)
    taken_over = impatient.claim_release(item_id, "reviewer-2")
    assert (taken_over.recipients, taken_over.claim != abandoned.claim) == (("bob@partner.example",), True)
    with pytest.raises(Conflict):
        store.finish_release(abandoned, "delivered", ok=True)
    store.finish_release(taken_over, "delivered", ok=True)
    release = store.get_quarantine(item_id)["release"]
    assert (release["claimed_by"], release["outcome"], release["attempts"]) == ("reviewer-2", "delivered", 1)
    with pytest.raises(Conflict):
        impatient.claim_release(item_id, "reviewer-3")


def test_purge_puts_claims_past_their_lease_back_to_held(store: Store, impatient: Store) -> None:
    item_id = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    abandoned = store.claim_release(item_id, "reviewer-1")
    assert store.purge_expired(time.time()) == PurgeReport(0, 0, 0, 0)
    assert store.get_quarantine(item_id)["status"] == "releasing"
    time.sleep(10 * IMPATIENT_LEASE)
    assert impatient.purge_expired(time.time()) == PurgeReport(0, 0, 0, 1)
    item = store.get_quarantine(item_id)
    assert (item["status"], item["release"]["attempts"]) == ("held", 1)
    assert re.fullmatch(
        r"abandoned: the release claimed by reviewer-1 at \d{4}-\d\d-\d\dT[\d:.]+Z outlived its 0\.001 s"
        r" lease; the next hop may have received it before that replica stopped",
        item["release"]["outcome"],
    )
    with pytest.raises(Conflict):
        store.finish_release(abandoned, "delivered", ok=True)
    store.finish_release(store.claim_release(item_id, "reviewer-2"), "delivered", ok=True)
    assert store.get_quarantine(item_id)["release"]["attempts"] == 2


def test_list_quarantine_filters_and_pages(store: Store) -> None:
    ids = [store.quarantine(b"x", card_result(), mail_context()) for _ in range(5)]
    blocked = store.quarantine(b"y", card_result(Action.BLOCK), mail_context())
    store.delete_quarantine(ids[0], "r")
    page = store.list_quarantine(limit=2, offset=1)
    assert page.total == 6
    assert [i["id"] for i in page.items] == [ids[4], ids[3]]
    assert [i["id"] for i in store.list_quarantine(action="block").items] == [blocked]
    assert store.list_quarantine(status="deleted").total == 1
    assert store.list_quarantine(channel="http").total == 0
    assert store.list_quarantine(since=time.time() + 60).total == 0
    assert store.list_quarantine(until=time.time() + 60).total == 6


def test_incidents_record_update_and_notify(store: Store) -> None:
    seen: list[dict[str, Any]] = []
    store.on_incident(seen.append)
    store.on_incident(lambda incident: 1 / 0)  # a failing sink must not undo the incident
    result = card_result(Action.BLOCK)
    incident_id = store.record_incident(result, mail_context(), "Q1")
    incident = store.get_incident(incident_id)
    assert seen == [incident]
    assert incident["status"] == "open"
    assert incident["monitor"] is False
    assert incident["quarantine_id"] == "Q1"
    assert incident["action"] == "block"
    assert incident["deadlines_hours"] == {"pci-dss": 24}
    assert incident["findings"][0]["hash"].startswith("hmac-sha256:")
    assert incident["findings"][0]["preview"] == "4111 **** **** 1111"
    updated = store.update_incident(incident_id, "reviewer-1", status="false-positive", notes="test card")
    assert (updated["status"], updated["notes"], updated["updated_by"]) == (
        "false-positive",
        "test card",
        "reviewer-1",
    )
    assert store.update_incident(incident_id, "reviewer-2", notes="again")["status"] == "false-positive"
    with pytest.raises(ValueError):
        store.update_incident(incident_id, "r", status="closed")
    with pytest.raises(NotFound):
        store.update_incident("nope", "r", status="open")
    assert store.counts().open_incidents == 0


@pytest.mark.parametrize(
    ("action", "mode", "warranted", "monitor"),
    [
        (Action.ALLOW, "enforce", False, False),
        (Action.ALLOW, "monitor", True, True),
        (Action.ALERT, "enforce", True, False),
        (Action.BLOCK, "enforce", True, False),
    ],
)
def test_incident_warranted_and_monitor_marking(
    store: Store, action: Action, mode: str, warranted: bool, monitor: bool
) -> None:
    result = card_result(action, mode=mode)
    assert incident_warranted(result) is warranted
    incident_id = store.record_incident(result, mail_context())
    assert store.get_incident(incident_id)["monitor"] is monitor


def test_list_incidents_filters(store: Store) -> None:
    a = store.record_incident(card_result(Action.BLOCK), mail_context())
    b = store.record_incident(card_result(Action.ALLOW, mode="monitor"), mail_context())
    store.update_incident(a, "r", status="resolved")
    assert [i["id"] for i in store.list_incidents().items] == [b, a]
    assert [i["id"] for i in store.list_incidents(status="open").items] == [b]
    assert [i["id"] for i in store.list_incidents(monitor=True).items] == [b]
    assert [i["id"] for i in store.list_incidents(action="block").items] == [a]


def test_audit_is_appended_and_listed_newest_first(store: Store) -> None:
    first = store.append_audit("admin", "token.create", "T1", {"role": "scanner"})
    second = store.append_audit("reviewer-1", "quarantine.read", "Q1")
    assert second > first
    page = store.list_audit()
    assert [(e["seq"], e["actor"], e["action"], e["target"]) for e in page.items] == [
        (second, "reviewer-1", "quarantine.read", "Q1"),
        (first, "admin", "token.create", "T1"),
    ]
    assert page.items[1]["detail"] == {"role": "scanner"}
    assert store.list_audit(actor="admin").total == 1
    assert store.list_audit(action="quarantine.read", target="Q1").total == 1


def test_tokens(store: Store, tmp_path: Path) -> None:
    assert not store.has_tokens()
    secret, info = store.create_token(Role.REVIEWER, "alice")
    assert secret.startswith("dlp_") and len(secret) > 40
    assert store.has_tokens()
    assert store.verify_token(secret) == info
    assert store.verify_token(secret + "x") is None
    assert store.verify_token("") is None
    with pytest.raises(Conflict):
        store.create_token(Role.ADMIN, "alice")
    _, unnamed = store.create_token(Role.SCANNER)
    assert unnamed.name.startswith("scanner-")
    assert [t.name for t in store.list_tokens()] == ["alice", unnamed.name]
    assert store.revoke_token("alice").revoked is True
    assert store.verify_token(secret) is None
    with pytest.raises(NotFound):
        store.revoke_token("nobody")
    assert secret.encode() not in (tmp_path / "var" / "dlp.sqlite3-wal").read_bytes()


def test_purge_removes_expired_content_key_material_and_orphans(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "var", retention={"quarantine_days": 1, "incidents_days": 2})
    store = open_store(settings)
    try:
        old = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
        old_incident = store.record_incident(card_result(), mail_context(), old)
        orphan = tmp_path / "var" / "quarantine" / "01ORPHAN.tmp"
        orphan.write_bytes(b"half written")
        now = time.time()
        report = store.purge_expired(now + 60)
        assert (report.quarantine_items, report.incidents, report.orphan_files) == (0, 0, 0)
        assert orphan.exists()
        report = store.purge_expired(now + 0.5 * 86400)
        assert (report.quarantine_items, report.incidents, report.orphan_files) == (0, 0, 1)
        assert not orphan.exists()
        assert store.read_quarantine_bytes(old) == PLANTED_MESSAGE
        report = store.purge_expired(now + 1.5 * 86400)
        assert (report.quarantine_items, report.incidents, report.orphan_files) == (1, 0, 0)
        assert list((tmp_path / "var" / "quarantine").iterdir()) == []
        with pytest.raises(NotFound):
            store.read_quarantine(old)
        assert store.get_incident(old_incident)["quarantine_id"] == old
        assert store.purge_expired(now + 2.5 * 86400).incidents == 1
        with pytest.raises(NotFound):
            store.get_incident(old_incident)
        assert store.counts() == StoreCounts(0, 0, 0)
    finally:
        store.close()


def test_counts_and_check_writable(store: Store) -> None:
    store.quarantine(b"12345", card_result(), mail_context())
    store.quarantine(b"123", card_result(), mail_context())
    store.record_incident(card_result(), mail_context())
    assert store.counts() == StoreCounts(2, 8, 1)
    store.check_writable()


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "var")
    first = open_store(settings)
    item_id = first.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    secret, _ = first.create_token(Role.ADMIN, "ops")
    first.close()
    with pytest.raises(StoreError):
        first.counts()
    second = open_store(settings)
    try:
        assert second.read_quarantine_bytes(item_id) == PLANTED_MESSAGE
        assert second.verify_token(secret) is not None
    finally:
        second.close()


def test_a_version_1_database_is_migrated_and_its_releasing_items_get_a_lease(tmp_path: Path) -> None:
    state = tmp_path / "var"
    first = open_store(settings_for(state))
    item_id = first.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    first.claim_release(item_id, "reviewer-1")
    first.close()
    with contextlib.closing(sqlite3.connect(state / DB_NAME)) as conn:
        conn.execute("ALTER TABLE quarantine DROP COLUMN claim")
        conn.execute("ALTER TABLE quarantine DROP COLUMN claimed_at")
        conn.execute("PRAGMA user_version = 0")
        conn.commit()
    before = time.time()
    migrated = open_store(settings_for(state))
    try:
        with contextlib.closing(sqlite3.connect(state / DB_NAME)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            claimed_at, claim = conn.execute("SELECT claimed_at, claim FROM quarantine").fetchone()
        assert (version, claim) == (2, None)
        assert before - 0.01 <= claimed_at <= time.time() + 0.01
        with pytest.raises(Conflict):
            migrated.claim_release(item_id, "reviewer-2")
    finally:
        migrated.close()
