"""Bearer tokens (JWT): who is calling, with which role, for which region."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
from fastapi import Request

from contracts.events import COUNTRY_CODE, PrincipalRole, region_prefix
from plumbing.http import ApiError
from plumbing.settings import TokenSettings

# The roles tokens carry are the ones records travel with (contracts: `recorded_by_role`).
Role = PrincipalRole


# Registry and policy writes need county level or above (区县司法局 and up).
REGISTRY_ROLES = frozenset({Role.county_bureau, Role.prefecture_bureau, Role.province_department})
REGION_DIGITS = {
    Role.township_office: 9,
    Role.county_bureau: 6,
    Role.prefecture_bureau: 4,
    Role.province_department: 2,
    Role.ministry: len(COUNTRY_CODE),
}


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    region_code: str

    def covers(self, code: str) -> bool:
        """Whether a region or village code lies within the principal's region."""
        return code.startswith(self.prefix)

    @property
    def prefix(self) -> str:
        """What every code within the principal's region starts with ("" for the Ministry's country)."""
        return region_prefix(self.region_code)


class AuthenticationFailed(Exception):
    """401: the token is missing, malformed, expired or not signed by a key we trust."""


class KeysUnavailable(Exception):
    """503: the identity provider's keys could not be fetched, so no token can be checked right now."""


# The signature algorithms taken from an identity provider's JWKS: asymmetric only (never HS256, whose
# "key" would be public there).
JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})
DIGITS = re.compile(r"[0-9]+")  # not str.isdigit(): that also takes full-width and other Unicode digits


class JwksKeys:
    """The identity provider's signing keys from its JWKS URL, cached for `cache_seconds`, then fetched
    again (so a key removed from the JWKS stops working). A token with an unknown `kid` makes it fetch at
    once (a new key works at once), but at most once per `refetch_seconds`, so that made-up kids cannot
    turn every request into a fetch. Fetching is asynchronous (httpx) and shared by concurrent requests."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        refetch_seconds: float,
        timeout_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.refetch_seconds = refetch_seconds
        self.timeout_seconds = timeout_seconds
        self._monotonic = monotonic
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self._generation = 0  # fetches finished, so that requests waiting for one do not fetch again

    async def key(self, kid: str | None) -> jwt.PyJWK:
        if kid is None:
            raise AuthenticationFailed("the token has no `kid` header naming the key that signed it")
        now, generation = self._monotonic(), self._generation
        if self._fetched_at is None or now - self._fetched_at >= self.cache_seconds:
            await self._fetch(generation, expired=True)
        elif kid not in self._keys and (
            self._attempted_at is None or now - self._attempted_at >= self.refetch_seconds
        ):
            await self._fetch(generation, expired=False)
        found = self._keys.get(kid)
        if found is None:
            raise AuthenticationFailed(f"no key with kid {kid!r} in the identity provider's JWKS")
        return found

    async def _fetch(self, generation: int, *, expired: bool) -> None:
        async with self._lock:
            if self._generation != generation:
                return  # another request fetched while this one waited
            self._attempted_at = self._monotonic()
            try:
                async with httpx.AsyncClient(timeout=self.timeout_seconds) as client:
                    answer = await client.get(self.url, headers={"Accept": "application/json"})
                answer.raise_for_status()
                document = answer.json()
            except (httpx.HTTPError, ValueError) as error:
                if expired:
                    self._keys = {}
                    self._fetched_at = None
                raise KeysUnavailable(
                    f"the identity provider's keys could not be fetched from {self.url} "
                    f"({type(error).__name__})"
                ) from None
            finally:
                self._generation += 1
            self._keys = signing_keys(document)
            self._fetched_at = self._attempted_at


def signing_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable signature keys of a JWKS document by `kid` (others, e.g. encryption keys, are skipped)."""
    keys: dict[str, jwt.PyJWK] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or "kid" not in entry:
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in JWKS_ALGORITHMS:
            keys[str(entry["kid"])] = key
    return keys


def _verification_key(settings: TokenSettings, token: str) -> Any:
    if settings.jwt_algorithm == "HS256":
        return settings.jwt_secret
    if settings.jwt_jwks_file is not None:
        jwks = jwt.PyJWKSet.from_dict(json.loads(settings.jwt_jwks_file.read_text()))
        kid = jwt.get_unverified_header(token).get("kid")
        for key in jwks.keys:
            if key.key_id == kid:
                return key.key
        raise AuthenticationFailed(f"no key with kid {kid!r} in the configured JWKS")
    if settings.jwt_public_key_file is not None:
        return settings.jwt_public_key_file.read_text()
    raise AuthenticationFailed(
        f"{settings.jwt_algorithm} needs VC_JWT_JWKS_URL, VC_JWT_PUBLIC_KEY_FILE or VC_JWT_JWKS_FILE"
    )


def principal_from_token(token: str, settings: TokenSettings, key: jwt.PyJWK | None = None) -> Principal:
    """The caller a token names, verified with the given key (from the provider's JWKS), else with the
    configured secret or key file."""
    try:
        claims = jwt.decode(
            token,
            key.key if key is not None else _verification_key(settings, token),
            algorithms=[key.algorithm_name if key is not None else settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "iat", "role", "region"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("the token has expired; get a new one") from None
    except jwt.PyJWTError as error:
        raise AuthenticationFailed(f"the token is not valid: {error}") from None
    lifetime = int(claims["exp"]) - int(claims["iat"])
    if lifetime > settings.jwt_max_lifetime_seconds:
        raise AuthenticationFailed(
            f"the token's lifetime (exp - iat = {lifetime} s) exceeds the maximum of "
            f"{settings.jwt_max_lifetime_seconds} s; get a shorter-lived one"
        )
    try:
        role = Role(claims["role"])
    except ValueError:
        raise AuthenticationFailed(f"unknown role {claims['role']!r}") from None
    region = claims["region"]
    if not isinstance(region, str) or not DIGITS.fullmatch(region) or len(region) not in (2, 4, 6, 9, 12):
        if region != COUNTRY_CODE:
            raise AuthenticationFailed(
                "the region claim must be a string of 2, 4, 6, 9 or 12 ASCII digits (a division code), "
                f"or {COUNTRY_CODE} (the country)"
            )
    if region == COUNTRY_CODE and role is not Role.ministry:
        raise AuthenticationFailed(f"only a ministry token carries the country's code {COUNTRY_CODE}")
    expected = REGION_DIGITS.get(role)
    if expected is not None and len(region) != expected:
        raise AuthenticationFailed(f"a {role} token carries a {expected}-digit region code")
    return Principal(subject=str(claims["sub"]), role=role, region_code=region)


class TokenVerifier:
    """Checks bearer tokens: with a JWKS URL, tokens signed by the identity provider (RS256/ES256); the
    configured secret or key file otherwise, and in development HS256 tokens beside the provider's."""

    def __init__(self, settings: TokenSettings, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.jwks = (
            JwksKeys(
                settings.jwt_jwks_url,
                cache_seconds=settings.jwt_jwks_cache_seconds,
                refetch_seconds=settings.jwt_jwks_refetch_seconds,
                timeout_seconds=settings.jwt_jwks_timeout_seconds,
                monotonic=monotonic,
            )
            if settings.jwt_jwks_url is not None
            else None
        )

    async def principal(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(f"the token is not valid: {error}") from None
        if header.get("alg") == "HS256" and self.settings.jwt_algorithm != "HS256":
            raise AuthenticationFailed(
                "HS256 tokens (signed with a shared secret) are not accepted here; sign in through the "
                "identity provider"
            )
        if self.jwks is not None and header.get("alg") != "HS256":
            kid = header.get("kid")
            key = await self.jwks.key(kid if isinstance(kid, str) else None)
            return principal_from_token(token, self.settings, key)
        return principal_from_token(token, self.settings)


def mint_token(
    settings: TokenSettings,
    *,
    subject: str,
    role: Role,
    region_code: str,
    now: datetime,
    lifetime: timedelta = timedelta(hours=12),
    private_key: str | None = None,
) -> str:
    """A signed token for local use and tests (HS256 with the configured secret, or a given private key)."""
    claims = {
        "sub": subject,
        "role": str(role),
        "region": region_code,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    key = private_key if private_key is not None else settings.jwt_secret
    return jwt.encode(claims, key, algorithm=settings.jwt_algorithm)


def require_region(caller: Principal, code: str) -> None:
    """403 unless the code (a region or village) lies within the caller's region."""
    if not caller.covers(code):
        raise ApiError(403, "forbidden", f"{code} is outside the caller's region {caller.region_code}")


ROLE_FOR_DIGITS = {digits: role for role, digits in REGION_DIGITS.items()}


def open_principal(region_code: str) -> Principal:
    """Who a request without a token is in local mode: the department of the open region, reading."""
    return Principal(subject="local-mode", role=ROLE_FOR_DIGITS[len(region_code)], region_code=region_code)


def bearer_principal(
    settings: TokenSettings, open_region: str | None = None
) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller from `Authorization: Bearer <JWT>`, or 401 saying why. With an
    open region (local mode), a GET without the header reads that region; anything else needs a token."""

    verifier = TokenVerifier(settings)

    async def authenticated(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        if not header and open_region is not None and request.method in ("GET", "HEAD"):
            return open_principal(open_region)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "unauthenticated",
                "send `Authorization: Bearer <token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            return await verifier.principal(token.strip())
        except AuthenticationFailed as error:
            raise ApiError(
                401,
                "unauthenticated",
                str(error),
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None
        except KeysUnavailable as error:
            raise ApiError(
                503, "identity_provider_unavailable", str(error), headers={"Retry-After": "5"}
            ) from None

    return authenticated
