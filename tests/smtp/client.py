"""The test client (smtplib, as an MTA would talk) and the ledger that checks no message
was lost or duplicated: every message the client saw accepted is delivered or
quarantined exactly once; every other one got a 4xx or 5xx and is nowhere."""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from typing import Protocol

__all__ = ["Ledger", "Outcome", "exchange", "make_message", "send"]


@dataclass(frozen=True)
class Outcome:
    """The reply the client got to the end of DATA (code 0: the connection dropped)."""

    code: int
    text: str

    @property
    def accepted(self) -> bool:
        """Whether the client may forget the message."""
        return 200 <= self.code < 300


def send(
    port: int,
    data: bytes,
    *,
    sender: str = "alice@corp.example",
    recipients: Sequence[str] = ("bob@partner.example",),
    mail_options: Sequence[str] = (),
    rcpt_options: Sequence[str] = (),
    xforward: str | None = None,
    timeout: float = 30,
) -> Outcome:
    """One SMTP transaction with smtplib; the outcome of the final reply. The reply to QUIT
    does not change it: a relay that is stopping answers the next command with 421, as RFC
    5321 allows, once the message in flight has its answer."""
    try:
        client = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=timeout)
    except smtplib.SMTPConnectError as exc:
        return Outcome(exc.smtp_code, exc.smtp_error.decode())
    except (smtplib.SMTPServerDisconnected, ConnectionError):
        return Outcome(0, "disconnected")
    try:
        return _transaction(client, data, sender, recipients, mail_options, rcpt_options, xforward)
    except (smtplib.SMTPServerDisconnected, ConnectionError):
        return Outcome(0, "disconnected")
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()


def _transaction(
    client: smtplib.SMTP,
    data: bytes,
    sender: str,
    recipients: Sequence[str],
    mail_options: Sequence[str],
    rcpt_options: Sequence[str],
    xforward: str | None,
) -> Outcome:
    client.ehlo("client.test")
    if xforward is not None:
        code, text = client.docmd("XFORWARD", xforward)
        if code != 250:
            return Outcome(code, text.decode())
    code, text = client.mail(sender, list(mail_options))
    if code != 250:
        return Outcome(code, text.decode())
    for recipient in recipients:
        code, text = client.rcpt(recipient, list(rcpt_options))
        if code not in (250, 251):
            return Outcome(code, text.decode())
    code, text = client.data(data)
    return Outcome(code, text.decode())


def make_message(marker: str, body: str = "Hello.\n", attachment: bytes | None = None) -> bytes:
    """A real message built with the email package (CRLF line ends, as on the wire)."""
    msg = EmailMessage()
    msg["From"] = "Alice <alice@corp.example>"
    msg["To"] = "bob@partner.example"
    msg["Subject"] = f"test {marker}"
    msg["Message-ID"] = f"<{marker}@corp.example>"
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="data.bin")
    return msg.as_bytes(policy=SMTP)


@dataclass
class Ledger:
    """What was sent and how the relay answered, per marker."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def record(self, marker: str, outcome: Outcome) -> None:
        """Remember the reply for one message."""
        self.outcomes[marker] = outcome

    def check(self, delivered: Sequence[bytes], quarantined: Sequence[bytes] = ()) -> dict[str, int]:
        """Assert the promise; return counts (accepted, delivered, quarantined, 4xx, 5xx, dropped)."""
        counts = {"accepted": 0, "delivered": 0, "quarantined": 0, "4xx": 0, "5xx": 0, "dropped": 0}
        for marker, outcome in self.outcomes.items():
            tag = f"<{marker}@corp.example>".encode()
            seen = sum(tag in d for d in delivered)
            held = sum(tag in q for q in quarantined)
            if outcome.accepted:
                assert seen + held == 1, f"{marker}: accepted, delivered {seen}, quarantined {held}"
                counts["accepted"] += 1
                counts["delivered"] += seen
                counts["quarantined"] += held
            else:
                assert seen + held == 0, f"{marker}: answered {outcome}, yet delivered {seen} held {held}"
                assert 400 <= outcome.code < 600, f"{marker}: no 4xx/5xx reply: {outcome}"
                counts[f"{outcome.code // 100}xx"] += 1
        return counts


class LineStream(Protocol):
    """A buffered binary stream over a socket (`socket.makefile("rwb")`)."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...

    def readline(self, size: int = -1, /) -> bytes: ...


def exchange(stream: LineStream, commands: Iterable[bytes]) -> list[bytes]:
    """Send each command on a raw SMTP stream and collect its reply (the last line of a
    multi-line one), for tests that need exact command-by-command control."""
    seen = []
    for command in commands:
        stream.write(command + b"\r\n")
        stream.flush()
        while (line := stream.readline())[3:4] == b"-":
            continue
        seen.append(line.rstrip())
    return seen
