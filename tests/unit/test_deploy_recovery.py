"""What the operators do with the manifests, beyond their schemas (issue 15, the ops review): the pods Strimzi
makes pass the namespace's Pod Security `restricted` level, the roles Job reaches the project's database,
MirrorMaker 2 writes nothing to the source, and the volumes outlive their namespace."""

from __future__ import annotations

import re
import subprocess
import textwrap
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from contracts.topics import TOPIC_BY_NAME
from tests.support.deploy import OVERLAYS, ROOT, Doc, named, of_kind, pod_templates, render
from tests.unit.test_deploy_manifests import KUBERNETES_VERSION, broken_cel_rules, crd_schemas, unknown_fields

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}

# The containers Strimzi runs for each resource, by their template's path (Strimzi 1.2's CRDs): the brokers
# and controllers (the node pools take the Kafka's templates unless they set their own), rack awareness's
# init container, the entity operator's two, Kafka Exporter, and MirrorMaker 2's Connect (and its init
# container, should rack awareness be turned on for it).
STRIMZI_CONTAINERS = {
    "Kafka": (
        ("spec", "kafka", "template", "kafkaContainer"),
        ("spec", "kafka", "template", "initContainer"),
        ("spec", "entityOperator", "template", "topicOperatorContainer"),
        ("spec", "entityOperator", "template", "userOperatorContainer"),
        ("spec", "kafkaExporter", "template", "container"),
    ),
    "KafkaMirrorMaker2": (
        ("spec", "template", "connectContainer"),
        ("spec", "template", "initContainer"),
    ),
}


def at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return value


