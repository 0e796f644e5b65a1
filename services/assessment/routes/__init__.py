"""The assessment's routes, by area: `compliance` (where advisors stand, a region's month, alerts, the
policy), `grades` (the year's grades, the year-end approval, the payout sheet) and `teams` (a region's
teams, their members, month and year)."""

from services.assessment.routes.compliance import router as compliance
from services.assessment.routes.grades import router as grades
from services.assessment.routes.teams import router as teams

ROUTERS = (grades, compliance, teams)
