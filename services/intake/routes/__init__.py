"""Intake's routes, by area: `records` (one POST per kind, and the batch), `erasures`, `imports` (history
from old ledgers) and `workbench` (the advisor's offline web app at /workbench/); `common` holds what
they share."""

from services.intake.routes.erasures import router as erasures
from services.intake.routes.imports import router as imports
from services.intake.routes.records import router as records
from services.intake.routes.workbench import router as workbench

ROUTERS = (records, erasures, imports, workbench)
