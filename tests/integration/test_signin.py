"""Sign-in through the devstack's real OpenID Connect provider (oidc-provider): a demo official signs in
with the authorization code flow and PKCE, and a service that trusts only the provider's JWKS URL takes
the access token; key rotation on the real provider: a new key works at once, a withdrawn one stops."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest

from contracts.examples import example_fields
from devstack.identity import (
    AUDIENCE,
    IdentityProfile,
    drop_key,
    identity_down,
    identity_running,
    identity_up,
    rotate_keys,
    sign_in,
)
from devstack.stack import LOCAL, StackError
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from tests.support.infrastructure import Infrastructure
from tests.support.waiting import eventually

NOW = datetime(2026, 11, 23, tzinfo=UTC)
INTAKE_NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)  # the examples' records are from that week
VILLAGE = "370402001013"  # 铁西居委会, one of demo-lawyer-01's villages (devstack/demo.py)


@asynccontextmanager
async def dashboard_trusting(
    identity: IdentityProfile, infrastructure: Infrastructure, **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The real dashboard service, verifying tokens against the provider's JWKS URL only (no secret)."""
    settings = DashboardSettings(
        **infrastructure.kafka_settings("dashboard"),
        database_url=infrastructure.database_url,
        poll_timeout_ms=100,
        jwt_algorithm="RS256",
        jwt_jwks_url=identity.jwks_url,
        jwt_issuer=identity.issuer,
        jwt_audience=AUDIENCE,
        **changes,
    )
    app = create_app(settings, ManualClock(NOW))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dash"
        ) as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_county_official_signs_in_and_the_service_takes_the_providers_token(
    identity: IdentityProfile, infrastructure: Infrastructure, topics: None
) -> None:
    signed_in = sign_in(identity, "county-370402")
    header = jwt.get_unverified_header(signed_in.access_token)
    claims = jwt.decode(signed_in.access_token, options={"verify_signature": False})
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert claims["iss"] == identity.issuer
    assert claims["aud"] == AUDIENCE
    assert (claims["sub"], claims["role"], claims["region"]) == ("county-370402", "county_bureau", "370402")
    assert claims["exp"] - claims["iat"] == identity.access_token_seconds

    async with dashboard_trusting(identity, infrastructure) as dashboard:
        me = await dashboard.get("/v1/me", headers=bearer(signed_in.access_token))
        assert me.status_code == 200, me.text
        assert me.json() | {"region_name": None} == {
            "subject": "county-370402",
            "role": "county_bureau",
            "region_code": "370402",
            "region_name": None,
            "local_mode": False,
        }
        # The token's region is enforced as always.
        outside = await dashboard.get("/v1/regions/370403/path", headers=bearer(signed_in.access_token))
        assert outside.status_code == 403, outside.text
        # No shared secret here: the development secret's tokens are refused.
        minted = mint_token(
            DashboardSettings(jwt_issuer=identity.issuer),
            subject="county-370402",
            role=Role.county_bureau,
            region_code="370402",
            now=datetime.now(UTC),
        )
        refused = await dashboard.get("/v1/me", headers=bearer(minted))
        assert refused.status_code == 401
        assert "HS256 tokens" in refused.json()["error"]["message"]
        # A token altered after signing is refused.
        head, body, signature = signed_in.access_token.split(".")
        forged_claims = jwt.utils.base64url_encode(
            jwt.utils.base64url_decode(body).replace(b'"370402"', b'"370403"')
        ).decode()
        forged = await dashboard.get("/v1/me", headers=bearer(f"{head}.{forged_claims}.{signature}"))
        assert forged.status_code == 401


async def test_an_advisor_signs_in_and_records_their_own_work_and_no_one_elses(
    identity: IdentityProfile, infrastructure: Infrastructure, topics: None
) -> None:
    settings = IntakeSettings(
        **infrastructure.kafka_settings("intake"),
        database_url=infrastructure.database_url,
        jwt_algorithm="RS256",
        jwt_jwks_url=identity.jwks_url,
        jwt_issuer=identity.issuer,
    )
    advisor = bearer(sign_in(identity, "demo-lawyer-01").access_token)
    fields = {k: v for k, v in example_fields("consultation.recorded").items() if k != "recorded_by"}
    app = create_intake(settings, ManualClock(INTAKE_NOW))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as intake,
    ):
        own = {**fields, "id": str(uuid.uuid4()), "advisor_id": "demo-lawyer-01", "village_code": VILLAGE}
        answer = await intake.post("/v1/consultations", json=own, headers=advisor)
        assert answer.status_code == 202, answer.text
        other = {**own, "id": str(uuid.uuid4()), "advisor_id": "demo-lawyer-02"}
        refused = await intake.post("/v1/consultations", json=other, headers=advisor)
        assert refused.status_code == 403, refused.text


@pytest.mark.parametrize(
    ("username", "password"), [("county-370402", "wrong-password"), ("nobody-0000", "demo-password")]
)
def test_a_wrong_password_or_unknown_user_gets_no_token(
    identity: IdentityProfile, username: str, password: str
) -> None:
    with pytest.raises(StackError, match="was refused"):
        sign_in(identity, username, password)


async def test_on_the_real_provider_a_new_key_works_at_once_and_a_withdrawn_one_stops(
    infrastructure: Infrastructure, topics: None
) -> None:
    scratch = IdentityProfile(f"identity-rotation-{uuid.uuid4().hex[:6]}", 17400, ("http://127.0.0.1:18003",))
    try:
        identity_up(scratch)
        identity_up(scratch)  # a second up reuses the running provider
        assert identity_running(scratch)
        old = sign_in(scratch, "prefecture-3704").access_token
        old_kid = jwt.get_unverified_header(old)["kid"]
        async with dashboard_trusting(
            scratch, infrastructure, jwt_jwks_cache_seconds=2, jwt_jwks_refetch_seconds=0
        ) as dashboard:
            assert (await dashboard.get("/v1/me", headers=bearer(old))).status_code == 200

            # Rotation: a new key first, the old one still published; the provider restarts.
            new_kid = rotate_keys(scratch)
            identity_down(scratch)
            identity_up(scratch)
            new = sign_in(scratch, "prefecture-3704").access_token
            assert jwt.get_unverified_header(new)["kid"] == new_kid
            assert (await dashboard.get("/v1/me", headers=bearer(new))).status_code == 200
            assert (await dashboard.get("/v1/me", headers=bearer(old))).status_code == 200

            # The old key is withdrawn: once the service's cache expires, its tokens are refused.
            drop_key(scratch, old_kid)
            identity_down(scratch)
            identity_up(scratch)
            refused = await eventually(
                lambda: dashboard.get("/v1/me", headers=bearer(old)),
                lambda answer: answer.status_code == 401,
                seconds=30,
                what="the withdrawn key's token refused",
            )
            assert f"no key with kid '{old_kid}'" in refused.json()["error"]["message"]
            assert (await dashboard.get("/v1/me", headers=bearer(new))).status_code == 200
    finally:
        identity_down(scratch)
        assert not identity_running(scratch)
        home = LOCAL / scratch.name
        if home.exists():
            shutil.rmtree(home)
