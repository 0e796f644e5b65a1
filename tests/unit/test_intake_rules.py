"""Intake's rules as tables: what a record must satisfy, and who may write what."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from contracts.envelope import content_fingerprint
from contracts.examples import example_fields
from plumbing.auth import AuthenticationFailed, Principal, Role, mint_token, principal_from_token
from services.intake.openapi import _example
from services.intake.rules import KIND_BY_NAME, KINDS, Limits, RecordRejected, prepare_event
from services.intake.settings import IntakeSettings

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
LIMITS = Limits(max_age=timedelta(days=400), clock_skew=timedelta(minutes=5))
ADVISOR = Principal("lawyer-0001", Role.advisor, "370402")
COUNTY = Principal("county-370402", Role.county_bureau, "370402")
TOWNSHIP = Principal("township-370402105", Role.township_office, "370402105")


def body(kind: str, **changes: Any) -> dict[str, Any]:
    fields = {k: v for k, v in example_fields(KIND_BY_NAME[kind].event_type).items() if k != "recorded_by"}
    return {"id": str(uuid.uuid4()), **fields, **changes}


def rejected(kind: str, record: Any, principal: Principal = ADVISOR) -> RecordRejected:
    with pytest.raises(RecordRejected) as caught:
        prepare_event(KIND_BY_NAME[kind], record, principal, NOW, LIMITS, "/test")
    return caught.value


def rules(rejection: RecordRejected) -> set[tuple[str, str]]:
    return {(error.field, error.rule) for error in rejection.errors}


def test_an_accepted_record_gets_recorded_by_and_recorded_at_from_the_server() -> None:
    record = body("consultation")
    event = prepare_event(KIND_BY_NAME["consultation"], record, ADVISOR, NOW, LIMITS, "/test")
    assert event.id == uuid.UUID(record["id"])
    assert event.recorded_at == NOW
    assert event.data.model_dump()["recorded_by"] == "lawyer-0001"
    assert event.time == datetime.fromisoformat(record["occurred_at"])


@pytest.mark.parametrize(
    ("kind", "changes", "expected"),
    [
        (
            "consultation",
            {"occurred_at": (NOW + timedelta(hours=1)).isoformat()},
            ("occurred_at", "not_in_future"),
        ),
        (
            "consultation",
            {"occurred_at": (NOW - timedelta(days=401)).isoformat()},
            ("occurred_at", "max_age"),
        ),
        (
            "visit",
            {"started_at": NOW.isoformat(), "ended_at": (NOW + timedelta(hours=2)).isoformat()},
            ("ended_at", "not_in_future"),
        ),
        ("visit", {"ended_at": "2026-03-14T08:00:00+00:00"}, ("ended_at", "value_error")),
        ("consultation", {"village_code": "3704021052"}, ("village_code", "string_pattern_mismatch")),
        ("consultation", {"village_code": "370402105999"}, ("village_code", "value_error")),
        ("consultation", {"channel": "fax"}, ("channel", "enum")),
        ("consultation", {"person_times": 0}, ("person_times", "greater_than_equal")),
        ("consultation", {"region_code": "37"}, ("region_code", "extra_forbidden")),
        ("consultation", {"recorded_by": "someone-else"}, ("recorded_by", "server_set")),
        ("consultation", {"recorded_at": NOW.isoformat()}, ("recorded_at", "server_set")),
        ("consultation", {"id": "not-a-uuid"}, ("id", "uuid")),
        ("violation", {"date": "2026-04-01"}, ("date", "not_in_future")),
    ],
)
def test_records_that_break_a_rule_are_refused_with_422_naming_field_and_rule(
    kind: str, changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    principal = COUNTY if KIND_BY_NAME[kind].is_registry else ADVISOR
    rejection = rejected(kind, body(kind, **changes), principal)
    assert rejection.status == 422
    assert expected in rules(rejection)


def test_a_small_clock_skew_is_allowed() -> None:
    record = body("consultation", occurred_at=(NOW + timedelta(minutes=4)).isoformat())
    event = prepare_event(KIND_BY_NAME["consultation"], record, ADVISOR, NOW, LIMITS, "/test")
    assert event.data.occurred_at == NOW + timedelta(minutes=4)  # type: ignore[attr-defined]


def test_a_record_without_id_is_refused() -> None:
    record = body("lecture")
    del record["id"]
    assert ("id", "missing") in rules(rejected("lecture", record))


def test_a_record_that_is_not_an_object_is_refused() -> None:
    assert ("body", "object") in rules(rejected("lecture", ["not", "an", "object"]))


OTHER_COUNTY_VILLAGE = "370403101201"


@pytest.mark.parametrize(
    ("principal", "kind", "changes", "expected"),
    [
        (ADVISOR, "consultation", {"advisor_id": "lawyer-0002"}, ("advisor_id", "own_records_only")),
        (ADVISOR, "consultation", {"village_code": OTHER_COUNTY_VILLAGE}, ("village_code", "within_region")),
        (ADVISOR, "feedback", {}, ("rater", "not_self_rated")),
        (TOWNSHIP, "mediation", {"village_code": "370402106201"}, ("village_code", "within_region")),
        (TOWNSHIP, "assignment", {}, ("role", "county_level_or_above")),
        (ADVISOR, "advisor", {}, ("role", "county_level_or_above")),
        (Principal("sys", Role.integration, "37"), "policy", {}, ("role", "county_level_or_above")),
        (COUNTY, "policy", {"region_code": "37"}, ("region_code", "within_region")),
        (COUNTY, "assignment", {"village_code": OTHER_COUNTY_VILLAGE}, ("village_code", "within_region")),
        # the Ministry reads the whole country and records nothing
        (Principal("moj", Role.ministry, "0"), "consultation", {}, ("role", "records_nothing")),
        (Principal("moj", Role.ministry, "0"), "policy", {"region_code": "37"}, ("role", "records_nothing")),
    ],
)
def test_records_outside_the_callers_reach_are_refused_with_403(
    principal: Principal, kind: str, changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    rejection = rejected(kind, body(kind, **changes), principal)
    assert rejection.status == 403
    assert expected in rules(rejection)


@pytest.mark.parametrize(
    ("principal", "kind", "changes"),
    [
        (ADVISOR, "visit", {}),
        (TOWNSHIP, "feedback", {"rater": "township_office"}),
        (COUNTY, "mediation", {"advisor_id": "lawyer-0042"}),
        (COUNTY, "policy", {"region_code": "370402"}),
        (Principal("province-37", Role.province_department, "37"), "policy", {"region_code": "37"}),
        (Principal("sys", Role.integration, "3704"), "consultation", {"advisor_id": "lawyer-0009"}),
    ],
)
def test_records_within_the_callers_reach_are_accepted(
    principal: Principal, kind: str, changes: dict[str, Any]
) -> None:
    event = prepare_event(KIND_BY_NAME[kind], body(kind, **changes), principal, NOW, LIMITS, "/test")
    assert event.type == KIND_BY_NAME[kind].event_type


@pytest.mark.parametrize("kind", [kind.name for kind in KINDS])
def test_the_openapi_example_of_every_kind_is_accepted(kind: str) -> None:
    principal = Principal("province-37", Role.province_department, "37")
    example = _example(KIND_BY_NAME[kind])
    event = prepare_event(KIND_BY_NAME[kind], example, principal, NOW, LIMITS, "/test")
    assert (event.type, str(event.id)) == (KIND_BY_NAME[kind].event_type, example["id"])


SETTINGS = IntakeSettings(jwt_secret="a-test-secret-that-is-long-enough-for-hs256")


def test_a_minted_token_reads_back_as_its_principal() -> None:
    token = mint_token(
        SETTINGS, subject="lawyer-0001", role=Role.advisor, region_code="370402", now=datetime.now(UTC)
    )
    assert principal_from_token(token, SETTINGS) == ADVISOR


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": 1}, "expired"),
        ({"aud": "someone-else"}, "not valid"),
        ({"iss": "someone-else"}, "not valid"),
        ({"role": "mayor"}, "unknown role"),
        ({"role": "county_bureau", "region": "37"}, "6-digit"),
        ({"region": "37x"}, "division code"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(claims: dict[str, Any], message: str) -> None:
    now = datetime.now(UTC)
    base = {
        "sub": "lawyer-0001",
        "role": "advisor",
        "region": "370402",
        "iss": SETTINGS.jwt_issuer,
        "aud": SETTINGS.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    token = jwt.encode({**base, **claims}, SETTINGS.jwt_secret, algorithm="HS256")
    with pytest.raises(AuthenticationFailed, match=message):
        principal_from_token(token, SETTINGS)


def test_a_token_signed_with_another_key_is_refused() -> None:
    other = IntakeSettings(jwt_secret="another-secret-that-is-also-long-enough!!")
    token = mint_token(other, subject="x", role=Role.advisor, region_code="37", now=datetime.now(UTC))
    with pytest.raises(AuthenticationFailed, match="not valid"):
        principal_from_token(token, SETTINGS)


def test_rs256_tokens_are_verified_against_a_jwks_file(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(
        json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})
    )
    settings = IntakeSettings(jwt_algorithm="RS256", jwt_jwks_file=tmp_path / "jwks.json")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    claims = {
        "sub": "county-370402",
        "role": "county_bureau",
        "region": "370402",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(datetime.now(UTC).timestamp()),
        "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
    }
    token = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": "k1"})
    assert principal_from_token(token, settings) == COUNTY
    unknown = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": "k2"})
    with pytest.raises(AuthenticationFailed, match="no key with kid"):
        principal_from_token(unknown, settings)


def test_the_development_secret_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="HS256"):
        IntakeSettings(
            environment="production",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="intake",
            kafka_sasl_password="x",
        )


def test_the_age_limit_message_names_the_bulk_import_as_the_way() -> None:
    """No role can record an old record one by one (the county bureau included): the message names the way
    that exists, the bulk import of a ledger file by a county bureau or above."""
    record = body("consultation", occurred_at=(NOW - timedelta(days=401)).isoformat())
    for principal in (ADVISOR, COUNTY):
        error = next(error for error in rejected("consultation", record, principal).errors)
        assert error.rule == "max_age"
        assert "not built yet" not in error.message
        assert "POST /v1/imports" in error.message
        assert "python -m services.intake import FILE" in error.message
        assert "county bureau or above" in error.message


def test_the_import_marker_is_set_by_the_server_only() -> None:
    refused = rejected("consultation", body("consultation", imported=True), COUNTY)
    assert [(error.field, error.rule) for error in refused.errors] == [("imported", "server_set")]


def test_a_retry_sent_by_another_allowed_person_has_the_fingerprint_of_the_first() -> None:
    """A township office re-sending an advisor's offline batch: same id, same content, another sender.
    The server sets recorded_by and recorded_by_role; a retry is judged on what the client sent."""
    record = body("consultation", advisor_id=ADVISOR.subject, village_code="370402105201")
    first = prepare_event(KIND_BY_NAME["consultation"], record, ADVISOR, NOW, LIMITS, "/test")
    resent = prepare_event(
        KIND_BY_NAME["consultation"], record, TOWNSHIP, NOW + timedelta(days=2), LIMITS, "/test"
    )
    assert resent.data.model_dump()["recorded_by"] == TOWNSHIP.subject
    assert content_fingerprint(first) == content_fingerprint(resent)
    changed = prepare_event(
        KIND_BY_NAME["consultation"], {**record, "person_times": 7}, TOWNSHIP, NOW, LIMITS, "/test"
    )
    assert content_fingerprint(first) != content_fingerprint(changed)
