"""The assessment's settings (environment variables with the prefix VC_)."""

from __future__ import annotations

from pydantic import Field

from plumbing.settings import ProjectionSettings


class AssessmentSettings(ProjectionSettings):
    http_port: int = 8002
    close_interval_seconds: float = Field(
        default=300.0, gt=0, description="how often months are closed and alerts raised, from the clock"
    )
    close_chunk_pairs: int = Field(
        default=500,
        ge=1,
        description="(advisor, village) pairs the closer reads, decides and publishes at a time",
    )
