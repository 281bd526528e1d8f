"""The README's configuration reference lists every settings key with its environment name, and its
metrics table every exported metric with its type and labels."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY
from pydantic import BaseModel

from dlp import metrics
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


METRIC_ROW = re.compile(r"^\| (?P<names>`dlp_[^|]*) \| (?P<type>\w+) \|(?P<labels>[^|]*)\|")
README_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "info": "gauge"}


def test_metrics_table_lists_every_exported_metric_with_its_type_and_labels() -> None:
    section = README.read_text().split("### Metrics", 1)[1].split("\n### ", 1)[0]
    documented = {}
    for match in map(METRIC_ROW.match, section.splitlines()):
        if match:
            labels = tuple(re.findall(r"`(\w+)`", match["labels"]))
            for name in re.findall(r"`(dlp_[a-z_]+)`", match["names"]):
                documented[name] = (match["type"], labels)
    metrics.initialise(detector_ids=("credit-card",))
    exported = {}
    for family in REGISTRY.collect():
        if family.name.startswith("dlp_"):
            name = family.name + ("_total" if family.type == "counter" else "")
            name += "_info" if family.type == "info" else ""
            sample_labels = next(s.labels for s in family.samples if s.name in {name, f"{name}_count"})
            labels = tuple(sample_labels)
            exported[name] = (README_TYPES[family.type], labels)
    assert documented == exported
