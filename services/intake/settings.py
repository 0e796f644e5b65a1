"""Intake's settings (environment variables with the prefix VC_)."""

from __future__ import annotations

from pydantic import Field, model_validator

from plumbing.personal import DEVELOPMENT_MASTER_KEY
from plumbing.settings import PersonalMasterKey, TokenSettings, refuse_development_master_key


class IntakeSettings(TokenSettings):
    http_port: int = 8000
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
    retry_after_seconds: int = Field(default=5, ge=1)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    batch_max_records: int = Field(default=1000, ge=1, le=10_000)
    max_in_flight_requests: int = Field(default=256, ge=1)
    max_record_age_days: int = Field(default=400, ge=1)
    clock_skew_seconds: int = Field(default=300, ge=0)
    producer_recreate_after_failures: int = Field(default=3, ge=1)
    default_policy_regions: str = Field(
        default="37",
        description="comma-separated province codes given the default (Zaozhuang) policy at start-up",
    )
    import_max_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        description="the largest ledger file POST /v1/imports takes (a province-year CSV is ~100 MB)",
    )
    import_batch_records: int = Field(default=5000, ge=1, le=50_000, description="records per publish")
    personal_master_key: PersonalMasterKey = DEVELOPMENT_MASTER_KEY
    keystore_timeout_seconds: float = Field(default=5.0, gt=0)

    @property
    def default_policy_region_codes(self) -> list[str]:
        return [code.strip() for code in self.default_policy_regions.split(",") if code.strip()]

    @model_validator(mode="after")
    def _real_master_key_outside_development(self) -> IntakeSettings:
        refuse_development_master_key(self.environment, self.personal_master_key)
        return self
