"""Settings from environment variables with the prefix `VC_` (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL as-is)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_KAFKA = "127.0.0.1:29092"
LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:25432/villagecounsel"


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


class ProjectionSettings(ServiceSettings):
    """Settings of a service that runs a projection."""

    batch_max_records: int = Field(default=2000, ge=1)
    poll_timeout_ms: int = Field(default=500, ge=1)
    stall_after_seconds: float = Field(default=120.0, gt=0)
    failpoints: str = Field(default="", description="test-only crash points, e.g. 'after_db_commit=3'")
