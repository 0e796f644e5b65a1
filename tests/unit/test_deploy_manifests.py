"""deploy/k8s renders with kustomize for every overlay, and what it renders would be accepted and run safely:
core kinds against Kubernetes' schemas (kubernetes-validate, strict), custom resources against the CRDs of
the operator versions named in deploy/k8s/crds/SOURCES.md (with no field the schema does not know, and
every CEL rule of the schemas, `x-kubernetes-validations`, evaluated with cel-python), the Pod Security
`restricted` level, probes, Secrets, images, scaling and network policies (issue 15)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import pytest
import yaml

from contracts.topics import TOPIC_BY_NAME
from services.assessment.projection import assessment_projection
from services.dashboard.projection import dashboard_projection
from services.ledger.projection import ledger_projection
from tests.support.deploy import K8S, OVERLAYS, ROOT, Doc, named, of_kind, pod_templates, render

KUBERNETES_VERSION = "1.34.0"
CORE_GROUPS = ("v1", "apps/", "batch/", "policy/", "networking.k8s.io/", "autoscaling/", "storage.k8s.io/")
ALL_RENDERS = (*OVERLAYS, *(f"{overlay}/jobs" for overlay in OVERLAYS))
SERVICES = ("intake", "ledger", "assessment", "dashboard")
CONSUMERS = {
    "ledger": ledger_projection(b"\0" * 32).topics,
    "assessment": assessment_projection().topics,
    "dashboard": dashboard_projection().topics,
}


def rendered(path: str) -> tuple[Doc, ...]:
    return render(f"overlays/{path}")


# -- schemas ---------------------------------------------------------------------------------------


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema, from the committed CRDs."""
    schemas = {}
    for path in sorted((K8S / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served", True):
                    schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def unknown_fields(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Fields the structural schema does not declare: the API server prunes them without a word, so a
    misspelt or misplaced field would silently do nothing."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                found += unknown_fields(item, properties[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(item, extra, f"{where}.{key}")
            elif properties is not None and where != "" and extra is not True:
                found.append(f"{where}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{where}[{index}]")
    return found


@cache
def cel_program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def broken_cel_rules(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """The CEL rules (`x-kubernetes-validations`) that the value breaks, as the API server evaluates them on
    a create: at each node of the schema the value has, with the value as `self`. Transition rules (those
    naming `oldSelf`) apply only to an update, so they are not evaluated here."""
    found: list[str] = []
    for validation in schema.get("x-kubernetes-validations") or []:
        rule = validation["rule"]
        if "oldSelf" in rule:
            continue
        result = cel_program(rule).evaluate({"self": celpy.json_to_cel(value)})
        if isinstance(result, celpy.evaluation.CELEvalError) or not result:  # an error counts as refused
            found.append(f"{where or '.'}: {validation.get('message') or rule}")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                found += broken_cel_rules(item, properties[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                found += broken_cel_rules(item, extra, f"{where}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += broken_cel_rules(item, schema["items"], f"{where}[{index}]")
    return found


@pytest.mark.parametrize("path", ALL_RENDERS)
def test_every_object_validates_against_its_schema(path: str) -> None:
    docs = rendered(path)
    assert docs, path
    problems = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        api = doc["apiVersion"]
        if api.startswith(CORE_GROUPS):
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{name}: {error.message} at {list(error.path)}")
            continue
        schema = crd_schemas().get((api, doc["kind"]))
        if schema is None:
            problems.append(f"{name}: no CRD for {api} in deploy/k8s/crds")
            continue
        for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
            problems.append(f"{name}: {error.message} at {list(error.absolute_path)}")
        problems += [f"{name}: unknown field {field}" for field in unknown_fields(doc, schema)]
        problems += [f"{name}: CEL rule broken at {rule}" for rule in broken_cel_rules(doc, schema)]
    assert problems == []


def test_the_cel_rules_are_evaluated_and_refuse_what_the_api_server_would() -> None:
    """The rules do run: a ScaledObject whose minimum is above its maximum, and a KafkaUser whose
    certificate renews after it expires, are refused as the API server would refuse them; a rule on a
    field the object does not have is not evaluated, and the rendered objects pass."""
    scaled = named(rendered("province"), "ScaledObject", "ledger")
    schema = crd_schemas()[(scaled["apiVersion"], "ScaledObject")]
    assert broken_cel_rules(scaled, schema) == []
    upside_down = {**scaled, "spec": {**scaled["spec"], "minReplicaCount": 9, "maxReplicaCount": 2}}
    assert broken_cel_rules(upside_down, schema) == [
        ".spec: minReplicaCount must be less than or equal to maxReplicaCount"
    ]
    user = named(rendered("province"), "KafkaUser", "intake")
    schema = crd_schemas()[(user["apiVersion"], "KafkaUser")]
    assert broken_cel_rules(user, schema) == []
    late = {
        **user,
        "spec": {**user["spec"], "authentication": {"type": "tls", "validityDays": 30, "renewalDays": 60}},
    }
    assert len(broken_cel_rules(late, schema)) == 1


def test_the_core_schema_check_refuses_a_wrong_type_and_an_unknown_field() -> None:
    deployment = named(rendered("dev"), "Deployment", "intake")
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    for broken in (
        {**deployment, "spec": {**deployment["spec"], "replicas": "two"}},
        {**deployment, "spec": {**deployment["spec"], "replica": 2}},
    ):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_unknown_field_check_finds_a_misplaced_field() -> None:
    """The check above would pass anything if it never looked: a field put one level off is found."""
    kafka = named(rendered("province"), "Kafka", "villagecounsel")
    broken = {**kafka, "spec": {**kafka["spec"], "rack": kafka["spec"]["kafka"]["rack"]}}
    schema = crd_schemas()[("kafka.strimzi.io/v1", "Kafka")]
    assert unknown_fields(broken, schema) == [".spec.rack"]
    assert unknown_fields(kafka, schema) == []


def test_strimzi_resources_use_the_v1_api_and_a_kafka_version_strimzi_1_2_runs() -> None:
    docs = rendered("province")
    strimzi = [doc for doc in docs if doc["apiVersion"].startswith("kafka.strimzi.io/")]
    assert {doc["apiVersion"] for doc in strimzi} == {"kafka.strimzi.io/v1"}
    kafka = named(docs, "Kafka", "villagecounsel")
    assert kafka["spec"]["kafka"]["version"] in {"4.2.0", "4.2.1", "4.3.0", "4.3.1"}
    assert (
        named(docs, "KafkaMirrorMaker2", "villagecounsel-mirror")["spec"]["version"]
        == (kafka["spec"]["kafka"]["version"])
    )


# -- Kafka ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_runs_kraft_pools_rack_aware_and_cannot_delete_topics(overlay: str) -> None:
    docs = rendered(overlay)
    pools = {pool["metadata"]["name"]: pool["spec"] for pool in of_kind(docs, "KafkaNodePool")}
    assert {tuple(pool["roles"]) for pool in pools.values()} == {("controller",), ("broker",)}
    assert pools["brokers"]["replicas"] >= 3, "topics keep three replicas"
    for pool in pools.values():
        assert all(volume["deleteClaim"] is False for volume in pool["storage"]["volumes"])
    kafka = named(docs, "Kafka", "villagecounsel")["spec"]["kafka"]
    assert kafka["rack"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert kafka["config"]["delete.topic.enable"] is False
    assert kafka["config"]["min.insync.replicas"] == 2
    topics = of_kind(docs, "KafkaTopic")
    assert {topic["spec"]["topicName"] for topic in topics} == set(TOPIC_BY_NAME)


def test_the_mirror_copies_every_topic_to_a_second_cluster_in_the_province() -> None:
    docs = rendered("province")
    mirror = named(docs, "KafkaMirrorMaker2", "villagecounsel-mirror")["spec"]
    pattern = mirror["mirrors"][0]["topicsPattern"]
    import re

    assert all(re.fullmatch(pattern, topic) for topic in TOPIC_BY_NAME), pattern
    assert mirror["mirrors"][0]["source"]["bootstrapServers"].startswith("villagecounsel-kafka-bootstrap:")
    assert not mirror["target"]["bootstrapServers"].startswith("villagecounsel-kafka-bootstrap:")
    user = named(docs, "KafkaUser", "mirror-maker")["spec"]["authorization"]["acls"]
    assert all("Write" not in acl["operations"] for acl in user), "the mirror only reads the source"
    # ... so its offset-syncs topic is on the target (by default the source connector creates and writes it
    # on the source), and the checkpoint connector reads it there
    for connector in ("sourceConnector", "checkpointConnector"):
        assert mirror["mirrors"][0][connector]["config"]["offset-syncs.topic.location"] == "target", connector
    assert of_kind(rendered("dev"), "KafkaMirrorMaker2") == []


# -- pods: the restricted level and the project's own rules ---------------------------------------

RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(pod: Doc) -> list[str]:
    """The Pod Security Standard `restricted` (Kubernetes docs, "Pod Security Standards"), plus the
    project's read-only root with a writable /tmp."""
    found = []
    pod_context = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(flag)
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            found.append(f"volume {volume['name']}: {kinds}")
    mounts_tmp = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = container.get("securityContext", {})
        name = container["name"]
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation not false")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            found.append(f"{name}: capabilities not dropped")
        if set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: capabilities added")
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
            found.append(f"{name}: runAsNonRoot")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.append(f"{name}: runs as root")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccomp")
        if context.get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: writable root")
        tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]  # noqa: S108
        if not tmp or tmp[0]["name"] not in mounts_tmp:
            found.append(f"{name}: no emptyDir at /tmp")
    return found


def test_the_policy_check_finds_what_the_restricted_level_forbids() -> None:
    pod = dict(pod_templates(rendered("dev"))[0][1])
    assert restricted_violations(pod) == []
    container = {**pod["containers"][0], "securityContext": {"allowPrivilegeEscalation": True}}
    broken = {**pod, "securityContext": {}, "hostNetwork": True, "containers": [container]}
    found = restricted_violations(broken)
    assert "hostNetwork" in found
    for problem in (
        "allowPrivilegeEscalation not false",
        "capabilities not dropped",
        "seccomp",
        "runAsNonRoot",
    ):
        assert f"{container['name']}: {problem}" in found


@pytest.mark.parametrize("path", ALL_RENDERS)
def test_every_pod_meets_the_restricted_level(path: str) -> None:
    pods = pod_templates(rendered(path))
    assert pods
    assert {name: restricted_violations(pod) for name, pod in pods} == {name: [] for name, _ in pods}
    for name, pod in pods:
        assert pod.get("automountServiceAccountToken") is False, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_enforces_the_restricted_level(overlay: str) -> None:
    labels = named(rendered(overlay), "Namespace", "villagecounsel")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_start_slowly_and_liveness_outlasts_the_checks(overlay: str) -> None:
    for service in SERVICES:
        container = named(rendered(overlay), "Deployment", service)["spec"]["template"]["spec"]["containers"][
            0
        ]
        startup, ready, live = (container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe"))
        assert ready["httpGet"]["path"] == "/readyz"
        assert live["httpGet"]["path"] == "/healthz" == startup["httpGet"]["path"]
        # /readyz asks PostgreSQL then Kafka, up to 3 s each; /healthz may ask them too (a stalled projection)
        for probe in (startup, ready, live):
            assert probe["timeoutSeconds"] > 6, service
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "migrations run at start"
        assert live["periodSeconds"] * live["failureThreshold"] >= 60


@pytest.mark.parametrize("path", ALL_RENDERS)
def test_images_are_named_by_registry_and_version_or_digest(path: str) -> None:
    for name, pod in pod_templates(rendered(path)):
        for container in pod["containers"]:
            image = container["image"]
            assert "/" in image.split(":")[0], (name, image)
            reference = image.split("/")[-1]
            assert "@sha256:" in image or (":" in reference and not reference.endswith(":latest")), image


@pytest.mark.parametrize("path", ALL_RENDERS)
def test_every_container_has_resources(path: str) -> None:
    for name, pod in pod_templates(rendered(path)):
        for container in pod["containers"]:
            assert container["resources"]["requests"]["memory"], name
            assert container["resources"]["limits"]["memory"], name


def test_rebuilds_run_as_jobs_with_their_own_memory() -> None:
    every = {job["metadata"]["name"]: job for job in of_kind(rendered("province/jobs"), "Job")}
    jobs = {name: job for name, job in every.items() if name.startswith("rebuild-")}
    assert set(jobs) == {f"rebuild-{name}" for name in CONSUMERS}
    serving = named(rendered("province"), "Deployment", "ledger")["spec"]["template"]["spec"]["containers"][0]
    for name, job in jobs.items():
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][-3:-1] == ["rebuild", "--workers"], name
        assert memory_mi(container["resources"]["limits"]["memory"]) > 2 * 205, "two workers, ~205 MB each"
        assert memory_mi(container["resources"]["limits"]["memory"]) > memory_mi(
            serving["resources"]["limits"]["memory"]
        )


def test_migrations_run_as_jobs_of_their_own_before_a_release() -> None:
    """Issue 15: a long migration is never killed by a serving pod's startup probe: each consumer's schema
    migrations have a Job (`python -m services.X migrate`), with the service's own database role."""
    jobs = {
        job["metadata"]["name"]: job
        for job in of_kind(rendered("province/jobs"), "Job")
        if job["metadata"]["name"].startswith("migrate-")
    }
    assert set(jobs) == {f"migrate-{name}" for name in CONSUMERS}
    for name, job in jobs.items():
        container = job["spec"]["template"]["spec"]["containers"][0]
        service = name.removeprefix("migrate-")
        assert container["command"] == ["python", "-m", f"services.{service}", "migrate"]
        environment = {item["name"]: item for item in container["env"]}
        assert environment["DATABASE_URL"]["value"].startswith(f"postgresql://vc_{service}:")
        assert job["spec"]["backoffLimit"] == 0


def memory_mi(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


# -- scaling and disruption -------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_deployment_an_autoscaler_scales_names_its_own_replica_count(overlay: str) -> None:
    """A Deployment that an HPA or a KEDA ScaledObject scales leaves `spec.replicas` out: with it, every
    `kubectl apply` of the overlay would set the count back to the file's, undoing the autoscaler's
    (Kubernetes' "Migrating Deployments and StatefulSets to horizontal autoscaling")."""
    docs = rendered(overlay)
    scaled = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(docs, "HorizontalPodAutoscaler")}
    scaled |= {
        scaled_object["spec"]["scaleTargetRef"]["name"] for scaled_object in of_kind(docs, "ScaledObject")
    }
    assert scaled >= set(SERVICES)
    assert [
        d["metadata"]["name"]
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["name"] in scaled and "replicas" in d["spec"]
    ] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_consumer_group_scales_on_its_lag_up_to_its_partitions(overlay: str) -> None:
    docs = rendered(overlay)
    scaled = {obj["metadata"]["name"]: obj["spec"] for obj in of_kind(docs, "ScaledObject")}
    assert set(scaled) == set(CONSUMERS)
    for name, topics in CONSUMERS.items():
        spec = scaled[name]
        assert spec["scaleTargetRef"]["name"] == name
        assert spec["maxReplicaCount"] == max(TOPIC_BY_NAME[topic].partitions for topic in topics)
        trigger = spec["triggers"][0]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == name
        assert trigger["metadata"]["allowIdleConsumers"] == "false"
        # KEDA's operator resolves names in its own namespace
        assert (
            trigger["metadata"]["bootstrapServers"]
            == "villagecounsel-kafka-bootstrap.villagecounsel.svc:9093"
        )
        auth = named(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]
        assert {ref["name"] for ref in auth["secretTargetRef"] if ref["parameter"] == "password"} == {name}
    hpa = named(docs, "HorizontalPodAutoscaler", "intake")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "intake"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget(overlay: str) -> None:
    docs = rendered(overlay)
    budgets = [pdb["spec"]["selector"]["matchLabels"] for pdb in of_kind(docs, "PodDisruptionBudget")]
    for deployment in of_kind(docs, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(selector.items() <= labels.items() for selector in budgets), deployment["metadata"]["name"]


# -- network ----------------------------------------------------------------------------------------


def selects(policy: Doc, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        if expression["operator"] == "In" and value not in expression["values"]:
            return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_denied_by_default_and_reaches_only_dns_kafka_postgresql_and_https(overlay: str) -> None:
    docs = rendered(overlay)
    policies = of_kind(docs, "NetworkPolicy")
    for name, _pod in [*pod_templates(docs), *pod_templates(rendered(f"{overlay}/jobs"))]:
        workload = next(
            d for d in [*docs, *rendered(f"{overlay}/jobs")] if f"{d['kind']}/{d['metadata']['name']}" == name
        )
        labels = workload["spec"]["template"]["metadata"]["labels"]
        applying = [p for p in policies if selects(p, labels)]
        assert any(
            set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in p["spec"]
            for p in applying
        ), name
        ports = {
            port["port"]
            for p in applying
            for rule in p["spec"].get("egress", [])
            for port in rule.get("ports", [])
        }
        assert ports <= {53, 9093, 5432, 443, 4318}, (name, ports)  # 4318: spans to the collector
        assert {53, 9093, 5432} <= ports, name


# -- Secrets ----------------------------------------------------------------------------------------

# Made by the operators, not by an overlay (docs/operations.md, "Secrets"): Strimzi's cluster CA and one per
# KafkaUser; CloudNativePG's superuser and owner; cert-manager's certificate for the Ingress.
OPERATOR_SECRETS = {"villagecounsel-cluster-ca-cert", "villagecounsel-pg-superuser", "villagecounsel-pg-app"}
CERT_MANAGER_SECRETS = {"villagecounsel-tls"}


def referenced_secrets(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("secretName",) and isinstance(item, str):
                found.add(item)
            elif key in ("secretKeyRef", "passwordSecret") and isinstance(item, dict) and "name" in item:
                found.add(item["name"])
            elif key == "s3Credentials":
                found |= {ref["name"] for ref in item.values()}
            elif key == "secretTargetRef":
                found |= {ref["name"] for ref in item}
            else:
                found |= referenced_secrets(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_secrets(item)
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_referenced_is_defined_by_the_overlay_or_an_operator_and_documented(
    overlay: str,
) -> None:
    docs = (*rendered(overlay), *rendered(f"{overlay}/jobs"))
    defined = {doc["metadata"]["name"] for doc in of_kind(docs, "Secret")}
    defined |= {doc["spec"]["target"]["name"] for doc in of_kind(docs, "ExternalSecret")}
    kafka_users = {doc["metadata"]["name"] for doc in of_kind(docs, "KafkaUser")}
    referenced = referenced_secrets([doc for doc in docs if doc["kind"] != "ExternalSecret"])
    assert referenced - defined - kafka_users - OPERATOR_SECRETS - CERT_MANAGER_SECRETS == set()
    assert "villagecounsel-pg-superuser" in referenced, "the check above saw the references"
    if overlay == "dev":
        assert of_kind(docs, "ExternalSecret") == []
        assert {"villagecounsel-personal", "villagecounsel-ledger"} <= defined
    else:
        assert of_kind(docs, "Secret") == [], "the province's secret values come from its store only"
    operations = (ROOT / "docs" / "operations.md").read_text()
    for name in referenced - kafka_users:
        assert f"`{name}`" in operations, f"docs/operations.md does not describe the Secret {name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_services_verify_tokens_with_the_identity_providers_jwks_url(overlay: str) -> None:
    docs = rendered(overlay)
    auth = named(docs, "ConfigMap", "villagecounsel-auth")["data"]
    assert auth["VC_JWT_JWKS_URL"].startswith("https://")
    for service in SERVICES:
        container = named(docs, "Deployment", service)["spec"]["template"]["spec"]["containers"][0]
        assert {"configMapRef": {"name": "villagecounsel-auth"}} in container["envFrom"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_web_page_public_notice_and_apis_are_reached_over_tls(overlay: str) -> None:
    ingress = named(rendered(overlay), "Ingress", "villagecounsel")["spec"]
    hosts = {
        rule["host"]: rule["http"]["paths"][0]["backend"]["service"]["name"] for rule in ingress["rules"]
    }
    assert sorted(hosts.values()) == sorted(SERVICES)
    assert set(hosts) <= set(ingress["tls"][0]["hosts"])
    assert all("example.org" not in host for host in hosts) or overlay == "dev"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_workbench_and_the_residents_ratings_are_on_the_pages_host_name(overlay: str) -> None:
    """A phone opens /workbench/ and a notice posts its ratings on the one host name of the page (same
    origin: no CORS); the QR code and the form name that host."""
    docs = rendered(overlay)
    page_host = named(docs, "Ingress", "villagecounsel")["spec"]["rules"][0]
    routes = {path["path"]: path["backend"]["service"]["name"] for path in page_host["http"]["paths"]}
    assert routes == {
        "/": "dashboard",
        "/workbench": "intake",
        "/v1/batch": "intake",
        "/v1/public/ratings": "intake",
    }
    container = named(docs, "Deployment", "dashboard")["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["VC_PUBLIC_BASE_URL"] == env["VC_INTAKE_PUBLIC_URL"] == f"https://{page_host['host']}"
    intake = named(docs, "Deployment", "intake")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "FORWARDED_ALLOW_IPS", "value": "*"} in intake["env"], "the rate limits see the client"


# -- PostgreSQL -------------------------------------------------------------------------------------


def test_postgresql_has_replicas_and_the_province_archives_wal_and_backs_up_nightly() -> None:
    docs = rendered("province")
    cluster = named(docs, "Cluster", "villagecounsel-pg")["spec"]
    assert cluster["instances"] >= 2
    assert cluster["resources"]["limits"]["memory"]
    store = cluster["backup"]["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://")
    assert store["wal"]["compression"]
    scheduled = of_kind(docs, "ScheduledBackup")
    assert [backup["spec"]["cluster"]["name"] for backup in scheduled] == ["villagecounsel-pg"]
    assert named(rendered("dev"), "Cluster", "villagecounsel-pg")["spec"]["instances"] >= 2


def test_kustomize_base_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    manifests = {path.name for path in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    assert Path(K8S / "base" / "monitoring" / "grafana-dashboard.json").exists()


# -- what the browser reaches -------------------------------------------------------------------------


def container_env(docs: tuple[Doc, ...], service: str) -> dict[str, str]:
    deployment = named(docs, "Deployment", service)
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {item["name"]: item["value"] for item in env if "value" in item}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_browser_reaches_each_api_through_the_ingress_and_may_read_it_from_the_page(overlay: str) -> None:
    """The page's ledger links and approval buttons and the workbench's 我的本月 are read by the browser: each
    URL must be the overlay's Ingress host name of the right service over https (an in-cluster name such as
    http://ledger cannot be reached from a phone), and the ledger and the assessment must let the page's
    origin (the workbench shares it) read them."""
    docs = rendered(overlay)
    ingress = named(docs, "Ingress", "villagecounsel")
    served = {
        rule["host"]: {
            path["backend"]["service"]["name"] for path in rule["http"]["paths"] if path["path"] == "/"
        }
        for rule in ingress["spec"]["rules"]
    }
    page_host = next(host for host, backends in served.items() if backends == {"dashboard"})
    for service in ("dashboard", "intake"):
        env = container_env(docs, service)
        for variable, target in (("VC_LEDGER_URL", "ledger"), ("VC_ASSESSMENT_PUBLIC_URL", "assessment")):
            url = env[variable]
            assert url.startswith("https://"), (service, variable, url)
            assert served.get(url.removeprefix("https://").rstrip("/")) == {target}, (service, variable, url)
    for service in ("ledger", "assessment"):
        origins = yaml.safe_load(container_env(docs, service)["VC_CORS_ORIGINS"])
        assert origins == [f"https://{page_host}"], (service, origins)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_service_lets_another_service_call_it(overlay: str) -> None:
    """Services share only events: no NetworkPolicy admits one service's pods to another's."""
    for policy in of_kind(rendered(overlay), "NetworkPolicy"):
        if not any(selects(policy, {"app.kubernetes.io/name": name}) for name in SERVICES):
            continue
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                selected = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                assert selected not in SERVICES, (policy["metadata"]["name"], selected)
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                selected = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                assert selected not in SERVICES, (policy["metadata"]["name"], selected)
