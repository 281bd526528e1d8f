"""The PostgreSQL store on a private cluster: the backend-neutral store tests (imported
from test_sqlite, run here against PostgreSQL), what SQLite checks on files checked on
tables instead, migrations, the shared key, two replicas, and PostgreSQL going down."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dlp.cli import main
from dlp.errors import ConfigError, NotFound, StoreError
from dlp.model import Action, ScanContext
from dlp.store import Conflict, ReleaseTicket, Role, Store, StoreCounts, open_store, parse_time
from dlp.store.pg_migrations import MIGRATIONS
from dlp.store.postgres import PostgresStore
from dlp.store.sqlite import master_key_path
from dlp.store.tokens import hash_token
from tests.store.factories import PLANTED_CARD, PLANTED_MESSAGE, card_result, mail_context, settings_for
from tests.store.pg_cluster import Cluster
from tests.store.test_sqlite import IMPATIENT_LEASE
from tests.store.test_sqlite import (
    test_a_claim_past_its_lease_is_taken_over_and_the_old_claim_cannot_finish as test_a_claim_past_its_lease_is_taken_over_and_the_old_claim_cannot_finish,  # noqa: E501
)
from tests.store.test_sqlite import (
    test_audit_is_appended_and_listed_newest_first as test_audit_is_appended_and_listed_newest_first,
)
from tests.store.test_sqlite import test_counts_and_check_writable as test_counts_and_check_writable
from tests.store.test_sqlite import (
    test_failed_release_can_be_retried_and_success_is_final as test_failed_release_can_be_retried_and_success_is_final,  # noqa: E501
)
from tests.store.test_sqlite import (
    test_incident_warranted_and_monitor_marking as test_incident_warranted_and_monitor_marking,
)
from tests.store.test_sqlite import (
    test_incidents_record_update_and_notify as test_incidents_record_update_and_notify,
)
from tests.store.test_sqlite import test_list_incidents_filters as test_list_incidents_filters
from tests.store.test_sqlite import (
    test_list_quarantine_filters_and_pages as test_list_quarantine_filters_and_pages,
)
from tests.store.test_sqlite import (
    test_purge_puts_claims_past_their_lease_back_to_held as test_purge_puts_claims_past_their_lease_back_to_held,  # noqa: E501
)
from tests.store.test_sqlite import (
    test_quarantine_metadata as test_quarantine_metadata,
)
from tests.store.test_sqlite import (
    test_quarantine_roundtrip_from_bytes_and_path as test_quarantine_roundtrip_from_bytes_and_path,
)
from tests.store.test_sqlite import (
    test_release_is_claimed_once_even_under_contention as test_release_is_claimed_once_even_under_contention,
)
from tests.store.test_sqlite import test_unknown_and_hostile_ids as test_unknown_and_hostile_ids


@pytest.fixture
def store(tmp_path: Path, pg_url: str) -> Iterator[Store]:
    opened = open_store(settings_for(tmp_path / "var", store=pg_url))
    yield opened
    opened.close()


@pytest.fixture
def impatient(tmp_path: Path, pg_url: str) -> Iterator[Store]:
    """The same store opened again with a 1 ms release lease: every claim looks abandoned to it."""
    opened = open_store(
        settings_for(tmp_path / "var", store=pg_url, retention={"release_lease_seconds": IMPATIENT_LEASE})
    )
    yield opened
    opened.close()


def replica(tmp_path: Path, name: str, url: str, **overrides: object) -> Store:
    """A store as replica `name` opens it: its own state folder, the shared quarantine key."""
    state = tmp_path / name
    shared = master_key_path(tmp_path / "shared")
    if shared.exists():
        master_key_path(state).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared, master_key_path(state))
    opened = open_store(settings_for(state, store=url, **overrides))
    if not shared.exists():
        shared.parent.mkdir(parents=True)
        shutil.copy(master_key_path(state), shared)
    return opened


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[tuple[Store, Store]]:
    a = replica(tmp_path, "a", pg_url)
    b = replica(tmp_path, "b", pg_url)
    yield a, b
    a.close()
    b.close()


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on the test's schema; the rows it returned, if any."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql.encode())
        return cursor.fetchall() if cursor.description else []


def _stable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between two stores (ids, times)."""
    volatile = {"id", "scan_id", "created_at", "updated_at", "at", "seq", "quarantine_id", "target"}
    return {k: v for k, v in record.items() if k not in volatile}


