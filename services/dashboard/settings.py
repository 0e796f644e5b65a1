"""The dashboard's settings (environment variables with the prefix VC_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from plumbing.settings import ProjectionSettings

WEB = Path(__file__).resolve().parent / "web"


class DashboardSettings(ProjectionSettings):
    http_port: int = 8003
    ledger_url: str = Field(
        default="http://127.0.0.1:8001",
        description="the ledger API as the browser reaches it: the page links a village to its ledger there "
        "(the dashboard itself never calls it: services share only events)",
    )
    assessment_public_url: str = Field(
        default="http://127.0.0.1:8002",
        description="the assessment API as the browser reaches it: the page's year-end approval buttons "
        "(county: submit; prefecture: accept or return) call it with the signed-in official's token",
    )
    intake_public_url: str | None = Field(
        default=None,
        description="intake as residents' browsers reach it: the public notice's rating form posts to its "
        "/v1/public/ratings (intake's VC_PUBLIC_PAGE_ORIGINS must list this dashboard's origin); unset, the "
        "notice has no rating form",
    )
    public_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="the dashboard's address as residents reach it (e.g. https://fw.example.gov.cn): the "
        "printed notice's QR code opens {this}/public/villages/{code}; unset, the address the request "
        "came to",
    )
    oidc_issuer: str | None = Field(
        default=None,
        description="the OpenID Connect provider the web page signs officials in with (its issuer URL); "
        "without it the page can only be used in local mode (VC_OPEN_REGION)",
    )
    oidc_client_id: str = Field(
        default="villagecounsel-dashboard",
        description="the page's client id at the provider (a public client: PKCE, no secret)",
    )
    echarts_file: Path = Field(
        default=WEB / "node_modules" / "echarts" / "dist" / "echarts.min.js",
        description="Apache ECharts from the npm registry (bin/setup: npm ci in services/dashboard/web)",
    )
