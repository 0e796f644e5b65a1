"""docker-compose.yml and deploy/k8s agree with the contracts and with what the services read.

No Docker engine or cluster is reachable here; these checks are what can be verified without one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from contracts.topics import TOPICS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def test_strimzi_topics_match_the_contracts() -> None:
    declared = {
        doc["spec"]["topicName"]: doc["spec"]
        for doc in documents(K8S / "kafka-topics.yaml")
        if doc["kind"] == "KafkaTopic"
    }
    assert set(declared) == {spec.name for spec in TOPICS}
    for spec in TOPICS:
        topic = declared[spec.name]
        assert topic["partitions"] == spec.partitions, spec.name
        for key, value in spec.configs.items():
            assert str(topic["config"][key]) == value, (spec.name, key)


def test_kustomization_lists_every_manifest_and_each_parses() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    for name in manifests:
        for document in documents(K8S / name):
            assert {"apiVersion", "kind", "metadata"} <= document.keys(), name


def test_deployments_probe_health_and_readiness_and_point_at_the_cluster() -> None:
    for name in ("intake.yaml", "ledger.yaml", "assessment.yaml", "dashboard.yaml"):
        deployment = next(doc for doc in documents(K8S / name) if doc["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["KAFKA_BOOTSTRAP_SERVERS"].startswith("villagecounsel-kafka-bootstrap")
        assert env["VC_ENVIRONMENT"] == "production"


def test_compose_runs_kafka_in_kraft_mode_postgres_and_the_services_from_the_dockerfile() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:")
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["args"]["SERVICE"] == name
            assert (ROOT / "services" / name / "__main__.py").exists()
            assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert (ROOT / "Dockerfile").exists()


def test_the_dashboard_finds_the_ledger_and_reads_without_a_token_only_in_compose() -> None:
    deployment = next(doc for doc in documents(K8S / "dashboard.yaml") if doc["kind"] == "Deployment")
    env = {
        item["name"]: item.get("value")
        for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    ledger = next(doc for doc in documents(K8S / "ledger.yaml") if doc["kind"] == "Service")
    port = ledger["spec"]["ports"][0]["port"]
    assert env["VC_LEDGER_URL"] == f"http://{ledger['metadata']['name']}" + ("" if port == 80 else f":{port}")
    assert "VC_OPEN_REGION" not in env, "no reading without a token in the cluster"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["dashboard"][
        "environment"
    ]
    assert compose["VC_LEDGER_URL"] == "http://ledger:8000"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "npm ci" in dockerfile
    assert "VC_ECHARTS_FILE" in dockerfile


def test_compose_restarts_every_container_that_exits() -> None:
    """A service whose projection died exits (code 70) so that it is started again (issue 14)."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {name: spec.get("restart") for name, spec in services.items()} == dict.fromkeys(
        services, "unless-stopped"
    )
