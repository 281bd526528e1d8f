"""Structured logs: one JSON object per line on stderr, and a filter that keeps raw values out.

Each line: `{"ts": ..., "level": ..., "logger": ..., "event": <message>, <extra fields>}`.
Code logs an event name plus ids, counts and masked data as `extra` fields
(`log.info("mail blocked", extra={"incident_id": ..., "findings": 3})`), never content.

`RedactFilter` is the safety net for everything else (our own mistakes and third-party
libraries): it scrubs the message, its arguments, every extra string and exception text
of anything shaped like a card or account number, a national id, a long secret or an
e-mail address. Any run of nine or more digits is masked, even inside a word: a hex
digest in a log line may lose a few characters, a card number glued to a label does not
get through. It is attached to the handler, so no record reaches the output without
passing it. Libraries known to log message content (aiosmtpd at DEBUG) are held at WARNING.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import traceback
from typing import IO, Any

__all__ = ["JsonFormatter", "RedactFilter", "configure_logging", "scrub"]

MASK = "[masked]"

_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"\b(?:gh[pousr]_|glpat-|xox[abprs]-|sk_live_|rk_live_|sk-)[A-Za-z0-9_-]{10,}"),
    re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
    re.compile(r"(?<!\d)\d(?:[ -]?\d){8,}(?!\d)"),
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    # starts only where a run starts: a run that is no secret is rejected once, not
    # retried at each of its characters (quadratic: a 100,000-character path in an
    # access log line held the event loop for two minutes)
    re.compile(
        r"(?<![A-Za-z0-9+/_=-])"
        r"(?=[A-Za-z0-9+/_=-]*[a-z])(?=[A-Za-z0-9+/_=-]*[A-Z])(?=[A-Za-z0-9+/_=-]*\d)[A-Za-z0-9+/_=-]{24,}"
    ),
)
# a local part of at most 64 characters (RFC 5321), so a long run without an address
# is not rescanned from each of its word boundaries
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{0,63}@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")

_QUIET_LOGGERS = {"mail.log": logging.WARNING, "httpx": logging.WARNING, "httpcore": logging.WARNING}
"""Libraries that log protocol data (aiosmtpd logs received lines at DEBUG) stay at WARNING."""

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
"""Record attributes that are not event fields (`color_message` is uvicorn's terminal copy)."""


def scrub(text: str) -> str:
    """`text` with anything that looks like a sensitive value replaced by `[masked]`."""
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return _EMAIL.sub(r"\1***@\2", text)


def _clean(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub(value)
    if depth < 3 and isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, depth + 1) for v in value]
    if depth < 3 and isinstance(value, dict):
        return {str(k): _clean(v, depth + 1) for k, v in value.items()}
    return scrub(str(value))


class RedactFilter(logging.Filter):
    """Scrub every record in place (message, arguments, extras, exception); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's text with its scrubbed form; always keep the record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED:
                record.__dict__[key] = _clean(value)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.exc_text = scrub("".join(traceback.format_exception(exc)).rstrip())
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out:
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["error"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record (ours and the libraries') through the filter as JSON lines.

    Replaces the root logger's handlers; returns the handler (tests attach streams).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, quiet in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler
