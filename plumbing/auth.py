"""Bearer tokens (JWT): who is calling, with which role, for which region."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from fastapi import Request

from contracts.events import PrincipalRole
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
}


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    region_code: str

    def covers(self, code: str) -> bool:
        """Whether a region or village code lies within the principal's region."""
        return code.startswith(self.region_code)


class AuthenticationFailed(Exception):
    """401: the token is missing, malformed, expired or not signed by a key we trust."""


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
    raise AuthenticationFailed(f"{settings.jwt_algorithm} needs VC_JWT_PUBLIC_KEY_FILE or VC_JWT_JWKS_FILE")


def principal_from_token(token: str, settings: TokenSettings) -> Principal:
    try:
        claims = jwt.decode(
            token,
            _verification_key(settings, token),
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "role", "region"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("the token has expired; get a new one") from None
    except jwt.PyJWTError as error:
        raise AuthenticationFailed(f"the token is not valid: {error}") from None
    try:
        role = Role(claims["role"])
    except ValueError:
        raise AuthenticationFailed(f"unknown role {claims['role']!r}") from None
    region = str(claims["region"])
    if not region.isdigit() or len(region) not in (2, 4, 6, 9, 12):
        raise AuthenticationFailed("the region claim must be a 2, 4, 6, 9 or 12-digit division code")
    expected = REGION_DIGITS.get(role)
    if expected is not None and len(region) != expected:
        raise AuthenticationFailed(f"a {role} token carries a {expected}-digit region code")
    return Principal(subject=str(claims["sub"]), role=role, region_code=region)


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
            return principal_from_token(token.strip(), settings)
        except AuthenticationFailed as error:
            raise ApiError(
                401,
                "unauthenticated",
                str(error),
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None

    return authenticated
