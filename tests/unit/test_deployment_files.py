"""docker-compose.yml and deploy/k8s agree with the contracts and with what the services read.

No Docker engine or cluster is reachable here; these checks are what can be verified without one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from contracts.access import PRINCIPALS, SERVICE_PRINCIPALS, Acl
from contracts.topics import TOPICS
from plumbing.roles import SERVICE_ROLES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s" / "base"


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


def acl_set(acls: list[Acl]) -> set[tuple[str, str, str, frozenset[str]]]:
    return {(acl.resource_type, acl.name, acl.pattern, frozenset(acl.operations)) for acl in acls}


def test_the_kafka_users_and_their_acls_are_the_table_of_contracts_access() -> None:
    users = {doc["metadata"]["name"]: doc for doc in documents(K8S / "kafka-users.yaml")}
    assert set(users) == {principal.name for principal in PRINCIPALS}
    for principal in PRINCIPALS:
        user = users[principal.name]
        assert user["kind"] == "KafkaUser"
        assert user["apiVersion"] == "kafka.strimzi.io/v1"  # Strimzi >= 1.0 serves only v1
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "villagecounsel"
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["spec"]["authorization"]["type"] == "simple"
        declared = [
            Acl(
                rule["resource"]["type"],
                rule["resource"]["name"],
                rule["resource"]["patternType"],
                tuple(rule["operations"]),
            )
            for rule in user["spec"]["authorization"]["acls"]
        ]
        assert all(rule.get("type", "allow") == "allow" for rule in user["spec"]["authorization"]["acls"])
        assert acl_set(declared) == acl_set(list(principal.acls)), principal.name


def test_every_kafka_listener_is_closed_and_reached_only_by_the_projects_pods() -> None:
    kafka = next(doc for doc in documents(K8S / "kafka.yaml") if doc["kind"] == "Kafka")
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert listeners, "a listener for the services"
    for listener in listeners:
        assert listener["tls"] is True, listener["name"]
        assert listener["authentication"] == {"type": "scram-sha-512"}, listener["name"]
        assert listener["networkPolicyPeers"] == [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "villagecounsel"}}},
            {  # KEDA's operator reads the consumer groups' lag
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}},
                "podSelector": {"matchLabels": {"app": "keda-operator"}},
            },
        ], listener["name"]
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple"}
    assert "allow.everyone.if.no.acl.found" not in kafka["spec"]["kafka"]["config"]  # false by default


def test_each_service_connects_as_its_own_user_with_strimzis_secrets() -> None:
    kafka = next(doc for doc in documents(K8S / "kafka.yaml") if doc["kind"] == "Kafka")
    cluster = kafka["metadata"]["name"]
    port = kafka["spec"]["kafka"]["listeners"][0]["port"]
    for name in SERVICE_PRINCIPALS:
        deployment = next(doc for doc in documents(K8S / f"{name}.yaml") if doc["kind"] == "Deployment")
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "villagecounsel", (
            "the listener admits it"
        )
        container = pod["spec"]["containers"][0]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == f"{cluster}-kafka-bootstrap:{port}"
        assert env["VC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["VC_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["VC_KAFKA_SASL_USERNAME"] == name
        assert "VC_KAFKA_SASL_PASSWORD" not in env, "the password comes from the User Operator's Secret"
        mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
        volumes = {
            volume["name"]: volume["secret"] for volume in pod["spec"]["volumes"] if "secret" in volume
        }
        password = Path(env["VC_KAFKA_SASL_PASSWORD_FILE"])
        user_volume = next(volume for volume, path in mounts.items() if Path(path) == password.parent)
        assert volumes[user_volume]["secretName"] == name  # the KafkaUser's name
        assert {"key": "password", "path": password.name} in volumes[user_volume]["items"]
        ca = Path(env["VC_KAFKA_CA_FILE"])
        ca_volume = next(volume for volume, path in mounts.items() if Path(path) == ca.parent)
        assert volumes[ca_volume]["secretName"] == f"{cluster}-cluster-ca-cert"
        assert {"key": "ca.crt", "path": ca.name} in volumes[ca_volume]["items"]


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
    # As the browser reaches it (the overlays set their host names: test_deploy_manifests.py).
    assert env["VC_LEDGER_URL"].startswith("https://ledger."), env["VC_LEDGER_URL"]
    assert "VC_OPEN_REGION" not in env, "no reading without a token in the cluster"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["dashboard"][
        "environment"
    ]
    assert compose["VC_LEDGER_URL"] == "http://ledger:8000"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "npm ci" in dockerfile
    assert "VC_ECHARTS_FILE" in dockerfile


def test_each_service_reaches_postgresql_as_its_own_role_without_superuser_rights() -> None:
    """Issue 12, least privilege: the cluster manages one login role per service (plumbing/roles.py's
    table), none with more than LOGIN, and every Deployment connects as its own."""
    cluster = next(doc for doc in documents(K8S / "postgres.yaml") if doc["kind"] == "Cluster")
    managed = {role["name"]: role for role in cluster["spec"]["managed"]["roles"]}
    assert set(managed) == {role.name for role in SERVICE_ROLES}
    for role in managed.values():
        assert role["login"] is True
        assert [power for power in ("superuser", "createdb", "createrole") if role[power]] == []
    for role in SERVICE_ROLES:
        deployment = next(
            doc for doc in documents(K8S / f"{role.service}.yaml") if doc["kind"] == "Deployment"
        )
        env = {item["name"]: item for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["DATABASE_URL"]["value"].startswith(f"postgresql://{role.name}:$(PG_PASSWORD)@")
        assert env["PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"villagecounsel-pg-{role.service}"
    job = next(doc for doc in documents(K8S / "database-roles.yaml") if doc["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][:3] == [
        "python",
        "-m",
        "plumbing.roles",
    ]


def test_compose_restarts_every_container_that_exits() -> None:
    """A service whose projection died exits (code 70) so that it is started again (issue 14)."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {name: spec.get("restart") for name, spec in services.items()} == dict.fromkeys(
        services, "unless-stopped"
    )
