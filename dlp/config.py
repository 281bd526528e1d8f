"""Settings, read once at start from one YAML file plus `DLP_*` environment overrides.

Every key can be overridden by an environment variable named after its path: `DLP_` +
sections joined by `__`, upper case (`DLP_SMTP__LISTEN=127.0.0.1:2525`). Lists take
comma-separated values. Defaults run with no file at all. No other module reads
`os.environ`: they receive a `Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dlp.errors import ConfigError
from dlp.model import Limits

__all__ = [
    "AlertSettings",
    "HttpSettings",
    "LimitSettings",
    "RetentionSettings",
    "Settings",
    "SmtpSettings",
    "load_settings",
    "masked_settings",
    "parse_listen",
]

ENV_PREFIX = "DLP_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSettings(_Section):
    """The relay: where it listens, where mail goes next, who may relay."""

    enabled: bool = True
    listen: str = "127.0.0.1:10025"
    next_hop: str = "maildir:./var/outbox"
    client_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_message_bytes: int = 26_214_400
    max_recipients: int = Field(default=1000, ge=1)
    message_timeout_seconds: float = 60.0
    next_hop_timeout_seconds: float = 30.0
    max_connections: int = 200
    hostname: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    next_hop_tls: Literal["none", "opportunistic", "required"] = "opportunistic"
    add_headers: bool = True
    scan: bool = True


class HttpSettings(_Section):
    """The HTTP API and `/metrics`."""

    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    max_upload_bytes: int = 104_857_600
    metrics_public: bool = True
    auth_failures_per_minute: int = 20
    body_timeout_seconds: float = Field(default=30.0, gt=0)


class LimitSettings(_Section):
    """Extraction limits (see `dlp.model.Limits`)."""

    max_depth: int = 16
    max_files: int = 10_000
    max_total_bytes: int = 500 * 1024 * 1024
    max_member_bytes: int = 100 * 1024 * 1024
    max_ratio: int = 1000
    max_seconds: float = 60.0

    def to_limits(self) -> Limits:
        """The frozen limits the extractor takes."""
        return Limits(**self.model_dump())


class RetentionSettings(_Section):
    """How long quarantined items and incidents are kept."""

    quarantine_days: float = 30.0
    incidents_days: float = 365.0
    purge_interval_seconds: float = 3600.0
    release_lease_seconds: float = Field(default=600.0, gt=0)


class AlertSettings(_Section):
    """Where incident alerts go besides the store."""

    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_queue_size: int = 1000
    webhook_timeout_seconds: float = 10.0
    webhook_retries: int = Field(default=5, ge=0)
    webhook_backoff_seconds: float = 1.0
    syslog_address: str | None = None
    syslog_protocol: Literal["udp", "tcp"] = "udp"
    syslog_facility: int = Field(default=16, ge=0, le=23)


class Settings(_Section):
    """The whole configuration of one `dlp` installation."""

    state_dir: Path = Path("./var")
    policies: tuple[Path, ...] = (Path("./policies"),)
    detectors: tuple[Path, ...] = (Path("./detectors"),)
    internal_domains: tuple[str, ...] = ()
    store: str = "sqlite"
    workers: int = Field(default=0, ge=0)
    log_level: str = "INFO"
    shutdown_grace_seconds: float = 30.0
    smtp: SmtpSettings = SmtpSettings()
    http: HttpSettings = HttpSettings()
    limits: LimitSettings = LimitSettings()
    retention: RetentionSettings = RetentionSettings()
    alerts: AlertSettings = AlertSettings()

    @field_validator("internal_domains")
    @classmethod
    def _lower_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in value if d.strip())

    @property
    def worker_count(self) -> int:
        """Scan worker processes: the configured number, or one per core."""
        return self.workers or max(1, os.cpu_count() or 1)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (if any), apply `DLP_*` overrides, validate the whole.

    Raises `ConfigError` naming the offending key.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        raw = loaded or {}
    env = os.environ if environ is None else environ
    for name, value in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            _apply_override(raw, name[len(ENV_PREFIX) :].lower().split("__"), value, name)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc


def _apply_override(raw: dict[str, Any], keys: list[str], value: str, env_name: str) -> None:
    target = raw
    for key in keys[:-1]:
        nested = target.setdefault(key, {})
        if not isinstance(nested, dict):
            raise ConfigError(f"{env_name}: '{key}' is not a section")
        target = nested
    target[keys[-1]] = _coerce(keys, value)


def _coerce(keys: list[str], value: str) -> Any:
    field: Any = Settings.model_fields.get(keys[0])
    if len(keys) == 2 and field is not None:
        section = field.annotation
        field = getattr(section, "model_fields", {}).get(keys[1])
    if field is not None and "tuple" in str(field.annotation):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def parse_listen(listen: str) -> tuple[str, int]:
    """Split `HOST:PORT` (or `[v6]:PORT`) into host and port."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"listen address '{listen}' is not HOST:PORT")
    if int(port) > 65535:
        raise ConfigError(f"listen address '{listen}': port {int(port)} is above 65535")
    return host.strip("[]") or "127.0.0.1", int(port)


_SECRET_WORDS = ("secret", "password", "key", "token")


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, with secret values masked."""

    def mask(data: Any, name: str = "") -> Any:
        if isinstance(data, dict):
            return {k: mask(v, k) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [mask(v, name) for v in data]
        if isinstance(data, Path):
            return str(data)
        if data and any(word in name for word in _SECRET_WORDS) and name != "tls_key":
            return "********"
        if isinstance(data, str) and "://" in data and "@" in data:
            scheme, _, rest = data.partition("://")
            return f"{scheme}://********@{rest.rpartition('@')[2]}"
        return data

    result: dict[str, Any] = mask(settings.model_dump())
    return result
