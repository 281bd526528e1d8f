"""Two `dlp serve` replicas sharing one PostgreSQL store (the private test cluster):
quarantine through A's relay, release through B's API, the mail arrives once; a
release raced from both replicas delivers once; a token made on A works on B at once,
and its revocation too; PostgreSQL stopped mid-traffic gives 4xx/503 and loses nothing,
and traffic resumes when it returns."""

from __future__ import annotations

import concurrent.futures
import shutil
import smtplib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dlp.edm import edm_key_path
from dlp.keys import load_or_create_key
from dlp.pipeline import hash_key_path
from dlp.smtp import replies
from dlp.store import Role, open_store
from dlp.store.sqlite import master_key_path
from tests.ops.test_serve import ROOT, Served, message, start_serve
from tests.store.factories import settings_for
from tests.store.pg_cluster import Cluster

QUARANTINED_BODY = "Please charge it to my card.\nVisa card number: 4929180432771533\n"
RECIPIENT = "bob@partner.test"


@dataclass
class Replicas:
    a: Served
    b: Served
    outbox: Path
    admin: str
    url: str

    def delivered(self) -> list[bytes]:
        """Every message the shared maildir next hop received."""
        return [p.read_bytes() for p in self.outbox.rglob("*") if p.is_file() and p.parent.name == "new"]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, pg_cluster: Cluster) -> Iterator[Replicas]:
    """Replicas A and B: own state folders and ports, one database, one set of keys, one next hop."""
    tmp = tmp_path_factory.mktemp("replicas")
    url = pg_cluster.create_schema()
    shared = tmp / "keys"
    for path in (hash_key_path(shared.parent), master_key_path(shared.parent), edm_key_path(shared.parent)):
        load_or_create_key(path)
    for name in ("a", "b"):
        shutil.copytree(ROOT / "policies", tmp / name / "policies", ignore=shutil.ignore_patterns("*.md"))
        shutil.copytree(shared, tmp / name / "state" / "keys")
    store = open_store(settings_for(tmp / "a" / "state", store=url))
    admin, _ = store.create_token(Role.ADMIN, "ops")
    store.close()
    outbox = tmp / "outbox"
    env = {"DLP_STORE": url, "DLP_SMTP__NEXT_HOP": f"maildir:{outbox}"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda name: start_serve(tmp / name, **env), ("a", "b"))
    try:
        yield Replicas(a, b, outbox, admin, url)
    finally:
        assert (a.stop(), b.stop()) == (0, 0)


def send(served: Served) -> str:
    """One message to be quarantined, through a replica's relay: the reply to DATA."""
    with smtplib.SMTP(*served.smtp, timeout=30) as client:
        client.ehlo("mta.test")
        client.mail("alice@corp.example")
        client.rcpt(RECIPIENT)
        code, text = client.data(message(RECIPIENT, QUARANTINED_BODY).as_bytes())
        return f"{code} {text.decode()}"


def held(served: Served, token: str) -> tuple[list[str], int]:
    """The newest held items' ids (one page) and how many are held in all."""
    answer = httpx.get(f"{served.http}/v1/quarantine", params={"status": "held"}, headers=_auth(token))
    assert answer.status_code == 200
    return [item["id"] for item in answer.json()["items"]], answer.json()["total"]


def test_quarantined_through_a_is_released_through_b_once(replicas: Replicas) -> None:
    before = set(held(replicas.b, replicas.admin)[0])
    assert send(replicas.a) == replies.QUARANTINED
    (item_id,) = set(held(replicas.b, replicas.admin)[0]) - before
    delivered = len(replicas.delivered())
    released = httpx.post(f"{replicas.b.http}/v1/quarantine/{item_id}/release", headers=_auth(replicas.admin))
    assert (released.status_code, released.json()["item"]["status"]) == (200, "released")
    again = httpx.post(f"{replicas.a.http}/v1/quarantine/{item_id}/release", headers=_auth(replicas.admin))
    assert again.status_code == 409
    arrived = replicas.delivered()
    assert len(arrived) == delivered + 1
    assert sum(QUARANTINED_BODY.encode() in m.replace(b"\r\n", b"\n") for m in arrived) == delivered + 1


def test_a_release_raced_from_both_replicas_delivers_once(replicas: Replicas) -> None:
    before = set(held(replicas.a, replicas.admin)[0])
    assert send(replicas.b) == replies.QUARANTINED
    (item_id,) = set(held(replicas.a, replicas.admin)[0]) - before
    delivered = len(replicas.delivered())
    barrier = threading.Barrier(2)

    def release(served: Served) -> int:
        barrier.wait()
        url = f"{served.http}/v1/quarantine/{item_id}/release"
        return httpx.post(url, headers=_auth(replicas.admin), timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(release, (replicas.a, replicas.b)))
    assert statuses == [200, 409]
    assert len(replicas.delivered()) == delivered + 1


def test_a_token_made_on_a_works_on_b_and_its_revocation_too(replicas: Replicas) -> None:
    made = httpx.post(
        f"{replicas.a.http}/v1/tokens",
        json={"role": "reviewer", "name": "carol"},
        headers=_auth(replicas.admin),
    )
    assert made.status_code == 201
    secret = made.json()["token"]
    for replica in (replicas.b, replicas.a):
        assert httpx.get(f"{replica.http}/v1/quarantine", headers=_auth(secret)).status_code == 200
    revoked = httpx.delete(f"{replicas.b.http}/v1/tokens/carol", headers=_auth(replicas.admin))
    assert (revoked.status_code, revoked.json()["revoked"]) == (200, True)
    assert httpx.get(f"{replicas.a.http}/v1/quarantine", headers=_auth(secret)).status_code == 401


def test_postgres_down_mid_traffic_gives_4xx_and_503_and_loses_nothing(
    replicas: Replicas, pg_cluster: Cluster
) -> None:
    before = held(replicas.a, replicas.admin)[1]
    total = 24
    replies_seen: list[str] = []
    accepted = threading.Event()

    def traffic() -> None:
        """An MTA: each message is retried after a 4xx until it is accepted."""
        for n in range(total):
            served = replicas.a if n % 2 else replicas.b
            while True:
                reply = send(served)
                replies_seen.append(reply)
                if reply == replies.QUARANTINED:
                    accepted.set()
                    break
                assert reply == replies.INTERNAL_ERROR
                time.sleep(0.1)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        assert accepted.wait(30)
        pg_cluster.stop()
        try:
            deadline = time.monotonic() + 20
            while replies.INTERNAL_ERROR not in replies_seen and time.monotonic() < deadline:
                time.sleep(0.05)
            listed = httpx.get(f"{replicas.b.http}/v1/quarantine", headers=_auth(replicas.admin))
            ready = httpx.get(f"{replicas.a.http}/readyz")
            metrics = httpx.get(f"{replicas.a.http}/metrics")
            assert (metrics.status_code, "dlp_store_up 0.0" in metrics.text) == (200, True)
            assert (listed.status_code, listed.json()["error"]) == (503, "store unavailable")
            assert (ready.status_code, ready.json()["checks"]["store"].startswith("not writable")) == (
                503,
                True,
            )
        finally:
            pg_cluster.start()
    finally:
        sender.join(60)
    assert replies_seen.count(replies.QUARANTINED) == total
    assert replies.INTERNAL_ERROR in replies_seen
    # A COMMIT whose acknowledgement the shutdown cut off is retried by the MTA: at
    # worst one duplicate, never a loss.
    assert before + total <= held(replicas.b, replicas.admin)[1] <= before + total + 1
    assert httpx.get(f"{replicas.b.http}/readyz").status_code == 200
