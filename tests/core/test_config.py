"""Settings: defaults with no file, YAML file, DLP_* overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.config import load_settings, masked_settings, parse_listen
from dlp.errors import ConfigError


def test_defaults_need_no_file() -> None:
    settings = load_settings(None, environ={})
    assert settings.smtp.listen == "127.0.0.1:10025"
    assert settings.smtp.next_hop == "maildir:./var/outbox"
    assert settings.http.listen == "127.0.0.1:8080"
    assert settings.http.max_upload_bytes == 104_857_600
    assert settings.smtp.max_message_bytes == 26_214_400
    assert settings.state_dir == Path("./var")
    assert settings.limits.to_limits().max_depth == 16


def test_file_then_environment_override(tmp_path: Path) -> None:
    config = tmp_path / "dlp.yaml"
    config.write_text("smtp:\n  listen: 127.0.0.1:2526\ninternal_domains: [Example.COM]\n")
    env = {
        "DLP_SMTP__LISTEN": "127.0.0.1:2525",
        "DLP_POLICIES": "/a,/b",
        "DLP_LIMITS__MAX_DEPTH": "4",
        "OTHER": "x",
    }
    settings = load_settings(config, environ=env)
    assert settings.smtp.listen == "127.0.0.1:2525"
    assert settings.policies == (Path("/a"), Path("/b"))
    assert settings.limits.max_depth == 4
    assert settings.internal_domains == ("example.com",)


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("smtp:\n  lisen: x\n", {}, "smtp.lisen"),
        ("", {"DLP_HTTP__MAX_UPLOAD_BYTES": "lots"}, "http.max_upload_bytes"),
        ("- a\n- b\n", {}, "top level must be a mapping"),
        ("smtp: [\n", {}, "dlp.yaml"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], needle: str) -> None:
    config = tmp_path / "dlp.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_settings(config, environ=env)


def test_masked_settings_hide_secrets() -> None:
    settings = load_settings(
        None,
        environ={"DLP_ALERTS__WEBHOOK_SECRET": "s3cr3t", "DLP_STORE": "postgresql://u:pw@db:5432/dlp"},
    )
    shown = masked_settings(settings)
    assert shown["alerts"]["webhook_secret"] == "********"
    assert shown["store"] == "postgresql://********@db:5432/dlp"
    assert "s3cr3t" not in repr(shown) and "pw@" not in repr(shown)


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:10025", ("127.0.0.1", 10025)), ("[::1]:25", ("::1", 25)), (":8080", ("127.0.0.1", 8080))],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("localhost", "listen address 'localhost' is not HOST:PORT"),
        ("127.0.0.1:http", "listen address '127.0.0.1:http' is not HOST:PORT"),
        ("127.0.0.1:99999", "listen address '127.0.0.1:99999': port 99999 is above 65535"),
    ],
)
def test_parse_listen_rejects_garbage(listen: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_listen(listen)
    assert str(raised.value) == message
