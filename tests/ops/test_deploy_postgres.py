"""The PostgreSQL component of deploy/kubernetes: valid manifests, a patch that meets the
base workload, and the Secret the patch reads; rendered with kustomize when kubectl is
installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from dlp.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
COMPONENT = BASE / "postgres"
K8S_VERSION = "1.37.0"


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def containers(statefulset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in statefulset["spec"]["template"]["spec"]["containers"]}


@pytest.mark.parametrize("name", ["secret.yaml", "networkpolicy.yaml"])
def test_manifests_are_valid(name: str) -> None:
    kubernetes_validate.validate(load(COMPONENT / name), K8S_VERSION, strict=True)


def test_the_patch_meets_the_base_workload_and_reads_the_secret() -> None:
    patch = load(COMPONENT / "statefulset-patch.yaml")
    base = load(BASE / "statefulset.yaml")
    assert (patch["kind"], patch["metadata"]["name"]) == (base["kind"], base["metadata"]["name"])
    (name,) = containers(patch)
    assert name in containers(base)
    (env,) = containers(patch)[name]["env"]
    secret = load(COMPONENT / "secret.yaml")
    reference = env["valueFrom"]["secretKeyRef"]
    assert env["name"] == "DLP_STORE"
    assert reference["name"] == secret["metadata"]["name"]
    assert list(secret["stringData"]) == [reference["key"]]
    url = secret["stringData"][reference["key"]]
    assert load_settings(None, {"DLP_STORE": url}).store.startswith("postgresql://")
    component = load(COMPONENT / "kustomization.yaml")
    assert component["resources"] == ["networkpolicy.yaml"]
    assert component["patches"] == [{"path": "statefulset-patch.yaml"}]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
def test_an_overlay_with_the_component_renders_valid_manifests(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    overlay = tmp_path / "overlays" / "prod"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [../../deploy/kubernetes]\ncomponents: [../../deploy/kubernetes/postgres]\n"
    )
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    (statefulset,) = [d for d in documents if d["kind"] == "StatefulSet"]
    names = [e["name"] for e in containers(statefulset)["dlp"]["env"]]
    assert "DLP_STORE" in names
    assert sorted(d["metadata"]["name"] for d in documents if d["kind"] == "NetworkPolicy") == [
        "dlp",
        "dlp-postgres",
    ]
