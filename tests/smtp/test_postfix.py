"""A real Postfix in front of the relay, with the after-queue snippets of deploy/postfix/.

A private Postfix instance (own config and queue folders in a temporary directory, its
services on loopback ports) queues the mail, hands it to the relay through the `dlp`
transport, takes it back on the re-injection port and delivers it to `smtp-sink`.
Checked end to end: delivery, rejection (Postfix bounces what the relay blocks) and
deferral (Postfix keeps what the relay answers 4xx and delivers it once flushed).
Needs root (Postfix's master runs as root) and Debian's postfix (scripts/test-deps).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dlp.smtp import replies
from dlp.smtp.relay import Relay
from tests.smtp.client import make_message, send
from tests.smtp.conftest import RelayFactory

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "postfix"

pytestmark = [
    pytest.mark.skipif(shutil.which("postfix") is None, reason="postfix not installed (scripts/test-deps)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix instance needs root"),
]

# The stock services, without chroot (the queue lives in a temporary folder).
MASTER_CF = """\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
maillog_file_prefixes = {base}
maillog_file = {base}/maillog
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.test
mydomain = test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink_port}
smtpd_peername_lookup = no
smtputf8_enable = yes
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
local_recipient_maps =
queue_run_delay = 1h
bounce_notice_recipient = postmaster@mta.test
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _snippet(name: str, relay_port: int, reinject_port: int, smtpd_port: int) -> str:
    """A shipped snippet with the test's ports in place of 10025, 10026 and port 25."""
    text = (DEPLOY / name).read_text()
    text = text.replace("127.0.0.1]:10025", f"127.0.0.1]:{relay_port}")
    text = text.replace("127.0.0.1:10025", f"127.0.0.1:{relay_port}")
    text = text.replace("127.0.0.1:10026", f"127.0.0.1:{reinject_port}")
    return re.sub(r"(?m)^smtp(\s+)inet", f"127.0.0.1:{smtpd_port}\\1inet", text)


@dataclass
class Postfix:
    """A running private Postfix and its smtp-sink next hop."""

    base: Path
    smtpd_port: int
    sink_dir: Path

    def run(self, *args: str) -> str:
        """Run a Postfix command against this instance's configuration."""
        command = [args[0], "-c", str(self.base / "etc"), *args[1:]]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def log(self) -> str:
        """The instance's mail log."""
        path = self.base / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def delivered(self) -> list[bytes]:
        """Every message smtp-sink accepted."""
        return [p.read_bytes() for p in sorted(self.sink_dir.iterdir())]

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 15) -> Any:
        """Poll `check` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.log()[-3000:]}")


@pytest.fixture
def postfix_ports() -> tuple[int, int]:
    """Ports chosen now for the relay and Postfix's re-injection service."""
    return _free_port(), _free_port()


@contextlib.contextmanager
def _postfix(mode: str, relay_port: int, reinject_port: int) -> Iterator[Postfix]:
    """A private Postfix with the `mode` ("after-queue" or "before-queue") snippets."""
    base = Path(tempfile.mkdtemp(prefix="dlp-postfix-"))
    base.chmod(0o755)
    for sub in ("etc", "queue", "data", "sink"):
        (base / sub).mkdir()
    shutil.chown(base / "data", "postfix")
    shutil.chown(base / "sink", "postfix")
    smtpd_port, sink_port = _free_port(), _free_port()
    ports = (relay_port, reinject_port, smtpd_port)
    (base / "etc" / "main.cf").write_text(
        MAIN_CF.format(base=base, sink_port=sink_port) + _snippet(f"main.cf.{mode}", *ports)
    )
    front = "" if mode == "before-queue" else f"127.0.0.1:{smtpd_port} inet n - n - - smtpd\n"
    (base / "etc" / "master.cf").write_text(front + MASTER_CF + _snippet(f"master.cf.{mode}", *ports))
    sink = subprocess.Popen(
        ["smtp-sink", "-u", "postfix", "-d", f"{base}/sink/msg.", f"127.0.0.1:{sink_port}", "50"]
    )
    instance = Postfix(base, smtpd_port, base / "sink")
    try:
        instance.run("postfix", "check")
        instance.run("postfix", "start")
        yield instance
    finally:
        subprocess.run(["postfix", "-c", str(base / "etc"), "stop"], capture_output=True)
        sink.kill()
        sink.wait()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postfix(postfix_ports: tuple[int, int]) -> Iterator[Postfix]:
    """A private Postfix whose after-queue content filter is the relay on the first port."""
    with _postfix("after-queue", *postfix_ports) as instance:
        yield instance


@pytest.fixture
def postfix_before_queue(postfix_ports: tuple[int, int]) -> Iterator[Postfix]:
    """A private Postfix whose smtpd proxies every message to the relay on the first port."""
    with _postfix("before-queue", *postfix_ports) as instance:
        yield instance


CARDS = ["4539148803436467", "5425233430109903", "4916338506082832", "4024007198964305", "5191914942157165"]


