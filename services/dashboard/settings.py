"""The dashboard's settings (environment variables with the prefix VC_)."""

from __future__ import annotations

from plumbing.settings import ProjectionSettings


class DashboardSettings(ProjectionSettings):
    http_port: int = 8003