def test_records_have_the_same_shape_on_both_backends(store: Store, tmp_path: Path) -> None:
    sqlite = open_store(settings_for(tmp_path / "sqlite"))
    try:
        result = card_result()
        shapes = []
        for backend in (sqlite, store):
            item = backend.quarantine(PLANTED_MESSAGE, result, mail_context())
            incident = backend.record_incident(result, mail_context(), item)
            backend.append_audit("reviewer-1", "quarantine.read", item, {"n": 1})
            shapes.append(
                (
                    _stable(backend.get_quarantine(item)),
                    _stable(backend.get_incident(incident)),
                    _stable(backend.list_audit().items[0]),
                    backend.counts(),
                )
            )
        assert shapes[0] == shapes[1]
    finally:
        sqlite.close()


def test_nothing_stored_holds_the_raw_value_or_a_token(store: Store, pg_url: str) -> None:
    item_id = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    store.record_incident(card_result(), mail_context(), item_id)
    store.append_audit("reviewer-1", "quarantine.read", item_id)
    secret, _ = store.create_token(Role.ADMIN, "ops")
    assert store.read_quarantine_bytes(item_id) == PLANTED_MESSAGE
    listed = rows(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    tables = [r[0] for r in listed]
    assert sorted(tables) == [
        "audit",
        "dlp_schema_migrations",
        "incidents",
        "meta",
        "quarantine",
        "quarantine_chunks",
        "tokens",
    ]
    chunks = b"".join(bytes(r[0]) for r in rows(pg_url, "SELECT data FROM quarantine_chunks"))
    for table in tables:
        dumped = "\n".join(r[0] for r in rows(pg_url, f"SELECT t::text FROM {table} t"))
        for needle in (PLANTED_CARD, "card 4111", secret):
            assert needle not in dumped, table
            assert needle.encode() not in chunks


def test_delete_destroys_content_rows_and_key(store: Store, pg_url: str) -> None:
    item_id = store.quarantine(b"x" * 3_000_000, card_result(), mail_context())
    assert rows(pg_url, "SELECT count(*) FROM quarantine_chunks") == [(4,)]  # header, 3 chunks
    store.delete_quarantine(item_id, "reviewer-1")
    assert rows(pg_url, "SELECT count(*) FROM quarantine_chunks") == [(0,)]
    assert rows(pg_url, "SELECT wrapped_key, status, claimed_by FROM quarantine") == [
        (None, "deleted", "reviewer-1")
    ]
    with pytest.raises(NotFound):
        store.read_quarantine(item_id)
    with pytest.raises(Conflict):
        store.claim_release(item_id, "reviewer-1")
    assert store.counts() == StoreCounts(0, 0, 0)


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE quarantine_chunks SET data = set_byte(data, length(data) - 1,"
        " get_byte(data, length(data) - 1) # 255)",
        "DELETE FROM quarantine_chunks WHERE seq = (SELECT max(seq) FROM quarantine_chunks)",
        "UPDATE quarantine SET wrapped_key = set_byte(wrapped_key, 20, get_byte(wrapped_key, 20) # 1)",
    ],
    ids=["flipped-byte", "truncated", "wrapped-key"],
)
def test_tampered_content_is_refused(store: Store, pg_url: str, tamper: str) -> None:
    item_id = store.quarantine(b"y" * 2_500_000, card_result(), mail_context())
    rows(pg_url, tamper)
    with pytest.raises(StoreError):
        store.read_quarantine_bytes(item_id)


def test_tokens_are_hashed_unique_and_revocable(store: Store) -> None:
    assert not store.has_tokens()
    secret, info = store.create_token(Role.REVIEWER, "alice")
    assert store.has_tokens()
    assert store.verify_token(secret) == info
    assert store.verify_token(secret + "x") is None
    with pytest.raises(Conflict):
        store.create_token(Role.ADMIN, "alice")
    _, unnamed = store.create_token(Role.SCANNER)
    assert [t.name for t in store.list_tokens()] == ["alice", unnamed.name]
    assert store.revoke_token("alice").revoked is True
    assert store.verify_token(secret) is None
    with pytest.raises(NotFound):
        store.revoke_token("nobody")


