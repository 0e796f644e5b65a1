"""Issue 19, the loose spots third-party tools found in the contracts: digits, ajv's strict mode, the
AsyncAPI key and payload format, what `ce_time` is, the village-code range; and the package version."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from contracts.compatibility import check_backward
from contracts.envelope import ce_time_meaning
from contracts.events import PAYLOAD_BY_TYPE, PAYLOAD_TYPES, SCHEMA_VERSION, ServiceRecord, VillageCode
from contracts.examples import example_fields
from contracts.schemas import (
    ASYNCAPI_PATH,
    CUSTOM_KEYWORDS,
    PAYLOAD_SCHEMA_FORMAT,
    SCHEMA_DIR,
    all_event_schemas,
    key_schema,
)
from contracts.topics import REGISTRY, VILLAGE_SERVICES
from contracts.version import CONTRACTS_VERSION
from plumbing.auth import Principal, Role, mint_token
from plumbing.settings import TokenSettings
from services.intake.app import create_app as intake
from services.intake.rules import KINDS, Limits, prepare_event

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_JS = ROOT / "examples" / "js"
COUNTY = "370402"
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + n) for n in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + n) for n in range(10)))


def patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from patterns(item)


# 1. Digits: [0-9] everywhere, as JSON Schema (ECMA-262), Go and Java read `\d`; Python's `re` does not.


def test_no_schema_pattern_says_backslash_d_so_python_reads_them_as_every_other_validator() -> None:
    generated = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(SCHEMA_DIR.glob("*.json"))]
    asyncapi = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    found = [*patterns(all_event_schemas()), *patterns(generated), *patterns(asyncapi)]
    assert found, "the schemas have patterns"
    assert [pattern for pattern in found if "\\d" in pattern] == []
    for pattern in found:
        for odd in (
            text.translate(digits)
            for text in ("370402105201", "2026-03", "12.5", "37")
            for digits in (FULL_WIDTH, ARABIC_INDIC)
        ):
            assert re.search(pattern, odd) is None, (pattern, odd)


@pytest.mark.parametrize("digits", [FULL_WIDTH, ARABIC_INDIC], ids=["full-width", "arabic-indic"])
def test_the_models_refuse_other_scripts_digits_in_codes_months_and_amounts(
    digits: dict[int, str],
) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(VillageCode).validate_python("370402105201".translate(digits))
    for event_type, field, value in (
        ("advisor.assigned", "annual_subsidy_yuan", "3000.00"),
        ("compliance.month_closed", "month", "2026-03"),
        ("policy.published", "region_code", "370402"),
    ):
        payload_type = PAYLOAD_BY_TYPE[event_type]
        fields = {**example_fields(event_type), field: value}
        payload_type.model_validate(fields)  # the ASCII spelling is fine
        with pytest.raises(ValidationError) as refused:
            payload_type.model_validate({**fields, field: value.translate(digits)})
        assert refused.value.errors()[0]["loc"] == (field,)


def bearer(role: Role, subject: str) -> dict[str, str]:
    token = mint_token(TokenSettings(), subject=subject, role=role, region_code=COUNTY, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("digits", [FULL_WIDTH, ARABIC_INDIC], ids=["full-width", "arabic-indic"])
@pytest.mark.parametrize(
    ("path", "event_type", "field", "role"),
    [
        ("/v1/consultations", "consultation.recorded", "village_code", Role.advisor),
        ("/v1/risk-reports", "risk.reported", "village_code", Role.advisor),
        ("/v1/registry/assignments", "advisor.assigned", "village_code", Role.county_bureau),
        ("/v1/registry/assignments", "advisor.assigned", "annual_subsidy_yuan", Role.county_bureau),
    ],
)
async def test_intake_refuses_other_scripts_digits_with_a_4xx_naming_the_field(
    digits: dict[int, str], path: str, event_type: str, field: str, role: Role
) -> None:
    body = {k: v for k, v in example_fields(event_type).items() if k != "recorded_by"}
    body = {"id": str(uuid.uuid4()), **body}
    subject = body["advisor_id"] if role is Role.advisor else "county"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=intake()), base_url="http://t") as client:
        fine = await client.post(f"{path}?dry_run=true", json=body, headers=bearer(role, subject))
        assert fine.is_success, fine.text
        odd = {**body, field: body[field].translate(digits)}
        answer = await client.post(f"{path}?dry_run=true", json=odd, headers=bearer(role, subject))
    assert 400 <= answer.status_code < 500, answer.text
    assert field in {item["field"] for item in answer.json()["error"]["fields"]}, answer.text


def test_spelling_backslash_d_as_0_to_9_is_no_change_but_another_pattern_still_is() -> None:
    old = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^\\d{12}$"}}}
    same = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-9]{12}$"}}}
    narrower = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-8]{12}$"}}}
    assert check_backward(old, same) == []
    assert [problem.rule for problem in check_backward(old, narrower)] == ["pattern_changed"]


# 2. ajv in its default strict mode: the project's keywords registered, every schema compiles.


def node_check(directory: Path, *flags: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed (bin/setup checks for it)"
    assert (EXAMPLES_JS / "node_modules" / "ajv").is_dir(), "run bin/setup (npm ci in examples/js)"
    done = subprocess.run(
        [node, str(EXAMPLES_JS / "check-schemas.mjs"), str(directory), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    result["returncode"] = done.returncode
    return result


def test_every_schema_compiles_in_ajv_strict_mode_with_the_projects_keywords() -> None:
    result = node_check(SCHEMA_DIR)
    assert result["errors"] == {}
    assert result["compiled"] == len(PAYLOAD_TYPES) == len(list(SCHEMA_DIR.glob("*.json")))
    assert result["returncode"] == 0


def test_without_the_projects_keywords_strict_ajv_compiles_none_which_is_why_they_are_published() -> None:
    result = node_check(SCHEMA_DIR, "--without-keywords")
    assert result["compiled"] == 0
    assert all("unknown keyword" in error for error in result["errors"].values())
    assert result["returncode"] == 1


def test_keywords_json_names_every_x_keyword_the_schemas_use() -> None:
    used = set(re.findall(r'"(x-[a-z-]+)"', "".join(p.read_text() for p in SCHEMA_DIR.glob("*.json"))))
    published = json.loads((SCHEMA_DIR.parent / "keywords.json").read_text(encoding="utf-8"))
    assert used == set(CUSTOM_KEYWORDS) == set(published)


# 3. AsyncAPI: the key in the Kafka message binding, payloads declared as JSON Schema 2020-12.


def asyncapi_messages() -> dict[str, Any]:
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    messages: dict[str, Any] = document["components"]["messages"]
    return messages


def test_asyncapi_declares_each_messages_key_in_the_kafka_binding_and_no_x_key() -> None:
    assert "x-key" not in ASYNCAPI_PATH.read_text(encoding="utf-8")
    by_type = {message["name"]: message for message in asyncapi_messages().values()}
    for payload_type in PAYLOAD_TYPES:
        binding = by_type[payload_type.event_type]["bindings"]["kafka"]
        assert binding["key"]["type"] == "string"
        assert binding["bindingVersion"] == "0.5.0"
        example = payload_type.model_validate(example_fields(payload_type.event_type))
        if payload_type.kafka_topic == VILLAGE_SERVICES:
            assert binding["key"]["pattern"] == "^[0-9]{12}$"
        assert re.fullmatch(binding["key"].get("pattern", ".*"), example.record_key())
    dead_letters = [m for m in asyncapi_messages().values() if m["name"].endswith(".dead_letter")]
    assert dead_letters
    assert all(m["bindings"]["kafka"]["key"]["type"] == "string" for m in dead_letters)


def test_asyncapi_payloads_say_they_are_json_schema_2020_12() -> None:
    assert PAYLOAD_SCHEMA_FORMAT == "application/schema+json;version=draft-2020-12"
    for message in asyncapi_messages().values():
        if "payload" in message:
            assert message["payload"]["schemaFormat"] == PAYLOAD_SCHEMA_FORMAT
            assert message["payload"]["schema"]["$ref"] == f"./schemas/{message['name']}.json"


def test_the_official_asyncapi_parser_reads_the_key_and_the_payload_format_without_a_complaint() -> None:
    checker = ROOT / "contracts" / "packaging" / "asyncapi-check"
    assert (checker / "node_modules" / "@asyncapi" / "parser").is_dir(), "run bin/setup"
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(checker / "check.mjs"), str(ASYNCAPI_PATH)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    parsed = json.loads(done.stdout)
    assert parsed["parsed"]
    assert parsed["errors"] == []
    assert parsed["warnings"] == []
    for payload_type in PAYLOAD_TYPES:
        seen = parsed["messages"][payload_type.event_type]
        assert seen["key"] == key_schema(payload_type)
        assert seen["schemaFormat"] == PAYLOAD_SCHEMA_FORMAT


# 4. ce_time: said precisely per type, and intake does what is said.


def test_intake_sets_ce_time_as_the_catalogue_says_for_every_kind() -> None:
    now = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    province = Principal(subject="province", role=Role.province_department, region_code="37")
    messages = {message["name"]: message for message in asyncapi_messages().values()}
    checked = set()
    for kind in KINDS:
        payload_type = PAYLOAD_BY_TYPE[kind.event_type]
        body = {k: v for k, v in example_fields(kind.event_type).items() if k != "recorded_by"}
        limits = Limits(max_age=timedelta(days=400), clock_skew=timedelta(minutes=5))
        advisor = Principal(subject=body.get("advisor_id", "-"), role=Role.advisor, region_code=COUNTY)
        sender = advisor if issubclass(payload_type, ServiceRecord) and kind.name != "feedback" else province
        event = prepare_event(kind, {"id": str(uuid.uuid4()), **body}, sender, now, limits, "/t")
        meaning = ce_time_meaning(payload_type)
        said = messages[kind.event_type]["headers"]["properties"]["ce_time"]["description"]
        assert said == meaning
        if isinstance(event.data, ServiceRecord):
            assert "occurred_at" in meaning
            assert event.time == event.data.occurred_at != now
        else:
            assert kind.event_type != "personal.erased"
            assert payload_type.kafka_topic == REGISTRY
            assert "when intake accepted this copy" in meaning
            assert event.time == event.recorded_at == now
        checked.add(payload_type.kafka_topic)
    assert checked == {VILLAGE_SERVICES, REGISTRY}


def test_the_catalogue_no_longer_says_ce_time_is_always_when_the_thing_happened() -> None:
    readme = (ROOT / "contracts" / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `ce_time`"))
    assert "registry records: when intake accepted this copy" in row
    assert "occurred_at" in row


# 5. One truth for the village part of a village code.


def test_the_readme_states_the_village_code_range_the_model_accepts() -> None:
    readme = (ROOT / "contracts" / "README.md").read_text(encoding="utf-8")
    rule = readme.split("- `village_code`:", 1)[1].split("\n- ", 1)[0]
    stated: set[int] = set()
    for low, high in re.findall(r"([0-9]{3})\u2013([0-9]{3}) \(", rule):
        stated |= set(range(int(low), int(high) + 1))
    adapter = TypeAdapter(VillageCode)
    accepted = set()
    for part in range(1000):
        try:
            adapter.validate_python(f"370402105{part:03d}")
        except ValidationError:
            continue
        accepted.add(part)
    assert stated == accepted
    assert min(accepted) == 1
    assert max(accepted) == 599


# The version follows the schema version, in every place an integrator reads it.


def test_the_package_version_follows_the_schema_version_everywhere() -> None:
    assert int(CONTRACTS_VERSION.split(".")[0]) == SCHEMA_VERSION
    npm = json.loads((ROOT / "contracts" / "package.json").read_text(encoding="utf-8"))
    wheel = tomllib.loads((ROOT / "contracts" / "packaging" / "pyproject.toml").read_text(encoding="utf-8"))
    asyncapi = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    assert npm["version"] == wheel["project"]["version"] == asyncapi["info"]["version"] == CONTRACTS_VERSION
