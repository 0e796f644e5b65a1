"""`python -m services.dashboard [serve|rebuild]` (regions: `python -m services.dashboard.regions`)."""

from __future__ import annotations

import sys

from plumbing.service import projection_main
from services.dashboard.app import create_app
from services.dashboard.projection import dashboard_projection
from services.dashboard.settings import DashboardSettings

if __name__ == "__main__":
    settings = DashboardSettings()
    sys.exit(
        projection_main("dashboard", lambda: create_app(settings), dashboard_projection, lambda: settings)
    )
