"""Settings from environment variables with the prefix `VC_` (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL as-is)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_KAFKA = "127.0.0.1:29092"
LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:25432/villagecounsel"
DEVELOPMENT_SECRET = "villagecounsel-development-only-secret-change-me"  # noqa: S105 - refused outside development


class ServiceSettings(BaseSettings):
    """What every service reads; each service subclasses it once with its own fields."""

    model_config = SettingsConfigDict(env_prefix="VC_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        default=LOCAL_KAFKA,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "VC_KAFKA_BOOTSTRAP_SERVERS"),
    )
    database_url: str = Field(
        default=LOCAL_DATABASE, validation_alias=AliasChoices("DATABASE_URL", "VC_DATABASE_URL")
    )
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    kafka_timeout_seconds: float = Field(default=10.0, gt=0)
    database_pool_max: int = Field(default=10, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1, description="3 on a production cluster")


class TokenSettings(ServiceSettings):
    """Verifying bearer tokens (JWT): HS256 with a shared secret, or RS256/ES256 with a key or a JWKS."""

    environment: Literal["development", "production"] = "development"
    jwt_algorithm: Literal["HS256", "RS256", "ES256"] = "HS256"
    jwt_secret: str = Field(default=DEVELOPMENT_SECRET, description="HS256 signing key")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM public key for RS256/ES256")
    jwt_jwks_file: Path | None = Field(default=None, description="a JWKS document; keys chosen by `kid`")
    jwt_issuer: str = "villagecounsel"
    jwt_audience: str = "villagecounsel"

    @model_validator(mode="after")
    def _no_default_secret_outside_development(self) -> TokenSettings:
        if (
            self.environment != "development"
            and self.jwt_algorithm == "HS256"
            and self.jwt_secret == DEVELOPMENT_SECRET
        ):
            raise ValueError("VC_JWT_SECRET must be set to a real secret outside development")
        return self


class ProjectionSettings(TokenSettings):
    """Settings of a service that runs a projection."""

    batch_max_records: int = Field(default=2000, ge=1)
    rebuild_batch_max_records: int = Field(
        default=10_000,
        ge=1,
        description="a rebuild's batches: larger ones sum more rows before writing (bench/README.md)",
    )
    rebuild_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="processes a rebuild splits the partitions among (`rebuild --workers`)",
    )
    poll_timeout_ms: int = Field(default=500, ge=1)
    stall_after_seconds: float = Field(default=120.0, gt=0)
    failpoints: str = Field(default="", description="test-only crash points, e.g. 'after_db_commit=3'")
    open_region: str | None = Field(
        default=None,
        pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9})$",
        description="local mode, development only: a request without a token reads this region "
        "(e.g. 37) as its department would; requests with a token are checked as always",
    )

    @field_validator("open_region", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`VC_OPEN_REGION=` (set but empty) requires tokens, as the README says; it is not a bad code."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _open_reads_only_in_development(self) -> ProjectionSettings:
        if self.open_region is not None and self.environment != "development":
            raise ValueError("VC_OPEN_REGION (reading without a token) is for local development only")
        return self
