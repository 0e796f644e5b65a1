"""docs/operations.md is enough for someone who has never seen the project (issue 15): its examples are
applied as written (checked here against the schemas and the manifests they must match), and every value
the overlays expect from the person deploying is named there."""

from __future__ import annotations

import re
import subprocess
import textwrap

import jsonschema
import yaml

from tests.support.deploy import ROOT, Doc, kustomize, named, of_kind, render
from tests.support.deploy import _tree as render_tree
from tests.unit.test_deploy_manifests import broken_cel_rules, crd_schemas, unknown_fields

OPERATIONS = ROOT / "docs" / "operations.md"


def examples(kind: str) -> list[Doc]:
    """The YAML examples of that kind in docs/operations.md (a list item in a block is one document)."""
    found = []
    for block in re.findall(r"```yaml\n(.*?)```", OPERATIONS.read_text(), re.S):
        loaded = yaml.safe_load(textwrap.dedent(block))
        for document in loaded if isinstance(loaded, list) else [loaded]:
            if isinstance(document, dict) and document.get("kind") == kind:
                found.append(document)
    return found


def test_the_default_policy_regions_example_sets_the_provinces_code() -> None:
    """The step that gives another province its default policy: the documented patch, added to a copy of
    the province overlay, leaves intake with one VC_DEFAULT_POLICY_REGIONS, the new code."""
    patch = next(
        item
        for block in re.findall(r"```yaml\n(.*?)```", OPERATIONS.read_text(), re.S)
        for item in (yaml.safe_load(textwrap.dedent(block)) or [])
        if isinstance(item, dict) and "VC_DEFAULT_POLICY_REGIONS" in str(item.get("patch", ""))
    )
    overlay = render_tree() / "overlays" / "another-province"
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": ["../province"], "patches": [patch]}, sort_keys=False)
    )
    built = subprocess.run(
        [str(kustomize()), "build", str(overlay)], check=True, capture_output=True, text=True
    ).stdout
    docs = tuple(doc for doc in yaml.safe_load_all(built) if doc)
    env = named(docs, "Deployment", "intake")["spec"]["template"]["spec"]["containers"][0]["env"]
    regions = [item["value"] for item in env if item["name"] == "VC_DEFAULT_POLICY_REGIONS"]
    assert regions == ["41"]
    base = named(render("overlays/province"), "Deployment", "intake")["spec"]["template"]["spec"]
    assert len(env) == len(base["containers"][0]["env"]), "replaced, not added"


def test_every_key_and_property_the_province_reads_from_its_store_is_documented() -> None:
    text = OPERATIONS.read_text()
    wanted = {
        (item["remoteRef"]["key"], item["remoteRef"]["property"])
        for external in of_kind(render("overlays/province"), "ExternalSecret")
        for item in external["spec"]["data"]
    }
    assert len(wanted) >= 9
    for key, prop in wanted:
        assert f"`{key}`" in text or f"`{key.rsplit('/', 1)[0]}/vc_" in text, key
        assert f"`{prop}`" in text, (key, prop)
    stores = {
        e["spec"]["secretStoreRef"]["name"] for e in of_kind(render("overlays/province"), "ExternalSecret")
    }
    assert {store["metadata"]["name"] for store in examples("ClusterSecretStore")} == stores


def test_the_certificate_issuer_example_is_the_one_the_ingress_names() -> None:
    annotation = named(render("overlays/province"), "Ingress", "villagecounsel")["metadata"]["annotations"]
    issuers = examples("ClusterIssuer")
    assert [issuer["metadata"]["name"] for issuer in issuers] == [
        annotation["cert-manager.io/cluster-issuer"]
    ]
    assert issuers[0]["spec"]["acme"]["solvers"][0]["http01"]["ingress"]["ingressClassName"] == "nginx"


def test_the_second_clusters_mirror_user_example_fits_the_mirror() -> None:
    """The KafkaUser the second cluster needs: valid for Strimzi's schema, named as the mirror connects,
    and allowed to write the copies, its Connect topics and the offset syncs it keeps there."""
    mirror = named(render("overlays/province"), "KafkaMirrorMaker2", "villagecounsel-mirror")["spec"]
    user = next(u for u in examples("KafkaUser") if u["metadata"]["name"] == "villagecounsel-mirror")
    schema = crd_schemas()[(user["apiVersion"], "KafkaUser")]
    assert list(jsonschema.Draft7Validator(schema).iter_errors(user)) == []
    assert unknown_fields(user, schema) == []
    assert broken_cel_rules(user, schema) == []
    assert mirror["target"]["authentication"]["username"] == user["metadata"]["name"]
    prefixes = {
        acl["resource"]["name"]: set(acl["operations"])
        for acl in user["spec"]["authorization"]["acls"]
        if acl["resource"]["type"] == "topic"
    }
    alias = mirror["mirrors"][0]["source"]["alias"]
    assert {"Create", "Write"} <= prefixes[f"{alias}."]
    assert mirror["target"]["configStorageTopic"].startswith(
        next(p for p in prefixes if p.startswith("villagecounsel-mirror"))
    )
    assert {"Create", "Write", "Read"} <= prefixes["mm2-offset-syncs."]


def test_the_prerequisites_a_newcomer_would_miss_are_named() -> None:
    text = OPERATIONS.read_text()
    for needed in (
        "metrics-server",
        "OpenTelemetry Collector",
        "`observability`",
        "kubectl label node <node> topology.kubernetes.io/zone=",
        "port-forward service/kube-prometheus-stack-grafana",
        "port-forward service/kube-prometheus-stack-prometheus",
        "VC_OIDC_ISSUER",
        "VC_OIDC_CLIENT_ID",
        "VC_CORS_ORIGINS",
        "public-urls.yaml",
        "A records",
    ):
        assert needed in text, needed
