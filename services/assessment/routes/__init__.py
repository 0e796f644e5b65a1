"""The assessment's routes, by area: `compliance` (where advisors stand, a region's month, alerts, the
policy) and `grades` (the year's grades, the year-end approval, the payout sheet)."""

from services.assessment.routes.compliance import router as compliance
from services.assessment.routes.grades import router as grades

ROUTERS = (grades, compliance)