def schema_at(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        schema = schema["properties"][key]
    return schema


def restricted_gaps(context: dict[str, Any]) -> list[str]:
    """What a container's securityContext lacks for the `restricted` level when the pod's own context (set by
    Strimzi's provider) carries neither seccomp nor runAsNonRoot."""
    found = []
    if context.get("allowPrivilegeEscalation") is not False:
        found.append("allowPrivilegeEscalation")
    if context.get("capabilities", {}).get("drop") != ["ALL"] or context["capabilities"].get("add"):
        found.append("capabilities")
    if context.get("runAsNonRoot") is not True or context.get("runAsUser") == 0:
        found.append("runAsNonRoot")
    if context.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        found.append("seccompProfile")
    if context.get("privileged"):
        found.append("privileged")
    return found


def test_the_restricted_check_finds_what_strimzis_baseline_provider_leaves_out() -> None:
    assert restricted_gaps(RESTRICTED_CONTAINER) == []
    everything = ["allowPrivilegeEscalation", "capabilities", "runAsNonRoot", "seccompProfile"]
    assert restricted_gaps({}) == everything
    added = {**RESTRICTED_CONTAINER, "capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}}
    assert restricted_gaps(added) == ["capabilities"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_strimzi_runs_is_given_the_restricted_context(overlay: str) -> None:
    """The namespace enforces `restricted`; Strimzi's default provider is `baseline`, whose containers keep
    their capabilities and no seccomp profile, so the API server would refuse the brokers, the controllers,
    the entity operator, Kafka Exporter and MirrorMaker 2. Each of their container templates carries the
    restricted context, at a path the CRD declares (a misplaced template would be pruned in silence)."""
    docs = render(f"overlays/{overlay}")
    checked = 0
    for kind, paths in STRIMZI_CONTAINERS.items():
        for doc in of_kind(docs, kind):
            schema = crd_schemas()[(doc["apiVersion"], kind)]
            for path in paths:
                assert "securityContext" in schema_at(schema, path)["properties"], path
                context = at(doc, (*path, "securityContext"))
                assert restricted_gaps(context) == [], (kind, path)
                checked += 1
    assert checked == (7 if overlay == "province" else 5)
    for pool in of_kind(docs, "KafkaNodePool"):
        for container in ("kafkaContainer", "initContainer"):
            own = at(pool, ("spec", "template", container))
            name = pool["metadata"]["name"]
            assert own == {} or restricted_gaps(own.get("securityContext", {})) == [], name


def test_the_strimzi_operators_install_names_the_restricted_provider_and_the_namespace() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "STRIMZI_POD_SECURITY_PROVIDER_CLASS=restricted" in operations
    assert "watchNamespaces" in operations


def resolved_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet makes it: `$(NAME)` in a value replaced by an earlier
    variable's value (a Secret's key stands as `secret.<name>.<key>`)."""
    found: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            found[item["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: found.get(m.group(1), m.group(0)), item["value"]
            )
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            found[item["name"]] = f"secret.{ref['name']}.{ref['key']}"
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_roles_job_connects_to_the_projects_database_not_to_the_superusers_star(overlay: str) -> None:
    """CloudNativePG's superuser Secret has a `uri` whose database is `*`: connecting with it fails. The Job
    names the database villagecounsel (the cluster's initdb database) on the read-write Service, with the
    Secret's username and password."""
    docs = render(f"overlays/{overlay}")
    job = named(docs, "Job", "villagecounsel-database-roles")
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = resolved_env(container)
    url = urlsplit(env["ADMIN_DATABASE_URL"])
    database = named(docs, "Cluster", "villagecounsel-pg")["spec"]["bootstrap"]["initdb"]["database"]
    assert url.path == f"/{database}" == "/villagecounsel"
    assert url.hostname == "villagecounsel-pg-rw"
    assert url.username == "secret.villagecounsel-pg-superuser.username"
    assert env["PGPASSWORD"] == "secret.villagecounsel-pg-superuser.password"
    assert "secret.villagecounsel-pg-superuser.uri" not in env.values()
    assert container["command"][-1] == "$(ADMIN_DATABASE_URL)"


def test_the_event_stores_and_postgresqls_volumes_outlive_the_namespace() -> None:
    """Deleting the namespace deletes every PVC in it (Strimzi's deleteClaim: false only covers deleting the
    Kafka), and CloudNativePG deletes its PVCs with the Cluster: the province's brokers, controllers and
    PostgreSQL (data and WAL) claim their volumes from a StorageClass that keeps them."""
    docs = render("overlays/province")
    retain = named(docs, "StorageClass", "villagecounsel-retain")
    assert retain["reclaimPolicy"] == "Retain"
    assert "namespace" not in retain["metadata"], "a StorageClass is cluster-wide"
    pools = of_kind(docs, "KafkaNodePool")
    assert {pool["metadata"]["name"] for pool in pools} == {"controllers", "brokers"}
    for pool in pools:
        for volume in pool["spec"]["storage"]["volumes"]:
            assert volume["class"] == "villagecounsel-retain", pool["metadata"]["name"]
    cluster = named(docs, "Cluster", "villagecounsel-pg")["spec"]
    assert (
        cluster["storage"]["storageClass"] == cluster["walStorage"]["storageClass"] == "villagecounsel-retain"
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """A JSON merge patch (RFC 7386), as kustomize applies a patch file to a custom resource: maps merge,
    `null` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def runbook_yaml(path: str, kind: str) -> Doc:
    """The YAML example of that kind in a runbook's fenced blocks."""
    text = (ROOT / "docs" / "runbooks" / path).read_text()
    blocks = [
        yaml.safe_load(textwrap.dedent(block)) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)
    ]
    found = [block for block in blocks if isinstance(block, dict) and block.get("kind") == kind]
    assert len(found) == 1, (path, kind, len(found))
    return found[0]


def test_the_postgresql_restore_keeps_the_name_and_archives_into_a_new_generation() -> None:
    """Re-applying the overlay on a restored cluster of the same barmanObjectStore.serverName would archive
    into the old cluster's folder ("Expected empty archive"); a restored cluster of another name would be
    cut off by the NetworkPolicies (they admit cnpg.io/cluster: villagecounsel-pg). The runbook's restore,
    applied as a patch on the province's Cluster, keeps the name, reads the overlay's generation and archives
    into another; the result passes CloudNativePG's schema and CEL rules."""
    docs = render("overlays/province")
    cluster = named(docs, "Cluster", "villagecounsel-pg")
    generation = cluster["spec"]["backup"]["barmanObjectStore"]["serverName"]
    assert generation
    assert generation != cluster["metadata"]["name"]
    patch = runbook_yaml("postgresql.md", "Cluster")
    assert patch["metadata"]["name"] == cluster["metadata"]["name"] == "villagecounsel-pg"
    restored = merge_patch(cluster, patch)
    spec = restored["spec"]
    assert list(spec["bootstrap"]) == ["recovery"], "one bootstrap method"
    source = next(c for c in spec["externalClusters"] if c["name"] == spec["bootstrap"]["recovery"]["source"])
    assert source["barmanObjectStore"]["serverName"] == generation
    assert spec["backup"]["barmanObjectStore"]["serverName"] not in (generation, "villagecounsel-pg")
    for key in ("destinationPath", "endpointURL", "s3Credentials"):
        assert source["barmanObjectStore"][key] == cluster["spec"]["backup"]["barmanObjectStore"][key], key
    assert (
        spec["backup"]["barmanObjectStore"]["destinationPath"]
        == source["barmanObjectStore"]["destinationPath"]
    )
    schema = crd_schemas()[(restored["apiVersion"], "Cluster")]
    assert list(jsonschema.Draft7Validator(schema).iter_errors(restored)) == []
    assert unknown_fields(restored, schema) == []
    assert broken_cel_rules(restored, schema) == []
    policies = [
        p for p in of_kind(docs, "NetworkPolicy") if "cnpg.io/cluster" in str(p["spec"]["podSelector"])
    ]
    assert policies
    assert all(
        p["spec"]["podSelector"]["matchLabels"]["cnpg.io/cluster"] == restored["metadata"]["name"]
        for p in policies
    )


def runbook_block(path: str, containing: str) -> str:
    text = (ROOT / "docs" / "runbooks" / path).read_text()
    found = [block for block in re.findall(r"```\n(.*?)```", text, re.S) if containing in block]
    assert len(found) == 1, (path, containing, len(found))
    return textwrap.dedent(found[0])


def shell_value(text: str) -> str:
    return {'"$TAB"': "\t", '"$SEP"': "\x1f"}.get(text, text.strip("'\""))


def command_properties(command: str) -> dict[str, str]:
    return {key: shell_value(value) for key, value in re.findall(r"--property ([a-z.]+)=(\S+)", command)}


def read_as_console_producer(line: str, properties: dict[str, str]) -> tuple[list[tuple[str, str]], str, str]:
    """A line as Kafka's console producer reads it with parse.headers and parse.key (KIP-798): the headers
    up to headers.delimiter, split on headers.separator, each at its first headers.key.separator; then the
    key up to key.separator; the rest is the value. A missing delimiter is an error, as there."""
    headers_end = line.index(properties.get("headers.delimiter", "\t"))
    headers_text, rest = (
        line[:headers_end],
        line[headers_end + len(properties.get("headers.delimiter", "\t")) :],
    )
    key_end = rest.index(properties.get("key.separator", "\t"))
    key, value = rest[:key_end], rest[key_end + len(properties.get("key.separator", "\t")) :]
    headers = []
    for pair in headers_text.split(properties.get("headers.separator", ",")):
        name, _, header_value = pair.partition(properties.get("headers.key.separator", ":"))
        headers.append((name, header_value))
    return headers, key, value


def test_the_dead_letter_replay_parses_back_into_the_original_records() -> None:
    """The replay pipes the console consumer into the console producer. Their separators must agree (the
    producer's headers.delimiter is the consumer's key.separator: before, the consumer wrote `|` and the
    producer looked for a tab and refused every line), and the `sed` between them must drop the dlq_*
    headers only, even when dlq_reason holds commas and colons."""
    block = runbook_block("dead-letters.md", "kafka-console-producer.sh")
    consumer, filter_, producer = block.split("\n| ")
    assert filter_.startswith("sed ")
    read, write = command_properties(consumer), command_properties(producer)
    assert read["print.headers"] == read["print.key"] == "true"
    assert write["parse.headers"] == write["parse.key"] == "true"
    assert write.get("headers.delimiter", "\t") == read.get("key.separator", "\t")
    assert write.get("key.separator", "\t") == read.get("key.separator", "\t")
    assert write.get("headers.separator", ",") == read.get("headers.separator", ",")
    assert write.get("headers.key.separator", ":") == ":", "the consumer's is always a colon"
    original = [
        ("ce_id", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
        ("ce_type", "village.consultation.recorded"),
        ("ce_time", "2026-11-29T09:14:00+00:00"),
        ("ce_dataschema", "https://villagecounsel.example/schemas/consultation/1"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ]
    dead = [
        ("dlq_reason", "contract:payload.duration_minutes:positive,payload.topic:known"),
        ("dlq_topic", "village-services"),
        ("dlq_partition", "3"),
        ("dlq_offset", "41"),
        ("dlq_consumer", "ledger"),
    ]
    separator, tab = read.get("headers.separator", ","), read.get("key.separator", "\t")
    value = '{"village_id":"370102001","note":"a:b,c|d"}'
    line = separator.join(f"{name}:{text}" for name, text in original + dead) + f"{tab}370102001{tab}{value}"
    setup = block.splitlines()[0]
    assert setup.startswith("SEP=")
    sed = filter_.strip().removesuffix("\\")
    filtered = subprocess.run(
        ["bash", "-c", f"{setup}\n{sed}"],
        input=line + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.rstrip("\n")
    assert read_as_console_producer(filtered, write) == (original, "370102001", value)


def runbook_documents(path: str) -> list[Doc]:
    text = (ROOT / "docs" / "runbooks" / path).read_text()
    return [
        document
        for block in re.findall(r"```yaml\n(.*?)```", text, re.S)
        for document in yaml.safe_load_all(textwrap.dedent(block))
        if isinstance(document, dict)
    ]


def test_the_restore_from_the_mirror_is_a_reverse_mirror_maker_and_a_copy_by_key() -> None:
    """runbooks/kafka.md's restore: its custom resources pass the CRDs; the reverse MirrorMaker 2 reads the
    backup cluster the forward one writes to (with that cluster's CA) and writes here under the same names;
    the users have what the steps need and the reading one writes nothing; the staging topic has the
    partitions of the topic it restores; its pod meets the namespace's restricted level; and no console
    producer is given a partition (it has no such option)."""
    docs = render("overlays/province")
    forward = named(docs, "KafkaMirrorMaker2", "villagecounsel-mirror")["spec"]
    examples = runbook_documents("kafka.md")
    for example in examples:
        name = f"{example['kind']}/{example['metadata']['name']}"
        if example["apiVersion"] == "v1":  # the claims of the namespace's recovery
            kubernetes_validate.validate(example, KUBERNETES_VERSION, strict=True)
            continue
        schema = crd_schemas()[(example["apiVersion"], example["kind"])]
        assert list(jsonschema.Draft7Validator(schema).iter_errors(example)) == [], name
        assert unknown_fields(example, schema) == [], name
        assert broken_cel_rules(example, schema) == [], name
    restore = next(e for e in examples if e["kind"] == "KafkaMirrorMaker2")["spec"]
    assert restore["target"]["bootstrapServers"] == "villagecounsel-kafka-bootstrap:9093"
    source = restore["mirrors"][0]["source"]
    assert source["bootstrapServers"] == forward["target"]["bootstrapServers"]
    assert source["tls"] == forward["target"]["tls"], "the backup cluster's CA"
    config = restore["mirrors"][0]["sourceConnector"]["config"]
    assert config["replication.policy.class"].endswith(".IdentityReplicationPolicy")
    assert config["offset-syncs.topic.location"] == "target", "the backup user only reads"
    assert re.fullmatch(
        restore["mirrors"][0]["topicsPattern"], f"{forward['mirrors'][0]['source']['alias']}.village-services"
    )
    assert restricted_gaps(restore["template"]["connectContainer"]["securityContext"]) == []
    users = [
        e for e in examples if e["kind"] == "KafkaUser" and e["metadata"]["name"] == "villagecounsel-restore"
    ]
    reading = next(u for u in users if "namespace" not in u["metadata"])
    writing = next(u for u in users if u["metadata"].get("namespace") == "villagecounsel")
    assert all("Write" not in acl["operations"] for acl in reading["spec"]["authorization"]["acls"])
    assert restore["target"]["authentication"]["username"] == writing["metadata"]["name"]
    staging = next(e for e in examples if e["kind"] == "KafkaTopic")
    assert staging["spec"]["partitions"] == TOPIC_BY_NAME["village-services"].partitions
    assert staging["metadata"]["name"] == "primary.village-services"
    text = (ROOT / "docs" / "runbooks" / "kafka.md").read_text()
    for command in re.findall(r"kafka-console-producer\.sh(.*?)(?:```|\n\s*\n)", text, re.S):
        assert "--partition" not in command


def test_mirror_maker_pods_may_reach_the_backup_clusters_listener() -> None:
    """Strimzi gives MirrorMaker 2's pods its labels (part-of: villagecounsel), so the namespace's default
    deny applies to them: a policy must let them out to the second cluster's port, or nothing is mirrored."""
    docs = render("overlays/province")
    mirror = named(docs, "KafkaMirrorMaker2", "villagecounsel-mirror")
    labels = {
        **mirror["metadata"]["labels"],
        "strimzi.io/kind": "KafkaMirrorMaker2",
        "strimzi.io/cluster": "villagecounsel-mirror",
    }
    port = int(mirror["spec"]["target"]["bootstrapServers"].rsplit(":", 1)[1])

    def applies(policy: Doc) -> bool:
        return policy["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()

    applying = [policy for policy in of_kind(docs, "NetworkPolicy") if applies(policy)]
    assert any(
        "Egress" in policy["spec"]["policyTypes"] and "egress" not in policy["spec"] for policy in applying
    )
    outside = [
        rule
        for policy in applying
        for rule in policy["spec"].get("egress", [])
        if any("ipBlock" in peer for peer in rule.get("to", []))
    ]
    assert any({"protocol": "TCP", "port": port} in rule["ports"] for rule in outside)


def test_the_keys_secrets_outlive_their_external_secrets() -> None:
    """External Secrets' `deletionPolicy` is about the provider's key disappearing; what keeps the Secret when
    the ExternalSecret itself is deleted is `creationPolicy: Orphan` (with Owner, the Secret carries an owner
    reference and the garbage collector deletes it)."""
    secrets = {
        doc["metadata"]["name"]: doc["spec"]["target"]
        for doc in of_kind(render("overlays/province"), "ExternalSecret")
    }
    for name in ("villagecounsel-personal", "villagecounsel-ledger"):
        assert secrets[name]["creationPolicy"] == "Orphan", name
        assert secrets[name]["deletionPolicy"] == "Retain", name


def test_every_kubectl_create_of_a_kept_job_deletes_the_previous_one_first() -> None:
    """The migration and rebuild Jobs have fixed names and are kept after they finish
    (ttlSecondsAfterFinished): a second `kubectl create` of them fails with AlreadyExists unless the
    instructions delete the old ones first."""
    jobs = of_kind(render("overlays/province/jobs"), "Job")
    assert all(job["spec"]["ttlSecondsAfterFinished"] > 0 for job in jobs)
    for path, selector in (
        (ROOT / "docs" / "operations.md", "-l app.kubernetes.io/component=migration"),
        (ROOT / "deploy" / "k8s" / "jobs" / "migrate.yaml", "-l app.kubernetes.io/component=migration"),
        (ROOT / "docs" / "runbooks" / "rebuild.md", "-l app.kubernetes.io/name=rebuild-ledger"),
    ):
        lines = path.read_text().splitlines()
        creates = [i for i, line in enumerate(lines) if "kubectl create -f -" in line and selector in line]
        assert creates, (path.name, selector)
        for index in creates:
            before = "\n".join(lines[max(0, index - 3) : index])
            assert "delete job" in before, (path.name, index)
            assert "--ignore-not-found" in before, (path.name, index)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_jobs_take_the_image_from_the_same_place_as_the_services(overlay: str) -> None:
    """Setting the image in an overlay used to leave its jobs/ folder on the old version (each had its own
    `images:`): a migration of the old code would run before the new release. One component holds it."""
    folder = ROOT / "deploy" / "k8s" / "overlays" / overlay
    with_images = sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("kustomization.yaml")
        if "images" in (yaml.safe_load(path.read_text()) or {})
    )
    assert with_images == ["image/kustomization.yaml"]
    services = {
        c["image"] for _, pod in pod_templates(render(f"overlays/{overlay}")) for c in pod["containers"]
    }
    jobs = {
        c["image"] for _, pod in pod_templates(render(f"overlays/{overlay}/jobs")) for c in pod["containers"]
    }
    assert len(services) == 1
    assert jobs == services
