"""`dlp config check`: validates, prints the effective configuration with secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dlp.cli import main

SECRET = "hunter2-webhook-secret"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dlp.yaml"
    path.write_text(text)
    return path


def test_valid_file_printed_with_secrets_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLP_ALERTS__WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("DLP_SMTP__LISTEN", "127.0.0.1:2525")
    config = write(
        tmp_path,
        "alerts:\n  webhook_url: https://user:pass@siem.example/hook\n"
        f"state_dir: {tmp_path / 'var'}\ninternal_domains: [example.com]\n",
    )
    assert main(["config", "check", str(config)]) == 0
    out, err = capsys.readouterr()
    printed = yaml.safe_load(out)
    assert printed["alerts"]["webhook_secret"] == "********"
    assert printed["alerts"]["webhook_url"] == "https://********@siem.example/hook"
    assert printed["smtp"]["listen"] == "127.0.0.1:2525"
    assert printed["internal_domains"] == ["example.com"]
    assert SECRET not in out + err
    assert "pass@" not in out + err
    assert err == "dlp: configuration OK\n"


def test_global_config_option_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "http:\n  listen: 127.0.0.1:9999\n")
    assert main(["--config", str(config), "config", "check"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["http"]["listen"] == "127.0.0.1:9999"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("smtp:\n  listne: 127.0.0.1:25\n", "smtp.listne: Extra inputs are not permitted"),
        ("smtp:\n  listen: localhost\n", "dlp: smtp.listen: listen address 'localhost' is not HOST:PORT"),
        ("smtp:\n  next_hop: lmtp://x\n", "dlp: smtp.next_hop: "),
        ("alerts:\n  webhook_url: https://siem.example/\n", "dlp: alerts: alerts.webhook_secret: required"),
        ("policies: [/nonexistent/policies]\n", "dlp: policies: policy folder /nonexistent/policies"),
        ("- a list\n", "the top level must be a mapping"),
        (
            "smtp:\n  client_networks: [10.0.0.0/33]\n",
            "dlp: smtp.client_networks: '10.0.0.0/33' does not appear to be an IPv4 or IPv6 network",
        ),
    ],
)
def test_problems_exit_65_and_name_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    assert main(["config", "check", str(write(tmp_path, text))]) == 65
    assert problem in capsys.readouterr().err


@pytest.mark.parametrize(
    ("networks", "warnings"),
    [
        ("[127.0.0.0/8, '::1/128']", []),
        ("[172.16.0.0/12]", []),
        ("[0.0.0.0/0, '::/0']", ["0.0.0.0/0", "::/0"]),
    ],
)
def test_a_whole_address_space_client_network_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], networks: str, warnings: list[str]
) -> None:
    config = write(tmp_path, f"state_dir: {tmp_path / 'var'}\nsmtp:\n  client_networks: {networks}\n")
    assert main(["config", "check", str(config)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        *(
            f"warning: smtp.client_networks: {network} lets any host send mail through the relay "
            "(an open relay unless a firewall or network policy lets only your MTAs reach it)"
            for network in warnings
        ),
        "dlp: configuration OK",
    ]


@pytest.mark.parametrize(
    ("settings", "warning"),
    [
        ("", None),
        ("retention:\n  release_lease_seconds: 31\n", None),
        (
            "retention:\n  release_lease_seconds: 30\n",
            "30 s is not longer than smtp.next_hop_timeout_seconds (30 s)",
        ),
        (
            "smtp:\n  next_hop_timeout_seconds: 45\nretention:\n  release_lease_seconds: 10\n",
            "10 s is not longer than smtp.next_hop_timeout_seconds (45 s)",
        ),
    ],
)
def test_a_release_lease_no_longer_than_a_send_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: str, warning: str | None
) -> None:
    config = write(tmp_path, f"state_dir: {tmp_path / 'var'}\n{settings}")
    assert main(["config", "check", str(config)]) == 0
    expected = [
        f"warning: retention.release_lease_seconds: {warning}: another replica may take over a release "
        "still being sent and deliver the message twice"
    ]
    assert capsys.readouterr().err.splitlines() == [*(expected if warning else []), "dlp: configuration OK"]