def test_hostile_text_is_stored_cleaned(store: Store) -> None:
    hostile = ScanContext(
        channel="smtp",
        sender="a\x00b@example.com",
        recipients=("c\x00@partner.example",),
        client="127.0.0.1",
        internal_domains=(),
    )
    item_id = store.quarantine(b"z", card_result(name="n\x00\udcff.eml"), hostile)
    item = store.get_quarantine(item_id)
    assert (item["sender"], item["recipients"], item["item_name"]) == (
        "a\ufffdb@example.com",
        ["c\x00@partner.example"],
        "n\ufffd?.eml",
    )
    assert store.claim_release(item_id, "r\x00").recipients == ("c\x00@partner.example",)


@pytest.mark.parametrize("bad", ["a\x00b", "\udcff", "x" * 10_000])
def test_ids_postgresql_text_cannot_hold_are_not_found(store: Store, bad: str) -> None:
    for call in (
        store.get_quarantine,
        store.read_quarantine,
        lambda i: store.claim_release(i, "r"),
        lambda i: store.delete_quarantine(i, "r"),
        lambda i: store.finish_release(ReleaseTicket(i, "smtp", None, (), 0, "r", "c"), "done", ok=True),
        store.get_incident,
        lambda i: store.update_incident(i, "r", notes="n"),
        store.revoke_token,
    ):
        with pytest.raises((NotFound, Conflict)):
            call(bad)
    assert store.verify_token(bad) is None
    assert store.list_quarantine(channel=bad).total == 0


def test_purge_is_transactional_and_one_replica_at_a_time(tmp_path: Path, pg_url: str) -> None:
    store = replica(tmp_path, "a", pg_url, retention={"quarantine_days": 1, "incidents_days": 2})
    try:
        old = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
        old_incident = store.record_incident(card_result(), mail_context(), old)
        now = time.time()
        report = store.purge_expired(now + 60)
        assert (report.quarantine_items, report.incidents, report.orphan_files) == (0, 0, 0)
        with psycopg.connect(pg_url) as other:
            other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (0x646C70, 2))
            skipped = store.purge_expired(now + 3 * 86400)
            assert (skipped.quarantine_items, skipped.incidents) == (0, 0)
            other.execute("DELETE FROM quarantine")
            other.execute("DELETE FROM incidents")
            with psycopg.connect(pg_url, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (other.info.backend_pid,))
            with pytest.raises(psycopg.OperationalError):
                other.commit()
        assert store.read_quarantine_bytes(old) == PLANTED_MESSAGE
        report = store.purge_expired(now + 1.5 * 86400)
        assert (report.quarantine_items, report.incidents, report.orphan_files) == (1, 0, 0)
        assert rows(pg_url, "SELECT count(*) FROM quarantine_chunks") == [(0,)]
        with pytest.raises(NotFound):
            store.read_quarantine(old)
        assert store.purge_expired(now + 2.5 * 86400).incidents == 1
        with pytest.raises(NotFound):
            store.get_incident(old_incident)
        assert store.counts() == StoreCounts(0, 0, 0)
    finally:
        store.close()


def test_replicas_starting_together_migrate_once(tmp_path: Path, pg_url: str) -> None:
    first = replica(tmp_path, "first", pg_url)
    first.close()
    rows(
        pg_url,
        "DROP TABLE dlp_schema_migrations, meta, quarantine_chunks, quarantine, incidents, audit, tokens",
    )
    opened: list[Store] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start(n: int) -> None:
        barrier.wait()
        try:
            opened.append(replica(tmp_path, f"r{n}", pg_url))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in opened:
        s.close()
    assert (len(opened), failures) == (4, [])
    assert rows(pg_url, "SELECT version, name FROM dlp_schema_migrations ORDER BY version") == [
        (version, name) for version, name, _ in MIGRATIONS
    ]


