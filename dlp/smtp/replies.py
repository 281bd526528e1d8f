"""Every reply the relay gives at the end of DATA (and at connect), defined once.

Tests compare against these names, never against ad-hoc strings. 4xx means "the sending
MTA keeps the message and retries"; 5xx means "the sending MTA bounces it".
"""

from __future__ import annotations

__all__ = [
    "AUTH_UNSUPPORTED",
    "BAD_RECIPIENT",
    "BAD_SENDER",
    "BLOCKED",
    "CLIENT_REJECTED",
    "DELIVERED",
    "INTERNAL_ERROR",
    "NEXT_HOP_REJECTED",
    "NEXT_HOP_UNAVAILABLE",
    "OVERLOADED",
    "QUARANTINED",
    "SCAN_FAILED",
    "SHUTTING_DOWN",
    "SMTPUTF8_UNSUPPORTED",
    "TOO_BIG",
    "TOO_MANY_RECIPIENTS",
    "XFORWARD_OK",
    "XFORWARD_SYNTAX",
    "blocked",
    "reply_class",
]

DELIVERED = "250 2.0.0 Ok: delivered"
QUARANTINED = "250 2.0.0 Ok: held for review"
BLOCKED = "550 5.7.1 {message} (incident {incident})"
NEXT_HOP_UNAVAILABLE = "451 4.4.1 Next hop unavailable, try again later"
NEXT_HOP_REJECTED = "554 5.0.0 Next hop rejected the message"
SMTPUTF8_UNSUPPORTED = "554 5.6.7 SMTPUTF8 not supported by the next hop"
"""RFC 6531 3.7.5: mail that needs SMTPUTF8 is refused (at the end of DATA: 554 5.6.7),
never downgraded, when the next hop does not announce the extension."""
SCAN_FAILED = "451 4.3.0 Message could not be scanned, try again later"
INTERNAL_ERROR = "451 4.3.0 Internal error, try again later"
TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
"""RFC 5321 4.5.3.1.10: the client sends the message to the recipients accepted so far,
then the others in a later transaction (Postfix does, as for its own
`smtpd_recipient_limit`)."""
OVERLOADED = "421 4.3.2 Too many connections, try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
CLIENT_REJECTED = "554 5.7.1 Client host not permitted to use this relay"
BAD_SENDER = "501 5.1.7 Bad sender address syntax"
BAD_RECIPIENT = "501 5.1.3 Bad recipient address syntax"
AUTH_UNSUPPORTED = "502 5.5.1 AUTH not supported: clients are admitted by network"
XFORWARD_OK = "250 2.0.0 Ok"
XFORWARD_SYNTAX = "501 5.5.4 Bad XFORWARD attribute"

DEFAULT_BLOCK_MESSAGE = "Message blocked by data-loss-prevention policy"
_MAX_MESSAGE = 300


def blocked(message: str | None, incident: str) -> str:
    """The 550 reply with the policy's message (printable ASCII, one line, bounded)."""
    text = "".join(c if " " <= c <= "~" else " " for c in (message or DEFAULT_BLOCK_MESSAGE))
    text = " ".join(text.split())[:_MAX_MESSAGE] or DEFAULT_BLOCK_MESSAGE
    return BLOCKED.format(message=text, incident=incident)


def reply_class(reply: str) -> str:
    """`2xx`, `4xx` or `5xx`: the label of `dlp_smtp_replies_total`."""
    return f"{reply[:1]}xx"
