"""`dlp serve` as a subprocess on OS-chosen loopback ports: SMTP and HTTP answer, metrics
after traffic, signed webhook and syslog alerts for a blocked mail, JSON logs without raw
values, and SIGTERM draining a message in flight."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import Receiver, webhook_receiver
from tests.smtp.sink import Sink, start_sink

CARDS = (
    "4929180432771533",
    "4539612864272012",
    "5527430198304653",
    "5184029377102849",
    "6011548392017366",
    "376284109384756",
)
WEBHOOK_SECRET = "ops-test-webhook-secret"
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


@dataclass
class Served:
    """A running `dlp serve` and where it listens."""

    process: subprocess.Popen[bytes]
    log: Path
    state_dir: Path
    smtp: tuple[str, int] = ("", 0)
    http: str = ""

    def lines(self) -> list[dict[str, Any]]:
        return log_lines(self.log)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def log_lines(log: Path) -> list[dict[str, Any]]:
    """Every JSON log line `dlp serve` wrote so far."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def start_serve(tmp: Path, **env: str) -> Served:
    """Start `dlp serve` with loopback port 0 listeners; wait for its `listening` line."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DLP_")}
    environ.update(
        {
            "DLP_SMTP__LISTEN": "127.0.0.1:0",
            "DLP_HTTP__LISTEN": "127.0.0.1:0",
            "DLP_STATE_DIR": str(tmp / "state"),
            "DLP_SMTP__NEXT_HOP": f"maildir:{tmp / 'out'}",
            "DLP_SMTP__HOSTNAME": "relay.test",
            "DLP_INTERNAL_DOMAINS": "corp.example",
            "DLP_WORKERS": "1",
            **env,
        }
    )
    log = tmp / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "dlp", "serve"], cwd=tmp, env=environ, stderr=stderr, stdout=stderr
        )
    served = Served(process, log, tmp / "state")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        listening = [line for line in served.lines() if line.get("event") == "listening"]
        if listening:
            host, _, port = listening[0]["smtp"].rpartition(":")
            served.smtp = (host, int(port))
            served.http = f"http://{listening[0]['http']}"
            return served
        if process.poll() is not None:
            raise AssertionError(f"dlp serve exited {process.returncode}: {log.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"dlp serve did not start: {log.read_text()}")


def message(recipient: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "alice@corp.example"
    msg["To"] = recipient
    msg["Subject"] = "quarterly numbers"
    msg.set_content(body)
    return msg


BLOCKED_BODY = "Customer cards on file:\n" + "\n".join(f"Visa card number: {c}" for c in CARDS) + "\n"


class SlowSink(Sink):
    """A next hop that can take its time over DATA and says when a message arrived."""

    entered: threading.Event

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.entered.set()
        return await super().handle_DATA(server, session, envelope)


@contextlib.contextmanager
def sink_in_thread() -> Iterator[SlowSink]:
    """The recording next hop of tests/smtp, on its own event loop in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sink = SlowSink()
    sink.entered = threading.Event()
    asyncio.run_coroutine_threadsafe(start_sink(sink), loop).result(10)
    try:
        yield sink
    finally:
        asyncio.run_coroutine_threadsafe(sink.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass
class Environment:
    served: Served
    receiver: Receiver
    syslog: socket.socket
    sink: SlowSink


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    """One `dlp serve` for the whole module (the drain test, last, stops it)."""
    tmp = tmp_path_factory.mktemp("serve")
    shutil.copytree(ROOT / "policies", tmp / "policies", ignore=shutil.ignore_patterns("*.md"))
    syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    syslog.bind(("127.0.0.1", 0))
    syslog.settimeout(10.0)
    with webhook_receiver() as receiver, sink_in_thread() as sink:
        served = start_serve(
            tmp,
            DLP_SMTP__NEXT_HOP=f"smtp://127.0.0.1:{sink.port}",
            DLP_SMTP__NEXT_HOP_TLS="none",
            DLP_SHUTDOWN_GRACE_SECONDS="10",
            DLP_ALERTS__WEBHOOK_URL=receiver.url,
            DLP_ALERTS__WEBHOOK_SECRET=WEBHOOK_SECRET,
            DLP_ALERTS__SYSLOG_ADDRESS=f"127.0.0.1:{syslog.getsockname()[1]}",
        )
        try:
            yield Environment(served, receiver, syslog, sink)
        finally:
            assert served.stop() == 0
            syslog.close()


def send(env: Environment, recipient: str, body: str) -> tuple[int, str]:
    with smtplib.SMTP(*env.served.smtp, timeout=30) as client:
        try:
            client.send_message(message(recipient, body))
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode()
        return 250, ""


def test_smtp_and_http_answer(env: Environment) -> None:
    client = smtplib.SMTP(timeout=10)
    code, greeting = client.connect(*env.served.smtp)
    client.quit()
    assert (code, greeting) == (220, b"relay.test ESMTP")
    assert httpx.get(f"{env.served.http}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{env.served.http}/readyz")
    assert (ready.status_code, ready.json()["ready"]) == (200, True)


def test_blocked_mail_is_alerted_signed_and_without_raw_values(env: Environment) -> None:
    code, reply = send(env, "bob@partner.test", BLOCKED_BODY)
    assert code == 550
    assert reply.startswith("5.7.1 ")
    deadline = time.monotonic() + 10
    blocked: list[tuple[dict[str, str], bytes]] = []
    while not blocked and time.monotonic() < deadline:
        blocked = [(h, b) for h, b in env.receiver.requests if json.loads(b)["incident"]["action"] == "block"]
        time.sleep(0.02)
    assert len(blocked) == 1
    headers, body = blocked[0]
    timestamp = headers["X-DLP-Timestamp"]
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-DLP-Signature"] == f"sha256={digest}"
    incident = json.loads(body)["incident"]
    assert incident["channel"] == "smtp"
    assert incident["rules"][0]["id"] == "pci-cards-bulk-outbound"
    while True:
        datagram = env.syslog.recv(65535)
        if b"act=block" in datagram:
            break
    assert datagram.startswith(b"<132>1 ")
    assert b"CEF:0|dlp|dlp|" in datagram
    assert f'incident="{incident["id"]}"'.encode() in datagram
    for card in CARDS:
        assert card.encode() not in body
        assert card.encode() not in datagram


def test_metrics_after_traffic(env: Environment) -> None:
    assert send(env, "carol@corp.example", "Lunch at noon?\n") == (250, "")
    assert send(env, "dave@partner.test", BLOCKED_BODY)[0] == 550
    token = (env.served.state_dir / "admin-token").read_text().strip()
    scanned = httpx.post(
        f"{env.served.http}/v1/scan/text",
        json={"text": "nothing to see"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (scanned.status_code, scanned.json()["action"]) == (200, "allow")
    text = httpx.get(f"{env.served.http}/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    expected_types = {
        "dlp_items_scanned": "counter",
        "dlp_findings": "counter",
        "dlp_scan_duration_seconds": "histogram",
        "dlp_scanned_bytes": "counter",
        "dlp_extraction_flags": "counter",
        "dlp_smtp_replies": "counter",
        "dlp_next_hop_failures": "counter",
        "dlp_quarantine_items": "gauge",
        "dlp_quarantine_bytes": "gauge",
        "dlp_incidents_open": "gauge",
        "dlp_policy_reloads": "counter",
        "dlp_auth_failures": "counter",
        "dlp_alerts_sent": "counter",
        "dlp_alert_failures": "counter",
        "dlp_alerts_dropped": "counter",
        "dlp_build_info": "gauge",
    }
    assert {name: families[name].type for name in expected_types} == expected_types
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples
    }
    assert values[("dlp_items_scanned_total", (("action", "allow"), ("channel", "smtp")))] >= 1
    assert values[("dlp_items_scanned_total", (("action", "block"), ("channel", "smtp")))] >= 1
    assert values[("dlp_items_scanned_total", (("action", "allow"), ("channel", "http")))] >= 1
    assert values[("dlp_findings_total", (("confidence", "high"), ("detector", "credit-card")))] >= 6
    assert values[("dlp_smtp_replies_total", (("class", "5xx"),))] >= 1
    assert values[("dlp_scan_duration_seconds_count", (("channel", "smtp"),))] >= 2
    assert values[("dlp_incidents_open", ())] >= 1
    checked = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
    assert (checked.returncode, checked.stderr) == (0, b"")
    assert [m.recipients for m in env.sink.received] == [("carol@corp.example",)]


def test_logs_are_json_lines_without_raw_values(env: Environment) -> None:
    lines = env.served.lines()
    assert all({"ts", "level", "logger", "event"} <= line.keys() for line in lines)
    assert [line["event"] for line in lines].count("listening") == 1
    assert any(str(env.served.state_dir / "admin-token") in line["event"] for line in lines)
    text = env.served.log.read_text()
    for card in CARDS:
        assert card not in text


def reloads(env: Environment, result: str) -> float:
    text = httpx.get(f"{env.served.http}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dlp_policy_reloads_total" and sample.labels == {"result": result}:
                return sample.value
    raise AssertionError("no dlp_policy_reloads_total sample")


def wait_for_reloads(env: Environment, result: str, expected: float) -> None:
    deadline = time.monotonic() + 15
    while reloads(env, result) != expected:
        assert time.monotonic() < deadline, f"{result} reloads stayed below {expected}"
        time.sleep(0.1)


def test_policy_reload_on_sighup_and_broken_file_refused(env: Environment) -> None:
    succeeded, failed = reloads(env, "success"), reloads(env, "failure")
    env.served.process.send_signal(signal.SIGHUP)
    wait_for_reloads(env, "success", succeeded + 1)
    broken = env.served.state_dir.parent / "policies" / "zz-broken.yaml"
    broken.write_text("name: broken\nrules:\n  - id: x\n    action: explode\n")
    try:
        wait_for_reloads(env, "failure", failed + 1)
    finally:
        broken.unlink()
    assert send(env, "dave@partner.test", BLOCKED_BODY)[0] == 550
    events = [line for line in env.served.lines() if line["event"].startswith("policy reload failed")]
    assert "zz-broken.yaml" in events[-1]["event"]
    token = (env.served.state_dir / "admin-token").read_text().strip()
    audit = httpx.get(f"{env.served.http}/v1/audit", headers={"Authorization": f"Bearer {token}"}).json()
    reloads_audited = [entry for entry in audit["items"] if entry["action"] == "policy.reload"]
    assert len(reloads_audited) == 1 and reloads_audited[0]["actor"] == "system"


def test_sigterm_drains_in_flight_mail(env: Environment) -> None:
    served, sink = env.served, env.sink
    delivered_before = len(sink.received)
    idle = socket.create_connection(served.smtp, timeout=20)
    idle_reader = idle.makefile("rb")
    assert idle_reader.readline().startswith(b"220 ")
    idle.sendall(b"EHLO idle.test\r\n")
    while not idle_reader.readline().startswith(b"250 "):
        pass
    sink.data_delay = 2.0
    sink.entered.clear()

    def deliver() -> dict[str, tuple[int, bytes]]:
        client = smtplib.SMTP(*served.smtp, timeout=30)
        try:
            return client.send_message(message("erin@corp.example", "In flight during shutdown.\n"))
        finally:
            # The message has its answer; a relay that is stopping may answer QUIT with 421
            # (RFC 5321), which smtplib's context manager would raise.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()

    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        in_flight = executor.submit(deliver)
        assert sink.entered.wait(20)
        served.process.send_signal(signal.SIGTERM)
        assert in_flight.result(30) == {}
    assert idle_reader.readline() == b"421 4.3.2 Service shutting down, try again later\r\n"
    assert idle_reader.read() == b""
    idle_reader.close()
    idle.close()
    assert served.process.wait(20) == 0
    with pytest.raises(OSError):
        socket.create_connection(served.smtp, timeout=2).close()
    assert [m.recipients for m in sink.received[delivered_before:]] == [("erin@corp.example",)]
    assert [line["event"] for line in served.lines()][-1] == "stopped"


def test_port_in_use_exits_65_with_the_reason(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AssertionError, match="dlp serve exited 65"):
            start_serve(tmp_path, DLP_HTTP__LISTEN=f"127.0.0.1:{port}")
    lines = log_lines(tmp_path / "serve.log")
    failures = [line for line in lines if line["event"] == "cannot start"]
    assert len(failures) == 1, lines
    assert failures[0]["error"] == "OSError: [Errno 98] Address already in use", lines
