"""The workbench's forms come from the contracts (issue 18): every kind an advisor may send, every field of
its JSON Schema with a Chinese label, the same required fields, bounds and choices; the development sign-in
exists in local mode only and only for the demo advisors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from contracts.schemas import SCHEMA_DIR
from plumbing.auth import Role, principal_from_token
from services.intake.app import create_app
from services.intake.forms import ADVISOR_KINDS, BOUNDS, form_description, unlabeled
from services.intake.rules import KIND_BY_NAME, SERVER_SET_FIELDS
from services.intake.settings import IntakeSettings

FORMS = {form["kind"]: form for form in form_description()["kinds"]}
# Personal fields optional in the schema (they may travel sealed) that the contract requires in plain text.
REQUIRED_IN_PLAIN = {("risk_report", "description"), ("void", "reason")}


def contract_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{KIND_BY_NAME[kind].event_type}.json").read_text())
    return schema


def own(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    found = next((alt for alt in schema.get("anyOf", [schema]) if alt.get("type") != "null"), schema)
    if "$ref" in found:
        return definitions[found["$ref"].rsplit("/", 1)[-1]]  # type: ignore[no-any-return]
    return found


def contract_fields(kind: str) -> dict[str, tuple[dict[str, Any], bool]]:
    """Each field a client sends (nested objects by dotted name): its schema and whether it is required."""
    schema = contract_schema(kind)
    definitions = schema.get("$defs", {})
    fields: dict[str, tuple[dict[str, Any], bool]] = {}
    for name, property_schema in schema["properties"].items():
        if name in SERVER_SET_FIELDS:
            continue
        resolved = own(property_schema, definitions)
        if resolved.get("type") == "object":
            for inner, inner_schema in resolved["properties"].items():
                fields[f"{name}.{inner}"] = (
                    own(inner_schema, definitions),
                    inner in resolved.get("required", []),
                )
        else:
            required = name in schema["required"] or (kind, name) in REQUIRED_IN_PLAIN
            fields[name] = (property_schema | resolved, required)
    return fields


def test_every_kind_an_advisor_may_send_has_a_form_and_nothing_else_does() -> None:
    assert list(FORMS) == list(ADVISOR_KINDS)
    assert set(ADVISOR_KINDS) == {
        "consultation",
        "mediation",
        "lecture",
        "legal_aid",
        "visit",
        "document",
        "risk_report",
        "void",
    }
    assert "feedback" not in FORMS, "residents and cadres rate advisors, not the advisors themselves"
    for form in FORMS.values():
        assert form["label"]
        assert all(ord(ch) > 127 or ch in "()" for ch in form["label"])


def test_every_field_and_every_choice_has_a_chinese_label() -> None:
    assert unlabeled() == [], "add the labels to services/intake/forms.py"
    for form in FORMS.values():
        for field in form["fields"]:
            assert any(ord(ch) > 127 for ch in field["label"]), (form["kind"], field["name"])


@pytest.mark.parametrize("kind", ADVISOR_KINDS)
def test_a_form_has_the_contract_s_fields_required_fields_bounds_and_choices(kind: str) -> None:
    expected = contract_fields(kind)
    fields = {field["name"]: field for field in FORMS[kind]["fields"]}
    assert set(fields) == set(expected)
    for name, (schema, required) in expected.items():
        field = fields[name]
        assert field["required"] is required, name
        items = schema.get("items", {})
        enum = schema.get("enum") or own(items, contract_schema(kind).get("$defs", {})).get("enum")
        assert [choice["value"] for choice in field.get("choices", [])] == (enum or []), name
        assert {bound: field[bound] for bound in BOUNDS if bound in field} == {
            bound: schema[bound] for bound in BOUNDS if bound in schema
        }, name
        assert field["personal"] is bool(schema.get("x-personal")) or name.startswith("requester."), name


def test_the_defaults_are_now_my_village_and_me() -> None:
    visit = {field["name"]: field for field in FORMS["visit"]["fields"]}
    assert visit["occurred_at"]["default"] == "now"
    assert visit["ended_at"]["default"] == "now"
    assert visit["started_at"]["default"] == "an_hour_ago"
    assert visit["village_code"]["default"] == "my_village"
    assert visit["advisor_id"]["input"] == "signed_in"
    assert visit["activities"]["input"] == "choices"
    assert all(
        field["default"] is False for field in FORMS["mediation"]["fields"] if field["input"] == "flag"
    )


async def post_sign_in(settings: IntakeSettings, body: Any) -> httpx.Response:
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
        return await client.post("/workbench/dev-sign-in", json=body)


async def test_the_development_sign_in_is_refused_when_local_mode_is_off() -> None:
    answer = await post_sign_in(IntakeSettings(), {"advisor_id": "demo-lawyer-01"})
    assert answer.status_code == 403
    [field] = answer.json()["error"]["fields"]
    assert (field["field"], field["rule"]) == ("open_region", "local_mode_only")


async def test_in_local_mode_only_demo_advisors_sign_in_and_get_an_advisor_token() -> None:
    settings = IntakeSettings(open_region="370402")
    refused = await post_sign_in(settings, {"advisor_id": "county-370402"})
    assert refused.status_code == 403
    [field] = refused.json()["error"]["fields"]
    assert (field["field"], field["rule"]) == ("advisor_id", "demo_advisors_only")

    answer = await post_sign_in(settings, {"advisor_id": "demo-lawyer-02"})
    assert answer.status_code == 200, answer.text
    principal = principal_from_token(answer.json()["access_token"], settings)
    assert (principal.subject, principal.role, principal.region_code) == (
        "demo-lawyer-02",
        Role.advisor,
        "370402",
    )


def test_local_mode_is_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="VC_OPEN_REGION"):
        IntakeSettings(
            open_region="37",
            environment="production",
            jwt_algorithm="RS256",
            jwt_jwks_url="https://idp.example.gov.cn/jwks",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="intake",
            kafka_sasl_password="x",
            personal_master_key="A" * 43 + "=",
        )


async def test_the_page_s_files_are_served_with_a_policy_that_lets_it_reach_the_identity_provider() -> None:
    app = create_app(
        IntakeSettings(
            oidc_issuer="http://127.0.0.1:19400/",
            assessment_public_url="https://assessment.example.gov.cn/",
            ledger_url="https://ledger.example.gov.cn",
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
        page = await client.get("/workbench/")
        assert page.status_code == 200
        assert "法律顾问工作台" in page.text
        assert page.headers["content-security-policy"].endswith(
            "connect-src 'self' http://127.0.0.1:19400 https://assessment.example.gov.cn "
            "https://ledger.example.gov.cn"
        )
        for name, media_type in (
            ("app.js", "text/javascript"),
            ("sw.js", "text/javascript"),
            ("style.css", "text/css"),
            ("manifest.webmanifest", "application/manifest+json"),
        ):
            answer = await client.get(f"/workbench/{name}")
            assert answer.status_code == 200, name
            assert answer.headers["content-type"].startswith(media_type), name
        assert (await client.get("/workbench/../app.py")).status_code == 404
        config = (await client.get("/workbench/config.json")).json()
        assert config["oidc"]["issuer"] == "http://127.0.0.1:19400/"
        assert config["assessment_url"] == "https://assessment.example.gov.cn"
        assert config["local_sign_in"] is False
        assert (await client.get("/workbench/forms.json")).json() == json.loads(
            json.dumps(form_description())
        )