def test_a_role_without_create_runs_a_migrated_schema(tmp_path: Path, pg_url: str) -> None:
    replica(tmp_path, "owner", pg_url).close()
    ((schema,),) = rows(pg_url, "SELECT current_schema()")
    role = f"{schema}_app"
    rows(pg_url, f'CREATE ROLE "{role}" LOGIN')
    rows(pg_url, f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
    rows(pg_url, f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    url = pg_url.replace("postgresql://dlp@", f"postgresql://{role}@")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        rows(url, "CREATE TABLE nope (x integer)")
    store = replica(tmp_path, "app", url)
    try:
        item_id = store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
        assert store.read_quarantine_bytes(item_id) == PLANTED_MESSAGE
        assert store.append_audit("reviewer-1", "quarantine.read", item_id) == 1
        assert store.purge_expired(time.time()).quarantine_items == 0
        store.check_writable()
    finally:
        store.close()


def test_a_replica_with_another_quarantine_key_refuses_to_start(tmp_path: Path, pg_url: str) -> None:
    replica(tmp_path, "a", pg_url).close()
    with pytest.raises(ConfigError, match="same key"):
        open_store(settings_for(tmp_path / "stranger", store=pg_url))


def test_commits_are_durable_even_if_the_database_says_otherwise(tmp_path: Path, pg_url: str) -> None:
    rows(pg_url, "ALTER ROLE dlp IN DATABASE postgres SET synchronous_commit = off")
    try:
        assert rows(pg_url, "SHOW synchronous_commit") == [("off",)]
        store = PostgresStore(settings_for(tmp_path / "var", store=pg_url))
        try:
            store.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
            with store._pool.connection() as conn:
                assert conn.execute("SHOW synchronous_commit").fetchone() == {"synchronous_commit": "on"}
        finally:
            store.close()
    finally:
        rows(pg_url, "ALTER ROLE dlp IN DATABASE postgres RESET synchronous_commit")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("postgresql://127.0.0.1:1/none?connect_timeout=2", StoreError),
        ("postgresql://x/y?nosuchoption=1", ConfigError),
        ("mysql://x/y", ConfigError),
    ],
)
def test_unusable_urls(tmp_path: Path, url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        open_store(settings_for(tmp_path / "var", store=url))


def test_quarantined_on_one_replica_is_read_and_released_once_on_another(
    replicas: tuple[Store, Store],
) -> None:
    a, b = replicas
    item_id = a.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    assert [i["id"] for i in b.list_quarantine(status="held").items] == [item_id]
    assert b.read_quarantine_bytes(item_id) == PLANTED_MESSAGE
    outcomes: list[str] = []
    tickets: list[ReleaseTicket] = []
    barrier = threading.Barrier(2)

    def claim(store: Store, actor: str) -> None:
        barrier.wait()
        try:
            tickets.append(store.claim_release(item_id, actor))
            outcomes.append(actor)
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=claim, args=(s, n)) for s, n in ((a, "on-a"), (b, "on-b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[0] == "conflict" and sorted(outcomes)[1] in ("on-a", "on-b")
    winner = a if "on-a" in outcomes else b
    winner.finish_release(tickets[0], "delivered", ok=True)
    assert a.get_quarantine(item_id)["status"] == b.get_quarantine(item_id)["status"] == "released"


def test_an_abandoned_claim_raced_from_both_replicas_is_taken_over_once(tmp_path: Path, pg_url: str) -> None:
    lease = {"retention": {"release_lease_seconds": 1.0}}
    a, b = replica(tmp_path, "a", pg_url, **lease), replica(tmp_path, "b", pg_url, **lease)
    try:
        item_id = a.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
        first_claim = time.time()
        abandoned = a.claim_release(item_id, "dead-replica")
        time.sleep(1.05)
        tickets: list[ReleaseTicket] = []
        conflicts: list[Conflict] = []
        barrier = threading.Barrier(2)

        def claim(store: Store, actor: str) -> None:
            barrier.wait()
            try:
                tickets.append(store.claim_release(item_id, actor))
            except Conflict as exc:
                conflicts.append(exc)

        threads = [threading.Thread(target=claim, args=(s, n)) for s, n in ((a, "on-a"), (b, "on-b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (len(tickets), len(conflicts)) == (1, 1)
        running = b.get_quarantine(item_id)["release"]
        assert running["claimed_by"] == tickets[0].claimed_by
        assert parse_time(running["claimed_at"]) >= first_claim + 1.0
        with pytest.raises(Conflict):
            b.finish_release(abandoned, "delivered", ok=True)
        a.finish_release(tickets[0], "delivered", ok=True)
        release = b.get_quarantine(item_id)["release"]
        assert (release["claimed_by"], release["attempts"]) == (tickets[0].claimed_by, 1)
    finally:
        a.close()
        b.close()


def test_version_1_schema_is_migrated_and_releasing_items_get_a_lease(tmp_path: Path, pg_url: str) -> None:
    first = replica(tmp_path, "a", pg_url)
    item_id = first.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    first.claim_release(item_id, "reviewer-1")
    first.close()
    rows(
        pg_url,
        "ALTER TABLE quarantine DROP COLUMN claimed_at, DROP COLUMN claim;"
        " DELETE FROM dlp_schema_migrations WHERE version = 2",
    )
    before = time.time()
    migrated = replica(tmp_path, "b", pg_url)
    try:
        assert rows(pg_url, "SELECT version FROM dlp_schema_migrations ORDER BY version") == [(1,), (2,)]
        [(claimed_at, claim)] = rows(pg_url, "SELECT claimed_at, claim FROM quarantine")
        assert claim is None
        assert before - 0.01 <= claimed_at <= time.time() + 0.01
        with pytest.raises(Conflict):
            migrated.claim_release(item_id, "reviewer-2")
    finally:
        migrated.close()


def test_tokens_and_revocation_count_on_every_replica_at_once(replicas: tuple[Store, Store]) -> None:
    a, b = replicas
    secret, info = a.create_token(Role.REVIEWER, "alice")
    assert b.verify_token(secret) == info
    b.revoke_token(info.id)
    assert a.verify_token(secret) is None


def test_incidents_from_either_replica_are_listed_by_both(replicas: tuple[Store, Store]) -> None:
    a, b = replicas
    first = a.record_incident(card_result(Action.BLOCK), mail_context())
    second = b.record_incident(card_result(Action.ALERT), mail_context())
    b.update_incident(first, "reviewer-b", status="resolved")
    assert [i["id"] for i in a.list_incidents().items] == [second, first]
    assert a.get_incident(first)["status"] == "resolved"
    assert a.counts() == b.counts() == StoreCounts(0, 0, 1)


def test_postgres_down_raises_store_error_and_service_resumes(
    replicas: tuple[Store, Store], pg_cluster: Cluster
) -> None:
    a, b = replicas
    before = a.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    secret, _ = a.create_token(Role.ADMIN, "ops")
    pg_cluster.stop()
    try:
        for call in (
            lambda: a.quarantine(PLANTED_MESSAGE, card_result(), mail_context()),
            lambda: b.record_incident(card_result(), mail_context()),
            lambda: b.verify_token(secret),
            lambda: a.read_quarantine_bytes(before),
            b.check_writable,
            b.counts,
        ):
            started = time.monotonic()
            with pytest.raises(StoreError):
                call()
            assert time.monotonic() - started < 5.0
    finally:
        pg_cluster.start()
    after = b.quarantine(PLANTED_MESSAGE, card_result(), mail_context())
    assert a.verify_token(secret) is not None
    assert [i["id"] for i in a.list_quarantine().items] == [after, before]
    a.check_writable()


def test_token_command_with_the_store_from_the_environment(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    replica(tmp_path, "a", pg_url).close()
    monkeypatch.setenv("DLP_STATE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("DLP_STORE", pg_url)
    assert main(["token", "create", "--role", "reviewer", "--name", "ci"]) == 0
    secret = capsys.readouterr().out.splitlines()[-1]
    other = replica(tmp_path, "b", pg_url)
    try:
        info = other.verify_token(secret)
        assert info is not None and (info.name, info.role) == ("ci", Role.REVIEWER)
        assert [e["action"] for e in other.list_audit().items] == ["token.create"]
    finally:
        other.close()
    assert rows(pg_url, f"SELECT count(*) FROM tokens WHERE hash = '{hash_token(secret)}'") == [(1,)]
