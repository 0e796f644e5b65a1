"""Intake's routes, by area: `records` (one POST per kind, and the batch), `erasures` and `imports`
(history from old ledgers); `common` holds what they share."""

from services.intake.routes.erasures import router as erasures
from services.intake.routes.imports import router as imports
from services.intake.routes.records import router as records

ROUTERS = (records, erasures, imports)
