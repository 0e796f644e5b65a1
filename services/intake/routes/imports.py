"""Intake's history import: `POST /v1/imports` takes a ledger file in the ledger's export layout (county
bureau and up), checks every row, and publishes all of it or nothing."""

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request

from contracts.envelope import FieldError
from plumbing.http import ApiError, OrjsonResponse
from plumbing.routing import AppClock, Caller
from services.intake.imports import FileFormat, detect_format, import_refusal
from services.intake.routes.common import KEYSTORE_DOWN, Admitted, Parts, import_answer
from services.intake.sealing import KeystoreUnavailable

router = APIRouter()


async def import_history(
    request: Request,
    caller: Caller,
    parts: Parts,
    clock: AppClock,
    _admitted: Admitted,
    dry_run: Annotated[
        bool, Query(description="check every row and list every error; nothing is published")
    ] = False,
    file_format: Annotated[
        FileFormat | None,
        Query(alias="format", description="csv or xlsx; by default told from the body"),
    ] = None,
) -> OrjsonResponse:
    refusal = import_refusal(caller)
    if refusal is not None:
        raise ApiError(403, "forbidden", refusal.message, [FieldError("role", refusal.rule, refusal.message)])
    limit = parts.settings.import_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"the file exceeds {limit} bytes; split it by village")
    with tempfile.TemporaryDirectory(prefix="vc-import-") as folder:
        path = Path(folder) / "ledger"
        size = 0
        with path.open("wb") as body:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        413, "body_too_large", f"the file exceeds {limit} bytes; split it by village"
                    )
                body.write(chunk)
        if size == 0:
            raise ApiError(
                422,
                "validation_failed",
                "the body is the ledger file (CSV or .xlsx)",
                [FieldError("body", "required", "a ledger file in the layout the ledger exports")],
            )
        with path.open("rb") as body:
            chosen = file_format or detect_format(body.read(4))
        try:
            outcome = await parts.importer.run(
                lambda: path.open("rb"), chosen, caller, clock.now(), parts.limits.clock_skew, dry_run=dry_run
            )
        except KeystoreUnavailable:
            raise ApiError(
                503, "keystore_unavailable", KEYSTORE_DOWN, headers=parts.unavailable_headers
            ) from None
    return import_answer(outcome, request, parts.unavailable_headers)


router.add_api_route(
    "/v1/imports",
    import_history,
    methods=["POST"],
    summary="Import history (old ledgers) in the ledger's export layout: county bureau or above",
    tags=["records"],
    openapi_extra={
        "description": "The body is a ledger file as the ledger exports it (CSV or .xlsx). Every row is "
        "checked first: with any error nothing is published and every row's errors are listed (422, "
        "or 403 for rows outside the caller's region); `dry_run=true` only checks. Rows keep their "
        "ids, recorders and recorded times and are marked `imported`; the age limit does not apply.",
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        },
        "security": [{"bearer": []}],
    },
)
