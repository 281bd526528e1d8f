"""The package's one exception tree; channels turn these into replies, never tracebacks.

DlpError
├── ConfigError          bad configuration file or environment override
├── DefinitionError      a detector definition failed to load (file, line, field)
├── PolicyError          a policy file failed to load (file, line, field)
├── ExtractionError      extraction could not start at all (parts carry flags otherwise)
├── ScanTimeout          a scan ran past its deadline
├── StoreError           the store could not read or write
│   └── NotFound         no such quarantine item, incident or token
└── DeliveryError        the next hop did not accept a message
    ├── TemporaryDeliveryError   4xx, timeout, connection refused: retry later
    └── PermanentDeliveryError   5xx from the next hop
        └── SmtpUtf8Unsupported  the message needs SMTPUTF8, the next hop lacks it
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DefinitionError",
    "DeliveryError",
    "DlpError",
    "ExtractionError",
    "LocatedError",
    "NotFound",
    "PermanentDeliveryError",
    "PolicyError",
    "ScanTimeout",
    "SmtpUtf8Unsupported",
    "StoreError",
    "TemporaryDeliveryError",
]


class DlpError(Exception):
    """Base of every error the package raises on purpose."""


class ConfigError(DlpError):
    """The configuration file or an environment override is invalid."""


class LocatedError(DlpError):
    """An error in a definition file, naming the file, line and field."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        where = file if line is None else f"{file}:{line}"
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")


class DefinitionError(LocatedError):
    """A detector definition is invalid."""


class PolicyError(LocatedError):
    """A policy file is invalid."""


class ExtractionError(DlpError):
    """Extraction could not start (hostile content is flagged, not raised)."""


class ScanTimeout(DlpError):
    """A scan did not finish within its deadline."""


class StoreError(DlpError):
    """The store could not complete an operation."""


class NotFound(StoreError):
    """The requested record does not exist."""


class DeliveryError(DlpError):
    """The next hop did not accept a message."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryDeliveryError(DeliveryError):
    """The next hop is down, slow or answered 4xx: the sender should retry."""


class PermanentDeliveryError(DeliveryError):
    """The next hop answered 5xx."""


class SmtpUtf8Unsupported(PermanentDeliveryError):
    """The message needs SMTPUTF8 and the next hop does not announce it: RFC 6531 forbids
    a silent downgrade, the answer is 5.6.7."""
