"""Deployment files agree with the code: metric names, configuration keys, ports, policies."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

from dlp import metrics
from dlp.commands.config import config_warnings
from dlp.config import RetentionSettings, load_settings, parse_listen
from dlp.policy import PolicySet

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
METRIC_NAME = re.compile(r"\bdlp_[a-z_]+\b")


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "kind" in doc and doc["kind"] != "Kustomization":
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


SELECTOR = re.compile(r"\b(dlp_[a-z_]+)\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
TEMPLATE_LABEL = re.compile(r"\{\{\s*(?:\$labels\.)?(\w+)\s*\}\}")
AGGREGATION = re.compile(r"\b(?:sum|min|max|avg|count|topk|bottomk)\s*\(")
TARGET_LABELS = {"instance", "job"}


def exposed_series() -> dict[str, dict[str, set[str]]]:
    """Each exported sample name with its labels and every value each label has from start."""
    metrics.initialise(detector_ids=("credit-card",))
    series: dict[str, dict[str, set[str]]] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            labels = series.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                labels.setdefault(label, set()).add(value)
    return {name: labels for name, labels in series.items() if name.startswith("dlp_")}


def exposed_names() -> set[str]:
    metrics.initialise(detector_ids=("credit-card",))
    text = generate_latest(REGISTRY).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("dlp_")}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dlp-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def dashboard_legends() -> list[tuple[str, str]]:
    """(expression, legend or title format) pairs: the labels a legend names must survive the query."""
    dashboard = json.loads((DEPLOY / "grafana" / "dlp-dashboard.json").read_text())
    targets = [target for panel in dashboard["panels"] for target in panel["targets"]]
    pairs = [(t["expr"], t.get("legendFormat", "")) for t in targets]
    pairs += [(a["expr"], a.get("titleFormat", "")) for a in dashboard["annotations"]["list"]]
    return pairs


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "dlp-alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def rule_test_series() -> list[str]:
    tests = yaml.safe_load((DEPLOY / "prometheus" / "dlp-alerts.test.yml").read_text())
    return [series["series"] for test in tests["tests"] for series in test["input_series"]]


SOURCES = {"dashboard": dashboard_exprs, "alert rules": rule_exprs, "alert rule tests": rule_test_series}


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_referenced_metric_is_exposed(source: str) -> None:
    exprs = SOURCES[source]()
    referenced = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert referenced, source
    assert referenced - exposed_names() == set()


@pytest.mark.parametrize("source", list(SOURCES))
def test_every_label_and_value_matched_is_exposed(source: str) -> None:
    exprs = SOURCES[source]()
    series = exposed_series()
    unknown = []
    for expr in exprs:
        names = set(METRIC_NAME.findall(expr))
        for name, body in SELECTOR.findall(expr):
            for label, op, value in MATCHER.findall(body):
                if label in TARGET_LABELS:
                    continue
                values = series.get(name, {}).get(label)
                if values is None:
                    unknown.append(f"{name}: no label {label}")
                elif op in {"=", "!="} and value not in values:
                    unknown.append(f"{name}: {label}={value!r} never exported")
                elif op == "=~" and "$" not in value and set(value.split("|")) - values:
                    unknown.append(f"{name}: {label}=~{value!r} has values never exported")
        for grouping in GROUPING.findall(expr):
            for label in (part.strip() for part in grouping.split(",")):
                if label not in TARGET_LABELS and not any(label in series.get(name, {}) for name in names):
                    unknown.append(f"{expr!r}: grouped by {label}, which none of its metrics has")
    assert unknown == []


def kept_labels(expr: str, series: dict[str, dict[str, set[str]]]) -> set[str]:
    """Labels the result of a query still has: its grouping, none after a plain aggregation, else all."""
    groupings = GROUPING.findall(expr)
    if groupings:
        return {label.strip() for grouping in groupings for label in grouping.split(",")}
    if AGGREGATION.search(expr):
        return set()
    return TARGET_LABELS | {label for name in METRIC_NAME.findall(expr) for label in series.get(name, {})}


def test_dashboard_legends_name_labels_the_query_keeps() -> None:
    series = exposed_series()
    for expr, legend in dashboard_legends():
        assert set(TEMPLATE_LABEL.findall(legend)) <= kept_labels(expr, series), (expr, legend)


def test_alert_annotations_name_labels_the_rule_keeps() -> None:
    series = exposed_series()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "dlp-alerts.yml").read_text())
    for rule in (rule for group in rules["groups"] for rule in group["rules"]):
        named = set(TEMPLATE_LABEL.findall(" ".join(rule["annotations"].values())))
        assert named <= kept_labels(rule["expr"], series), rule["alert"]


def test_dashboard_channel_choices_are_the_channels() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dlp-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert tuple(variables["channel"]["query"].split(",")) == metrics.CHANNELS


def test_dashboard_covers_the_required_views() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dlp-dashboard.json").read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {
        "Traffic by verdict",
        "Top detectors",
        "Blocks and quarantines",
        "Scan latency percentiles",
        "Extraction flags",
        "Next-hop errors",
        "Incidents open",
    } <= titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_alert_rules_cover_the_required_conditions() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "dlp-alerts.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "DlpDown",
        "DlpBlockSpike",
        "DlpQuarantineSpike",
        "DlpNextHopFailures",
        "DlpScanErrors",
        "DlpScanLatencyHigh",
        "DlpPolicyReloadFailed",
    } <= names


def configmap_settings_text() -> str:
    text: str = manifests()[("ConfigMap", "dlp-config")]["data"]["dlp.yaml"]
    return text


def test_configmap_config_is_valid_and_matches_the_pod(tmp_path: Path) -> None:
    config = tmp_path / "dlp.yaml"
    config.write_text(configmap_settings_text())
    settings = load_settings(config, environ={})
    pod = manifests()[("StatefulSet", "dlp")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert parse_listen(settings.smtp.listen) == ("0.0.0.0", ports["smtp"])
    assert parse_listen(settings.http.listen) == ("0.0.0.0", ports["http"])
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_grace_seconds
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert container["args"] == ["--config", f"{mounts['config']}/dlp.yaml", "serve"]
    assert str(settings.state_dir) == mounts["state"]
    assert f"{mounts['state']}/keys" == mounts["keys"]
    assert mounts["site-policies"] in {str(p) for p in settings.policies}
    shown = yaml.safe_load(configmap_settings_text())["retention"]["release_lease_seconds"]
    assert shown == settings.retention.release_lease_seconds == RetentionSettings().release_lease_seconds
    assert config_warnings(settings) == []
    env = {e["name"] for e in container["env"]}
    assert env == {"DLP_ALERTS__WEBHOOK_SECRET"}
    secret_keys = set(manifests()[("Secret", "dlp-secrets")]["stringData"])
    assert {"finding-hash.key", "quarantine.key", "edm.key", "webhook-secret"} == secret_keys


def test_site_policy_pack_loads_with_the_shipped_packs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    for name, text in manifests()[("ConfigMap", "dlp-policies")]["data"].items():
        (site / name).write_text(text)
    policies = PolicySet.load([ROOT / "policies", site], internal_domains=("example.com",))
    assert "site-card-numbers-outbound" in {rule.id for rule in policies.rules}
    assert site / "site.yaml" in policies.files


def test_autoscaler_and_budget_target_the_relay() -> None:
    all_manifests = manifests()
    target = all_manifests[("HorizontalPodAutoscaler", "dlp")]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) in all_manifests
    selector = all_manifests[("PodDisruptionBudget", "dlp")]["spec"]["selector"]["matchLabels"]
    labels = all_manifests[("StatefulSet", "dlp")]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    service = all_manifests[("Service", "dlp")]["spec"]
    assert {p["targetPort"] for p in service["ports"]} == {"smtp", "http"}


def dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(item.split("=", 1) for item in shlex.split(line[4:]))
    return env


IMAGE_CONFIG = DEPLOY / "docker" / "dlp.yaml"


def test_image_default_configuration_is_valid() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY deploy/docker/dlp.yaml /etc/dlp/dlp.yaml" in text
    assert 'CMD ["--config", "/etc/dlp/dlp.yaml", "serve"]' in text
    assert "!deploy/docker/dlp.yaml" in (ROOT / ".dockerignore").read_text().splitlines()
    settings = load_settings(IMAGE_CONFIG, environ=dockerfile_env())
    assert settings.state_dir == Path("/var/lib/dlp")
    assert settings.policies == (Path("/etc/dlp/policies"),)
    assert settings.detectors == (Path("/etc/dlp/detectors"),)
    assert settings.smtp.next_hop == "maildir:/var/lib/dlp/outbox"
    assert parse_listen(settings.smtp.listen) == ("0.0.0.0", 10025)
    assert parse_listen(settings.http.listen) == ("0.0.0.0", 8080)
    assert "EXPOSE 10025 8080" in text


def test_image_environment_does_not_override_the_configmap(tmp_path: Path) -> None:
    # Environment beats the --config file: a DLP_* ENV in the image would silently replace
    # the ConfigMap's keys in the pod (it once sent all mail to a maildir in the volume).
    assert [name for name in dockerfile_env() if name.startswith("DLP_")] == []
    config = tmp_path / "dlp.yaml"
    config.write_text(configmap_settings_text())
    container = manifests()[("StatefulSet", "dlp")]["spec"]["template"]["spec"]["containers"][0]
    pod_env = {**dockerfile_env(), **{e["name"]: "placeholder" for e in container["env"]}}
    in_pod = load_settings(config, environ=pod_env)
    from_file = load_settings(config, environ={})
    assert in_pod.smtp.next_hop == from_file.smtp.next_hop == "smtp://postfix.mail.svc.cluster.local:10026"
    site = (Path("/etc/dlp/policies"), Path("/etc/dlp/policies-site"))
    assert in_pod.policies == from_file.policies == site
    assert in_pod.model_dump(exclude={"alerts"}) == from_file.model_dump(exclude={"alerts"})


def test_compose_mounts_existing_files() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert set(compose["services"]) == {"dlp", "postfix", "prometheus", "grafana"}
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    assert "command" not in compose["services"]["dlp"]
    env = compose["services"]["dlp"]["environment"]
    assert load_settings(IMAGE_CONFIG, environ=env).smtp.next_hop == "smtp://postfix:10026"
