"""End to end through the real worker pool: extraction, detection and a policy folder
written here, so the verdicts are this test's own and not the shipped packs' tuning."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest

from dlp.policy import PolicySet
from dlp.workers import ScanPool
from tests.api.conftest import Running, serve, server_settings


def _luhn_complete(prefix: str) -> str:
    digits = [int(d) for d in prefix + "0"]
    for i in range(len(digits) - 2, -1, -2):
        digits[i] = digits[i] * 2 - 9 if digits[i] * 2 > 9 else digits[i] * 2
    return prefix + str((10 - sum(digits) % 10) % 10)


CARD = _luhn_complete("453201511283036")
MESSAGE = (
    "From: alice@example.com\r\nTo: bob@partner.example\r\nSubject: order\r\n\r\n"
    f"Visa card number {CARD} expiry 12/29\r\n"
).encode()

POLICY = """\
name: api-test
rules:
  - id: card-quarantine
    description: any sure card number
    severity: high
    action: quarantine
    when:
      findings: {detectors: [credit-card], min_confidence: high}
  - id: damaged-block
    description: anything that could not be read
    severity: high
    action: block
    when:
      flags: [corrupt, encrypted]
"""


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server whose scans go through one real worker process."""
    root = tmp_path_factory.mktemp("pipeline")
    policies = root / "policies"
    policies.mkdir()
    (policies / "api-test.yaml").write_text(POLICY)
    state = root / "var"
    pool = ScanPool(server_settings(state), workers=1, policies=PolicySet.load([policies]))
    try:
        with serve(state, scanner=pool) as running:
            yield running
    finally:
        pool.close()


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_card_in_a_mail_is_quarantined_with_masked_findings(real: Running) -> None:
    with real.client("scanner") as client:
        response = client.post("/v1/scan", content=MESSAGE, params={"filename": "m.eml"})
    body = response.json()
    assert response.status_code == 200
    assert body["action"] == "quarantine"
    assert [r["id"] for r in body["rules"]] == ["card-quarantine"]
    assert [(f["detector"], f["confidence"]) for f in body["findings"]] == [("credit-card", "high")]
    assert body["findings"][0]["preview"] == f"{CARD[:4]}********{CARD[-4:]}"
    assert CARD not in response.text
    assert body["quarantine_id"] and body["incident_id"]
    with real.client("reviewer") as reviewer:
        assert reviewer.get(f"/v1/quarantine/{body['quarantine_id']}/content").content == MESSAGE


WHOLE_ZIP = _zip({f"part{i}.txt": f"row {i}\n" * 40 for i in range(20)})
BROKEN_ZIP = WHOLE_ZIP[: len(WHOLE_ZIP) // 2]


@pytest.mark.parametrize(
    ("name", "content", "action", "flag"),
    [
        ("broken.zip", BROKEN_ZIP, "block", "corrupt"),
        ("clean.zip", _zip({"notes.txt": "lunch at noon"}), "allow", None),
        ("empty.bin", b"", "allow", None),
    ],
)
def test_hostile_or_plain_files_get_a_result_not_an_error(
    real: Running, name: str, content: bytes, action: str, flag: str | None
) -> None:
    with real.client("scanner") as client:
        response = client.post("/v1/scan", files={"file": (name, content)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["action"] == action
    assert (flag in body["flags"]) if flag else body["flags"] == []
