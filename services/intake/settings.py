"""Intake's settings (environment variables with the prefix VC_)."""

from __future__ import annotations

from pydantic import Field

from plumbing.settings import TokenSettings


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

    @property
    def default_policy_region_codes(self) -> list[str]:
        return [code.strip() for code in self.default_policy_regions.split(",") if code.strip()]
