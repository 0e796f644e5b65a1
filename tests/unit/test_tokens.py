"""Bearer tokens as tables: lifetimes, region claims, and which keys production accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from plumbing.auth import AuthenticationFailed, Principal, Role, principal_from_token
from plumbing.settings import TokenSettings

SETTINGS = TokenSettings(jwt_secret="a-test-secret-that-is-long-enough-for-hs256")
NOW = datetime.now(UTC)


def full_width(digits: str) -> str:
    """Full-width digits (U+FF10-U+FF19), which str.isdigit() takes."""
    return "".join(chr(ord(digit) + 0xFEE0) for digit in digits)


def signed(**changes: Any) -> str:
    claims = {
        "sub": "county-370402",
        "role": "county_bureau",
        "region": "370402",
        "iss": SETTINGS.jwt_issuer,
        "aud": SETTINGS.jwt_audience,
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
        **changes,
    }
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SETTINGS.jwt_secret, "HS256")


def test_a_token_within_the_rules_names_its_caller() -> None:
    assert principal_from_token(signed(), SETTINGS) == Principal(
        "county-370402", Role.county_bureau, "370402"
    )


def test_the_ministrys_token_covers_every_region_of_the_country() -> None:
    ministry = principal_from_token(signed(sub="moj", role="ministry", region="0"), SETTINGS)
    assert ministry == Principal("moj", Role.ministry, "0")
    assert ministry.prefix == ""
    assert all(ministry.covers(code) for code in ("0", "11", "37", "3704", "370402105201", "65"))
    province = Principal("shandong", Role.province_department, "37")
    assert province.covers("370402")
    assert not province.covers("0")
    assert not province.covers("44")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # finding 10: a token valid for a hundred years was accepted
        ({"exp": int((NOW + timedelta(days=36_500)).timestamp())}, r"lifetime .* exceeds the maximum"),
        ({"exp": int((NOW + timedelta(hours=24, seconds=1)).timestamp())}, "exceeds the maximum of 86400 s"),
        ({"iat": None}, 'missing the "iat" claim'),
        ({"iat": int((NOW + timedelta(hours=1)).timestamp())}, "not valid"),  # issued in the future
        # finding 10: full-width digits passed str.isdigit()
        ({"region": full_width("370402")}, "ASCII digits"),
        ({"role": "province_department", "region": full_width("37")}, "ASCII digits"),
        ({"region": "37" + full_width("0402")}, "ASCII digits"),
        ({"region": "\u0663\u0667\u0660\u0664\u0660\u0662"}, "ASCII digits"),  # Arabic-Indic digits
        ({"region": 370402}, "ASCII digits"),  # a number, not a code
        ({"region": "370402\n"}, "ASCII digits"),
        # the country's code is the Ministry's alone, and the Ministry's token carries it
        ({"region": "0"}, "only a ministry token carries the country's code 0"),
        ({"role": "integration", "region": "0"}, "only a ministry token"),
        ({"role": "ministry", "region": "37"}, "a ministry token carries a 1-digit region code"),
        ({"role": "ministry", "region": "00"}, "a ministry token carries a 1-digit region code"),
    ],
)
def test_tokens_outside_the_rules_are_refused_with_the_reason(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(AuthenticationFailed, match=message):
        principal_from_token(signed(**changes), SETTINGS)


def test_the_lifetime_cap_is_a_setting() -> None:
    week = signed(exp=int((NOW + timedelta(days=7)).timestamp()))
    relaxed = SETTINGS.model_copy(update={"jwt_max_lifetime_seconds": 8 * 86_400})
    assert principal_from_token(week, relaxed).subject == "county-370402"
    with pytest.raises(AuthenticationFailed, match="exceeds the maximum"):
        principal_from_token(week, SETTINGS)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # no shared HMAC secret in production, not even a real one
        ({"jwt_secret": "a-real-and-long-production-secret-0123456789"}, "HS256"),
        ({}, "HS256"),
        ({"jwt_algorithm": "RS256"}, "needs VC_JWT_JWKS_URL"),
        (
            {"jwt_algorithm": "RS256", "jwt_jwks_url": "http://idp.example/jwks"},
            "https:// URL in production",
        ),
    ],
)
def test_production_refuses_at_start_up(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TokenSettings(environment="production", **fields)


def test_production_takes_the_identity_providers_jwks_url() -> None:
    settings = TokenSettings(
        environment="production",
        jwt_algorithm="RS256",
        jwt_jwks_url="https://idp.sd.gov.example/jwks",
        jwt_issuer="https://idp.sd.gov.example",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="dashboard",
        kafka_sasl_password="x",
    )
    assert settings.jwt_jwks_url == "https://idp.sd.gov.example/jwks"
