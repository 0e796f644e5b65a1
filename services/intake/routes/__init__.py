"""Intake's routes, by area: `records` (one POST per kind, and the batch), `erasures`, `imports` (history
from old ledgers), `workbench` (the advisor's offline web app at /workbench/) and `ratings`
(residents' ratings from the public notices); `common` holds what
they share."""

from services.intake.routes.erasures import router as erasures
from services.intake.routes.imports import router as imports
from services.intake.routes.ratings import router as ratings
from services.intake.routes.records import router as records
from services.intake.routes.workbench import router as workbench

ROUTERS = (records, erasures, imports, workbench, ratings)
