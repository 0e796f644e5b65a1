"""Intake's settings (environment variables with the prefix VC_)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

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
    producer_recreate_after_seconds: float = Field(
        default=10.0,
        ge=0,
        description="a producer is replaced for failures only once they have lasted this long (above the "
        "cluster's broker.session.timeout.ms, in which a dead leader is fenced and another leads)",
    )
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
    oidc_issuer: str | None = Field(
        default=None,
        description="the OpenID Connect provider the workbench (/workbench/) signs advisors in with",
    )
    oidc_client_id: str = Field(
        default="villagecounsel-dashboard",
        description="the workbench's client id at the provider (a public client: PKCE, no secret)",
    )
    assessment_public_url: str | None = Field(
        default=None,
        description="the assessment API as the browser reaches it: the workbench's 我的本月 panel (on-site "
        "hours against the requirement); its VC_CORS_ORIGINS must list intake's origin",
    )
    ledger_url: str | None = Field(
        default=None,
        description="the ledger API as the browser reaches it: the workbench shows the advisor's work log; "
        "its VC_CORS_ORIGINS must list intake's origin",
    )
    public_page_origins: list[str] = Field(
        default_factory=list,
        description="the dashboard's origin(s) as residents' browsers reach it: its public notices post "
        'ratings to POST /v1/public/ratings (CORS on that path only), e.g. ["https://vc.example.gov.cn"]',
    )
    rating_burst: int = Field(
        default=20,
        ge=1,
        description="ratings one client address may send at once (a village's shared network)",
    )
    ratings_per_minute: float = Field(
        default=20, gt=0, description="and then per minute: beyond that 429 with Retry-After"
    )
    open_region: str | None = Field(
        default=None,
        pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9})$",
        description="local mode, development only: the workbench offers a development sign-in for the demo "
        "advisors (demo-lawyer-NN) within this region",
    )

    @property
    def default_policy_region_codes(self) -> list[str]:
        return [code.strip() for code in self.default_policy_regions.split(",") if code.strip()]

    @field_validator("open_region", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _real_master_key_outside_development(self) -> IntakeSettings:
        refuse_development_master_key(self.environment, self.personal_master_key)
        if self.open_region is not None and self.environment != "development":
            raise ValueError("VC_OPEN_REGION (the demo advisors' sign-in) is for local development only")
        return self