def _queue_ids(log: str, marker: str) -> list[str]:
    return re.findall(rf"postfix/cleanup\[\d+\]: ([0-9A-F]+): message-id=<{marker}@corp.example>", log)


def _status(postfix: Postfix, marker: str, status: str) -> Callable[[], str | None]:
    """A check for the log line with `status=...` for the message's first queue id."""

    def check() -> str | None:
        log = postfix.log()
        for queue_id in _queue_ids(log, marker)[:1]:
            for line in log.splitlines():
                if f" {queue_id}: " in line and f"status={status}" in line:
                    return line
        return None

    return check


async def test_postfix_after_queue(
    postfix: Postfix, postfix_ports: tuple[int, int], make_relay: RelayFactory, scan_pool: Any
) -> None:
    relay_port, reinject_port = postfix_ports
    # The relay's own next hop is down at first: Postfix must keep the message.
    listen = f"127.0.0.1:{relay_port}"
    down = await make_relay(f"smtp://127.0.0.1:{_free_port()}", scan_pool, listen=listen, scan=True)
    deferred = make_message("pf-deferred")
    outcome = await asyncio.to_thread(send, postfix.smtpd_port, deferred)
    assert outcome.code == 250  # queued by Postfix
    line = await asyncio.to_thread(postfix.wait, "deferral", _status(postfix, "pf-deferred", "deferred"))
    assert replies.NEXT_HOP_UNAVAILABLE in line
    assert postfix.delivered() == []

    await down.stop(0)
    relay: Relay = await make_relay(f"smtp://127.0.0.1:{reinject_port}", scan_pool, listen=listen, scan=True)
    assert relay.port == relay_port
    await asyncio.to_thread(postfix.run, "postqueue", "-f")
    clean = make_message("pf-clean", body="Lunch on Friday?\n")
    blocked = make_message("pf-blocked", body="Cards: " + ", ".join(CARDS) + "\n")
    for data in (clean, blocked):
        assert (await asyncio.to_thread(send, postfix.smtpd_port, data)).code == 250

    bounced = await asyncio.to_thread(postfix.wait, "bounce", _status(postfix, "pf-blocked", "bounced"))
    assert "550 5.7.1" in bounced and "(incident " in bounced

    def to(recipient: bytes, marker: bytes) -> list[bytes]:
        rcpt = b"\nX-Rcpt-Args: <" + recipient + b">"
        return [m for m in postfix.delivered() if rcpt in m and b"<" + marker + b"@corp.example>" in m]

    def arrived() -> bool:
        wanted = [to(b"bob@partner.example", b"pf-clean"), to(b"bob@partner.example", b"pf-deferred")]
        return all(len(found) == 1 for found in wanted) and bool(to(b"alice@corp.example", b"pf-blocked"))

    await asyncio.to_thread(postfix.wait, "delivery and the bounce", arrived)
    for marker in (b"pf-clean", b"pf-deferred"):
        [message] = to(b"bob@partner.example", marker)
        assert b"\nX-DLP-Verdict: allow\n" in message  # smtp-sink writes LF line ends
    assert to(b"bob@partner.example", b"pf-blocked") == []
    [bounce] = to(b"alice@corp.example", b"pf-blocked")
    assert b"\nX-Mail-Args: <> " in bounce and b"550 5.7.1 " in bounce
    queue = await asyncio.to_thread(postfix.run, "postqueue", "-p")
    assert "Mail queue is empty" in queue


async def test_postfix_before_queue(
    postfix_before_queue: Postfix, postfix_ports: tuple[int, int], make_relay: RelayFactory, scan_pool: Any
) -> None:
    postfix = postfix_before_queue
    relay_port, reinject_port = postfix_ports
    down = await asyncio.to_thread(send, postfix.smtpd_port, make_message("bq-down"))
    print(f"before-queue, relay down: {down}")
    assert 400 <= down.code < 500, down  # the relay is not there: the sender keeps the message
    await make_relay(
        f"smtp://127.0.0.1:{reinject_port}", scan_pool, listen=f"127.0.0.1:{relay_port}", scan=True
    )
    clean = await asyncio.to_thread(send, postfix.smtpd_port, make_message("bq-clean"))
    assert clean.code == 250, clean
    blocked = await asyncio.to_thread(
        send, postfix.smtpd_port, make_message("bq-blocked", body="Cards: " + ", ".join(CARDS) + "\n")
    )
    assert blocked.code == 550 and blocked.text.startswith("5.7.1 Message blocked: "), blocked

    def arrived() -> list[bytes]:
        return [m for m in postfix.delivered() if b"<bq-clean@corp.example>" in m]

    [message] = await asyncio.to_thread(postfix.wait, "delivery", arrived)
    assert b"\nX-DLP-Verdict: allow\n" in message
    await asyncio.sleep(0.5)
    assert not any(b"bq-blocked" in m or b"bq-down" in m for m in postfix.delivered())
