"""The README's configuration reference lists every settings key with its environment name."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from dlp.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(?P<key>[a-z_.]+)` \| `(?P<env>DLP_[A-Z_]+)` \|")


def settings_keys(model: type[BaseModel] = Settings, prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= settings_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def reference_rows() -> dict[str, str]:
    text = README.read_text()
    section = text.split("### Configuration reference", 1)[1].split("\n### ", 1)[0]
    return {m["key"]: m["env"] for m in map(ROW.match, section.splitlines()) if m}


def test_every_key_documented_once_with_its_environment_name() -> None:
    rows = reference_rows()
    assert set(rows) == settings_keys()
    assert rows == {key: "DLP_" + key.upper().replace(".", "__") for key in rows}
