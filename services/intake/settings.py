"""Intake's settings (environment variables with the prefix VC_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from plumbing.settings import ServiceSettings

DEVELOPMENT_SECRET = "villagecounsel-development-only-secret-change-me"  # noqa: S105 - refused outside development


class IntakeSettings(ServiceSettings):
    environment: Literal["development", "production"] = "development"
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    jwt_secret: str = Field(default=DEVELOPMENT_SECRET, description="HS256 signing key")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM public key for RS256/ES256")
    jwt_jwks_file: Path | None = Field(default=None, description="a JWKS document; keys chosen by `kid`")
    jwt_issuer: str = "villagecounsel"
    jwt_audience: str = "villagecounsel-intake"
    http_port: int = 8000
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
    retry_after_seconds: int = Field(default=5, ge=1)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    batch_max_records: int = Field(default=1000, ge=1, le=10_000)
    max_in_flight_requests: int = Field(default=256, ge=1)
    max_record_age_days: int = Field(default=400, ge=1)
    clock_skew_seconds: int = Field(default=300, ge=0)
    producer_recreate_after_failures: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _no_default_secret_outside_development(self) -> IntakeSettings:
        if (
            self.environment != "development"
            and self.jwt_algorithm == "HS256"
            and self.jwt_secret == DEVELOPMENT_SECRET
        ):
            raise ValueError("VC_JWT_SECRET must be set to a real secret outside development")
        return self
