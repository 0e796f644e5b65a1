"""`python -m services.assessment [serve|rebuild]`."""

from __future__ import annotations

import sys

from plumbing.service import projection_main
from services.assessment.app import create_app
from services.assessment.projection import assessment_projection
from services.assessment.settings import AssessmentSettings

if __name__ == "__main__":
    settings = AssessmentSettings()
    sys.exit(
        projection_main("assessment", lambda: create_app(settings), assessment_projection, lambda: settings)
    )
