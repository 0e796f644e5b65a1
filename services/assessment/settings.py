"""The assessment's settings (environment variables with the prefix VC_)."""

from __future__ import annotations

from pydantic import Field

from plumbing.settings import ProjectionSettings


class AssessmentSettings(ProjectionSettings):
    http_port: int = 8002
    close_interval_seconds: float = Field(
        default=300.0, gt=0, description="how often months are closed and alerts raised, from the clock"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="web origins allowed to call this API from a browser (the dashboard's page, for the "
        'year-end approval buttons), e.g. ["https://vc.example.gov.cn"]',
    )
    close_chunk_pairs: int = Field(
        default=500,
        ge=1,
        description="(advisor, village) pairs the closer reads, decides and publishes at a time",
    )
