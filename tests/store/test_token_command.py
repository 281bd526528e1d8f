"""`dlp token create`: prints the token once (last line), stores only its hash,
honours `--config` and `DLP_STATE_DIR`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.cli import main
from dlp.store import Role, open_store
from tests.store.factories import settings_for


def _run(argv: list[str]) -> int:
    return main(argv)


def test_unknown_role_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["token", "create", "--role", "root"])
    assert exit_info.value.code == 64
    assert "invalid choice: 'root'" in capsys.readouterr().err


@pytest.mark.parametrize("role", ["scanner", "reviewer", "admin"])
def test_create_with_state_dir_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], role: str
) -> None:
    monkeypatch.setenv("DLP_STATE_DIR", str(tmp_path / "env-var"))
    assert _run(["token", "create", "--role", role, "--name", "ci"]) == 0
    secret = capsys.readouterr().out.splitlines()[-1]
    store = open_store(settings_for(tmp_path / "env-var"))
    try:
        info = store.verify_token(secret)
        assert info is not None
        assert (info.name, info.role) == ("ci", Role.parse(role))
        assert [e["action"] for e in store.list_audit().items] == ["token.create"]
    finally:
        store.close()
    stored = [p.read_bytes() for p in (tmp_path / "env-var").rglob("*") if p.is_file()]
    assert len(stored) == 2
    assert not any(secret.encode() in raw for raw in stored)


def test_create_with_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DLP_STATE_DIR", raising=False)
    config = tmp_path / "dlp.yaml"
    config.write_text(f"state_dir: {tmp_path / 'cfg-var'}\n")
    assert _run(["--config", str(config), "token", "create", "--role", "scanner"]) == 0
    secret = capsys.readouterr().out.splitlines()[-1]
    assert _run(["token", "create", "--config", str(config), "--role", "reviewer"]) == 0
    after_command = capsys.readouterr().out.splitlines()[-1]
    store = open_store(settings_for(tmp_path / "cfg-var"))
    try:
        info = store.verify_token(secret)
        assert info is not None and info.role is Role.SCANNER
        info = store.verify_token(after_command)
        assert info is not None and info.role is Role.REVIEWER
    finally:
        store.close()
