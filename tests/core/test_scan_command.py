"""`dlp scan` and `dlp policy test` as a user runs them: the exit status is the verdict,
and a path that is not one readable file is a one-line message on stderr with exit
status 66."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dlp.cli import main

CARDS = ["4291417776317063", "4690743915000808", "4636083778353375", "4406812415868348", "4497869073662587"]


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DLP_INTERNAL_DOMAINS", "corp.example")
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("text", "recipient", "status", "action"),
    [
        ("lunch at noon?", "bob@partner.test", 0, "allow"),
        ("card number 4929 1804 3277 1533", "carol@corp.example", 1, "alert"),
        ("card number 4929 1804 3277 1533", "bob@partner.test", 2, "quarantine"),
        ("card numbers " + " ".join(CARDS), "bob@partner.test", 3, "block"),
    ],
)
def test_exit_status_is_the_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, recipient: str, status: int, action: str
) -> None:
    sample = tmp_path / "mail.txt"
    sample.write_text(text, encoding="utf-8")
    assert main(["scan", str(sample), "--channel", "smtp", "--recipient", recipient]) == status
    captured = capsys.readouterr()
    assert json.loads(captured.out)["action"] == action
    assert captured.err == ""


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory (scan one file at a time)"),
        (lambda p: os.mkfifo(p), "not a regular file"),
    ],
    ids=["missing", "directory", "fifo"],
)
@pytest.mark.parametrize("command", [["scan"], ["policy", "test"]])
def test_a_path_that_is_not_one_file_is_a_one_line_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], object],
    message: str,
    command: list[str],
) -> None:
    target = tmp_path / "target"
    make(target)
    assert main([*command, str(target)]) == 66
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"dlp: {target}: {message}\n")
