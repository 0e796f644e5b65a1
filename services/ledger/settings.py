"""The ledger's settings (environment variables with the prefix VC_)."""

from __future__ import annotations

from pydantic import Field, model_validator

from plumbing.personal import DEVELOPMENT_MASTER_KEY
from plumbing.settings import PersonalMasterKey, ProjectionSettings, refuse_development_master_key

DEVELOPMENT_DIGEST_KEY = "villagecounsel-development-digest-key"


class LedgerSettings(ProjectionSettings):
    http_port: int = 8001
    personal_digest_key: str = Field(
        default=DEVELOPMENT_DIGEST_KEY,
        description="keys the salted digests of personal data in the hash chain; keep it secret and stable",
    )
    export_max_rows: int = Field(default=2_000_000, ge=1)
    personal_master_key: PersonalMasterKey = DEVELOPMENT_MASTER_KEY
    cors_origins: list[str] = Field(
        default_factory=list,
        description="web origins allowed to call this API from a browser (the advisors' workbench, for their "
        'work log), e.g. ["https://vc.example.gov.cn"]',
    )

    @model_validator(mode="after")
    def _no_default_key_outside_development(self) -> LedgerSettings:
        if self.environment != "development" and self.personal_digest_key == DEVELOPMENT_DIGEST_KEY:
            raise ValueError("VC_PERSONAL_DIGEST_KEY must be set outside development")
        refuse_development_master_key(self.environment, self.personal_master_key)
        return self
