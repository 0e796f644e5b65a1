"""Key rotation against a JWKS served over real HTTP (a small server in the test, standing in for the
identity provider's `jwks_uri`): a new key works at once, a removed key stops working when the cache
expires, unknown kids cannot force a fetch per request, and an unreachable provider is a 503."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI

from plumbing.auth import (
    AuthenticationFailed,
    KeysUnavailable,
    Principal,
    Role,
    TokenVerifier,
    bearer_principal,
)
from plumbing.http import install_common
from plumbing.settings import TokenSettings

ISSUER = "http://127.0.0.1/identity-under-test"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """Serves whatever JWKS document the test sets, and counts the fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.fetches += 1
                body = json.dumps(served.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    served = JwksServer()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()
        thread.join()


class SigningKey:
    def __init__(self, kid: str, algorithm: str = "RS256") -> None:
        self.kid = kid
        self.algorithm = algorithm
        if algorithm == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        self.public = {**public, "kid": kid, "use": "sig", "alg": algorithm}

    def token(self, subject: str = "county-370402", kid: str | None = None) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": subject,
            "role": "county_bureau",
            "region": "370402",
            "iss": ISSUER,
            "aud": "villagecounsel",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=10)).timestamp()),
        }
        return jwt.encode(claims, self.private, self.algorithm, headers={"kid": kid or self.kid})


def settings_for(jwks: JwksServer, **changes: Any) -> TokenSettings:
    fields: dict[str, Any] = {
        "jwt_algorithm": "RS256",
        "jwt_jwks_url": jwks.url,
        "jwt_issuer": ISSUER,
        "jwt_jwks_cache_seconds": 300,
        "jwt_jwks_refetch_seconds": 10,
        **changes,
    }
    return TokenSettings(**fields)


COUNTY = Principal("county-370402", Role.county_bureau, "370402")


async def test_a_new_key_works_at_once_and_a_removed_key_stops_when_the_cache_expires(
    jwks: JwksServer,
) -> None:
    old, new = SigningKey("2026-old"), SigningKey("2026-new", "ES256")
    jwks.document = {"keys": [old.public]}
    clock = FakeClock()
    verifier = TokenVerifier(settings_for(jwks), monotonic=clock)

    assert await verifier.principal(old.token()) == COUNTY
    assert await verifier.principal(old.token()) == COUNTY
    assert jwks.fetches == 1, "keys are cached"

    # The provider publishes a new key and signs with it: the unknown kid is fetched at once.
    clock.now += 11
    jwks.document = {"keys": [new.public, old.public]}
    assert await verifier.principal(new.token()) == COUNTY
    assert jwks.fetches == 2

    # The old key is withdrawn: it is trusted until the cache expires, then refused.
    jwks.document = {"keys": [new.public]}
    clock.now += 200
    assert await verifier.principal(old.token()) == COUNTY
    assert jwks.fetches == 2
    clock.now += 100
    with pytest.raises(AuthenticationFailed, match="no key with kid '2026-old'"):
        await verifier.principal(old.token())
    assert jwks.fetches == 3
    assert await verifier.principal(new.token()) == COUNTY


async def test_unknown_kids_fetch_at_most_once_per_interval(jwks: JwksServer) -> None:
    key = SigningKey("k1")
    jwks.document = {"keys": [key.public]}
    clock = FakeClock()
    verifier = TokenVerifier(settings_for(jwks), monotonic=clock)
    assert await verifier.principal(key.token()) == COUNTY
    clock.now += 11
    for number in range(20):
        with pytest.raises(AuthenticationFailed, match="no key with kid"):
            await verifier.principal(key.token(kid=f"made-up-{number}"))
    assert jwks.fetches == 2, "one fetch for the first unknown kid, none for the rest within the interval"
    clock.now += 11
    with pytest.raises(AuthenticationFailed, match="no key with kid"):
        await verifier.principal(key.token(kid="made-up-later"))
    assert jwks.fetches == 3


async def test_concurrent_requests_share_one_fetch(jwks: JwksServer) -> None:
    key = SigningKey("k1")
    jwks.document = {"keys": [key.public]}
    verifier = TokenVerifier(settings_for(jwks))
    found = await asyncio.gather(*(verifier.principal(key.token()) for _ in range(20)))
    assert found == [COUNTY] * 20
    assert jwks.fetches == 1


async def test_a_jwks_takes_no_hmac_token(jwks: JwksServer) -> None:
    key = SigningKey("k1")
    jwks.document = {"keys": [key.public]}
    verifier = TokenVerifier(settings_for(jwks))
    claims = jwt.decode(key.token(), options={"verify_signature": False})
    hmac = jwt.encode(claims, "villagecounsel-development-only-secret-change-me", "HS256", {"kid": "k1"})
    with pytest.raises(AuthenticationFailed, match="HS256 tokens"):
        await verifier.principal(hmac)


async def test_an_unreachable_provider_is_a_503_not_a_401() -> None:
    settings = TokenSettings(jwt_algorithm="RS256", jwt_jwks_url="http://127.0.0.1:9/jwks", jwt_issuer=ISSUER)
    with pytest.raises(KeysUnavailable, match="could not be fetched"):
        await TokenVerifier(settings).principal(SigningKey("k1").token())

    app = FastAPI()
    install_common(app, "test", readiness)

    caller_of = bearer_principal(settings)

    @app.get("/v1/me")
    async def me(caller: Principal = Depends(caller_of)) -> dict[str, str]:
        return {"subject": caller.subject}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/v1/me", headers={"Authorization": f"Bearer {SigningKey('k1').token()}"})
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "identity_provider_unavailable"
    assert answer.headers["retry-after"] == "5"


async def readiness() -> dict[str, bool]:
    return {}
