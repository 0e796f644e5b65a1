"""The alerts and the dashboard: promtool checks and tests the rules, the cluster's PrometheusRule and
docker-compose's rule file are the same, the Grafana dashboard loads, every metric they name is one the
services export (or one of the named exporters'), and every alert has a runbook section (issue 15)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import plumbing.metrics
import services.intake.metrics
import services.ledger.metrics
from tests.support.deploy import K8S, OVERLAYS, ROOT, named, render

MONITORING = K8S / "base" / "monitoring"
RULES = MONITORING / "alerts.rules.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
METRIC_MODULES = (plumbing.metrics, services.intake.metrics, services.ledger.metrics)

# Metrics of other exporters the rules and the dashboard read, and who exports them.
EXTERNAL = {
    "up": "Prometheus itself, per target",
    "kafka_topic_partition_under_replicated_partition": "Kafka Exporter (Strimzi's kafkaExporter)",
    "kube_deployment_status_replicas_ready": "kube-state-metrics",
    "kube_deployment_spec_replicas": "kube-state-metrics",
    "kafka_topic_partition_current_offset": "Kafka Exporter (Strimzi's kafkaExporter)",
    "cnpg_pg_stat_archiver_failed_count": "CloudNativePG's exporter (default queries, pg_stat_archiver)",
    "cnpg_pg_stat_archiver_seconds_since_last_archival": "CloudNativePG's exporter (default queries)",
    "cnpg_collector_last_available_backup_timestamp": "CloudNativePG's exporter (its collector)",
    "cnpg_collector_last_failed_backup_timestamp": "CloudNativePG's exporter (its collector)",
    "kafka_connect_mirror_mirrorsourceconnector_replication_latency_ms_max": "MirrorMaker 2's JMX exporter",
    "kafka_connect_mirror_mirrorsourceconnector_record_count": "MirrorMaker 2's JMX exporter",
}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "delta", "deriv", "time",
    "histogram_quantile", "and", "or", "unless", "offset", "on", "ignoring", "group_left", "group_right",
    "bool", "le", "humanizeDuration", "humanizePercentage", "label_replace",
}  # fmt: skip


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: bin/setup installs Debian's prometheus package"
    return found


def test_promtool_checks_the_rules() -> None:
    run = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS: 14 rules found" in run.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    run = subprocess.run(
        [promtool(), "test", "rules", "alerts.test.yaml"], cwd=MONITORING, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "alerts.test.yaml").read_text()))
    assert tested == set(alert_names()), "every alert has a unit test"


def test_compose_prometheus_config_parses() -> None:
    config = ROOT / "deploy" / "compose" / "prometheus.yml"
    run = subprocess.run(
        [promtool(), "check", "config", "--syntax-only", str(config)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def alert_names() -> list[str]:
    return [rule["alert"] for group in rule_groups() for rule in group["rules"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_clusters_prometheus_rule_is_the_rule_file(overlay: str) -> None:
    rule = named(render(f"overlays/{overlay}"), "PrometheusRule", "villagecounsel")
    assert rule["spec"]["groups"] == rule_groups()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_grafana_dashboard_loads_and_reaches_the_sidecar(overlay: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels) >= 10
    assert all(panel["targets"][0]["expr"] for panel in panels)
    config_map = named(render(f"overlays/{overlay}"), "ConfigMap", "villagecounsel-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["villagecounsel.json"]) == dashboard


def test_compose_provisions_the_dashboard_and_the_rules() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounts = [
        volume.split(":")[0] for volume in services["grafana"]["volumes"] + services["prometheus"]["volumes"]
    ]
    assert "./deploy/k8s/base/monitoring/grafana-dashboard.json" in mounts
    assert "./deploy/k8s/base/monitoring/alerts.rules.yaml" in mounts
    for mount in mounts:
        if mount.startswith("./"):
            assert (ROOT / mount).exists(), mount


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (no strings, label matchers, groupings or functions)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text))
    return {name for name in names if name not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhd]?", name)}


def test_the_metric_name_parser_reads_what_a_person_would() -> None:
    expr = 'histogram_quantile(0.99, sum by (service, le) (rate(vc_http_request_seconds_bucket{a="b"}[5m])))'
    assert metric_names(expr) == {"vc_http_request_seconds_bucket"}
    assert metric_names("up{job=~'x'} == 0 and kube_x offset 15m") == {"up", "kube_x"}


def exported() -> set[str]:
    """Every series name the services' collectors can export (the families of the modules that define
    them, loaded into the default registry, which /metrics serves)."""
    assert METRIC_MODULES
    names: set[str] = set()
    for family in REGISTRY.collect():
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",),
        }.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def test_every_metric_the_rules_and_the_dashboard_read_is_exported() -> None:
    exprs = [rule["expr"] for group in rule_groups() for rule in group["rules"]]
    exprs += [
        target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]
    ]
    read = set().union(*(metric_names(expr) for expr in exprs))
    assert {name for name in read if name.startswith("vc_")}, "the parser found the project's metrics"
    missing = {name for name in read if name not in exported() and name not in EXTERNAL}
    assert missing == set()
    assert "vc_projection_lag_records" in exported()
    assert "vc_no_such_metric" not in exported()


def test_the_metrics_catalogue_lists_every_metric_the_services_export() -> None:
    catalogue = (ROOT / "docs" / "metrics.md").read_text()
    ours = {family.name for family in REGISTRY.collect() if family.name.startswith("vc_")}
    assert ours
    missing = {name for name in ours if f"`{name}" not in catalogue}
    assert missing == set()


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "runbooks" / "alerts.md").read_text()
    headings = {line.lstrip("# ").strip() for line in runbook.splitlines() if line.startswith("## ")}
    assert set(alert_names()) <= headings
    for group in rule_groups():
        for rule in group["rules"]:
            assert rule["annotations"]["runbook_url"].endswith("#" + rule["alert"].lower())


def test_every_external_metric_is_in_the_catalogue() -> None:
    """docs/metrics.md names the exporter of each metric the rules and the dashboard read from elsewhere."""
    catalogue = (ROOT / "docs" / "metrics.md").read_text()
    missing = {name for name in EXTERNAL if name != "up" and f"`{name}`" not in catalogue}
    assert missing == set()


def test_the_mirrors_metrics_are_scraped_under_the_names_the_alerts_read() -> None:
    """The mirror alerts read MirrorMaker 2's connector metrics: its metricsConfig names the JMX exporter's
    rules that make them, and a PodMonitor scrapes its pods (job villagecounsel/villagecounsel-mirror, the
    one VillagecounselMirrorStalled looks for)."""
    docs = render("overlays/province")
    mirror = named(docs, "KafkaMirrorMaker2", "villagecounsel-mirror")
    reference = mirror["spec"]["metricsConfig"]["valueFrom"]["configMapKeyRef"]
    config = yaml.safe_load(named(docs, "ConfigMap", reference["name"])["data"][reference["key"]])
    made = {rule["name"].rsplit("$", 1)[0] for rule in config["rules"]}
    expressions = [rule["expr"] for group in rule_groups() for rule in group["rules"]]
    read = {
        name
        for expr in expressions
        for name in metric_names(expr)
        if name.startswith("kafka_connect_mirror_")
    }
    assert read
    assert all(any(name.startswith(prefix) for prefix in made) for name in read), (read, made)
    monitor = named(docs, "PodMonitor", "villagecounsel-mirror")["spec"]
    assert monitor["selector"]["matchLabels"] == {
        "strimzi.io/kind": "KafkaMirrorMaker2",
        "strimzi.io/cluster": mirror["metadata"]["name"],
    }
    assert monitor["podMetricsEndpoints"][0]["port"] == "tcp-prometheus"
    assert 'job="villagecounsel/villagecounsel-mirror"' in " ".join(expressions)
