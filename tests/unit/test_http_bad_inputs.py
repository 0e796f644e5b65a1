"""Bad requests each service answers with a 4xx naming the field and the rule, before any database or
broker is asked (issue 12, findings 9 and 10), and the security headers on every response. The apps are
built as in production and called through httpx's ASGI transport, without their lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.examples import example_fields
from plumbing.auth import Role, mint_token
from plumbing.settings import ProjectionSettings, TokenSettings
from services.assessment.app import create_app as assessment
from services.dashboard.app import create_app as dashboard
from services.intake.app import create_app as intake
from services.ledger.app import create_app as ledger

APPS: dict[str, Callable[[], FastAPI]] = {
    "intake": intake,
    "ledger": ledger,
    "assessment": assessment,
    "dashboard": dashboard,
}
COUNTY = "370402"


def bearer(role: Role = Role.county_bureau, region: str = COUNTY, subject: str = "county") -> dict[str, str]:
    token = mint_token(TokenSettings(), subject=subject, role=role, region_code=region, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=sorted(APPS))
async def any_service(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    app = APPS[request.param]()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def client_of(name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=APPS[name]()), base_url="http://test")


def fields_of(answer: httpx.Response) -> set[tuple[str, str]]:
    body: dict[str, Any] = answer.json()
    return {(item["field"], item["rule"]) for item in body["error"].get("fields", [])}


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize("path", ["/openapi.json", "/v1/no-such-route", "/v1/villages/370402101201"])
async def test_every_response_of_every_service_carries_the_security_headers(
    any_service: httpx.AsyncClient, path: str
) -> None:
    answer = await any_service.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, (path, name)
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy


async def test_the_dashboard_page_loads_its_scripts_from_itself_only() -> None:
    async with await client_of("dashboard") as client:
        page = await client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert "<script>" not in page.text  # no inline script: every script is a file served from /static


async def test_the_api_documentation_page_may_load_swagger_from_its_cdn() -> None:
    async with await client_of("ledger") as client:
        docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]


@pytest.mark.parametrize(
    "raw", ["/v1/villages/37040210%0d%0a1201", "/v1/advisors/a%0d%0aSet-Cookie:x/export"]
)
async def test_control_characters_in_a_path_are_a_422_not_a_dropped_connection(
    any_service: httpx.AsyncClient, raw: str
) -> None:
    answer = await any_service.get(raw, headers=bearer())
    assert answer.status_code == 422
    assert ("path", "no_control_characters") in fields_of(answer)


async def test_a_nul_in_the_region_search_is_a_422_naming_the_parameter() -> None:
    async with await client_of("dashboard") as client:
        answer = await client.get("/v1/regions?name=%00", headers=bearer())
    assert answer.status_code == 422
    assert ("query.name", "no_control_characters") in fields_of(answer)


async def test_intake_refuses_a_body_that_is_not_declared_json_with_415() -> None:
    async with await client_of("intake") as client:
        answer = await client.post(
            "/v1/consultations?dry_run=true",
            content=b'{"id": "7c1f0e9e-3d5a-4b8e-9a77-0f6b1c2d3e4f"}',
            headers={**bearer(Role.advisor, COUNTY, "lawyer-0001"), "Content-Type": "text/plain"},
        )
    assert answer.status_code == 415
    assert ("headers.content-type", "application_json") in fields_of(answer)


@pytest.mark.parametrize(
    ("service", "path", "field", "rule"),
    [
        (
            "ledger",
            "/v1/villages/370402101201/ledger?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk",
            "query.cursor",
            "cursor",
        ),
        ("ledger", "/v1/villages/370402101201/ledger?cursor=wrI", "query.cursor", "cursor"),
        (
            "ledger",
            "/v1/villages/370402101201/ledger?since=9999-12-31T23:59:59-14:00",
            "query.since",
            "within_years",
        ),
        (
            "ledger",
            "/v1/advisors/lawyer-0001/worklog?until=0001-01-01T00:00:00Z",
            "query.until",
            "within_years",
        ),
        ("ledger", "/v1/villages/370402101201/ledger?since=1774000000", "query.since", "iso_8601"),
        (
            "ledger",
            "/v1/villages/370402101201/ledger?advisor_id=%E5%BC%A0",
            "query.advisor_id",
            "string_pattern_mismatch",
        ),
        ("assessment", "/v1/regions/370402/alerts?since=1774000000", "query.since", "iso_8601"),
        ("ledger", "/v1/advisors/张三/export", "path.advisor_id", "string_pattern_mismatch"),
        (
            "ledger",
            "/v1/villages/\uff13\uff17\uff10\uff14\uff10\uff12\uff11\uff10\uff11\uff12\uff10\uff11",
            "path.village_code",
            "string_pattern_mismatch",
        ),
        ("ledger", "/v1/regions/3704x2/export", "path.region_code", "string_pattern_mismatch"),
        (
            "assessment",
            "/v1/compliance/lawyer-0001/370402101201?as_of=0001-01-01T00:00:00Z",
            "query.as_of",
            "within_years",
        ),
        (
            "assessment",
            "/v1/compliance/lawyer-0001/370402101201?as_of=9999-12-31T00:00:00Z",
            "query.as_of",
            "within_years",
        ),
        (
            "assessment",
            "/v1/advisors/lawyer-0001/compliance?as_of=9999-12-31T23:59:59Z",
            "query.as_of",
            "within_years",
        ),
        ("assessment", "/v1/regions/370402/compliance?month=9999-12", "query.month", "within_years"),
        (
            "assessment",
            "/v1/regions/370402/compliance?month=2026-13",
            "query.month",
            "string_pattern_mismatch",
        ),
        ("assessment", "/v1/regions/370402/alerts?since=0001-01-01", "query.since", "within_years"),
        ("assessment", "/v1/regions/370402/policy?on=9999-12-31", "query.on", "within_years"),
        ("dashboard", "/v1/villages/37040210120%3F/ledger-summary", "path.code", "string_pattern_mismatch"),
        ("dashboard", "/v1/villages/37040210120%23/ledger-summary", "path.code", "string_pattern_mismatch"),
        ("dashboard", "/v1/regions/\uff13\uff17/figures?period=2026", "path.code", "string_pattern_mismatch"),
    ],
)
async def test_bad_values_are_a_4xx_naming_field_and_rule(
    service: str, path: str, field: str, rule: str
) -> None:
    async with await client_of(service) as client:
        answer = await client.get(path, headers=bearer())
    assert answer.status_code == 422, answer.text
    assert (field, rule) in fields_of(answer)


async def test_policy_reads_check_the_region() -> None:
    async with await client_of("assessment") as client:
        answer = await client.get("/v1/regions/44/policy", headers=bearer())
    assert answer.status_code == 403


def test_an_empty_open_region_is_read_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VC_OPEN_REGION", "")
    assert ProjectionSettings().open_region is None


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("summary", "before\x00after", "no_control_characters"),
        ("title", "tab\x1b[31m", "no_control_characters"),
        ("person_times", "3", "int_type"),
        ("person_times", True, "int_type"),
        ("occurred_at", 1774000000, "datetime_string"),
        (
            "village_code",
            "\uff13\uff17\uff10\uff14\uff10\uff12\uff11\uff10\uff11\uff12\uff10\uff11",
            "string_pattern_mismatch",  # the schema's [0-9]; `ascii_digits` stays behind it
        ),
    ],
)
async def test_intake_refuses_control_characters_and_coerced_values_naming_field_and_rule(
    field: str, value: object, rule: str
) -> None:
    kind, path = (
        ("lecture.held", "/v1/lectures")
        if field == "title"
        else ("consultation.recorded", "/v1/consultations")
    )
    body = {k: v for k, v in example_fields(kind).items() if k != "recorded_by"}
    body = {"id": "7c1f0e9e-3d5a-4b8e-9a77-0f6b1c2d3e4f", **body, field: value}
    async with await client_of("intake") as client:
        answer = await client.post(
            f"{path}?dry_run=true", json=body, headers=bearer(Role.advisor, COUNTY, body["advisor_id"])
        )
    assert answer.status_code == 422, answer.text
    assert (field, rule) in fields_of(answer)


@pytest.mark.parametrize("amount", ["3e3", "+3000", " 3000", "1_000"])
async def test_intake_refuses_an_amount_it_would_publish_outside_the_schemas_form(amount: str) -> None:
    """Found in review: `Decimal` read "3e3" and intake accepted it with 202, then published "3E+3", which
    the published schema's pattern (and so every integrator's validator) refuses."""
    body = {k: v for k, v in example_fields("advisor.assigned").items() if k != "recorded_by"}
    body = {"id": "7c1f0e9e-3d5a-4b8e-9a77-0f6b1c2d3e4f", **body, "annual_subsidy_yuan": amount}
    async with await client_of("intake") as client:
        answer = await client.post("/v1/registry/assignments?dry_run=true", json=body, headers=bearer())
    assert answer.status_code == 422, answer.text
    assert ("annual_subsidy_yuan", "string_pattern_mismatch") in fields_of(answer)
