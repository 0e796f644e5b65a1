"""Residents' ratings (群众评价) from a village's public notice: `POST /v1/public/ratings`, no login. The
dashboard's page posts here (CORS for its origin on this path only, VC_PUBLIC_PAGE_ORIGINS). Refused: a
client beyond its rate (429, Retry-After), a rating that does not fit (422, field and rule), a second one
from the device for the advisor that day (409). The comment is sealed like any personal free text."""

import math
import time
from typing import Any

from fastapi import APIRouter, Request

from contracts.envelope import FieldError, to_kafka_record
from plumbing.http import ApiError, OrjsonResponse
from plumbing.personal import PersonalDataErased
from plumbing.routing import AppClock
from services.intake import metrics
from services.intake.publisher import NotStored
from services.intake.ratings import rating_day, rating_event
from services.intake.routes.common import (
    KEYSTORE_DOWN,
    MAY_NOT_BE_STORED,
    SOURCE,
    Admitted,
    Parts,
    accepted,
    erased_refusal,
    log_rejection,
    read_json_body,
)
from services.intake.rules import RecordRejected
from services.intake.sealing import KeystoreUnavailable

router = APIRouter()

KIND = "public_rating"
MAX_BODY_BYTES = 4096
RATINGS_PATH = "/v1/public/ratings"


@router.post(
    RATINGS_PATH,
    status_code=202,
    tags=["public"],
    summary="A resident rates a village's advisor (1-5, an optional comment), no login",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["device_id", "advisor_id", "village_code", "score"],
                        "additionalProperties": False,
                        "properties": {
                            "device_id": {"type": "string", "format": "uuid"},
                            "advisor_id": {"type": "string", "maxLength": 64},
                            "village_code": {"type": "string", "pattern": "^[0-9]{12}$"},
                            "score": {"type": "integer", "minimum": 1, "maximum": 5},
                            "comment": {"type": "string", "maxLength": 300},
                        },
                    }
                }
            },
        }
    },
)
async def rate(request: Request, parts: Parts, clock: AppClock, _admitted: Admitted) -> OrjsonResponse:
    client = request.client.host if request.client else "unknown"
    wait = parts.rating_buckets.take(client, time.monotonic())
    if wait is not None:
        metrics.RECORDS.labels(KIND, "rejected", "rate_limited").inc()
        raise ApiError(
            429,
            "rate_limited",
            "too many ratings from this network; try again later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    body: Any = await read_json_body(request, MAX_BODY_BYTES)
    now = clock.now()
    try:
        event = rating_event(body, now, SOURCE)
    except RecordRejected as rejection:
        log_rejection(KIND, None, rejection)
        raise ApiError(rejection.status, rejection.code, rejection.message, rejection.errors) from None
    try:
        if await parts.keystore.rating_taken(event.id):
            metrics.RECORDS.labels(KIND, "rejected", "one_rating_per_day").inc()
            raise ApiError(
                409,
                "already_rated",
                "this device has rated this advisor today",
                [FieldError("device_id", "one_rating_per_day", "one rating per device per advisor per day")],
            )
        [event] = await parts.keystore.seal([event])
    except PersonalDataErased:
        raise ApiError(410, "personal_data_erased", *erased_refusal(event.id)) from None
    except KeystoreUnavailable:
        raise ApiError(
            503, "keystore_unavailable", KEYSTORE_DOWN, headers=parts.unavailable_headers
        ) from None
    [result] = await parts.publisher.publish_all([to_kafka_record(event)])
    if isinstance(result, NotStored):
        metrics.RECORDS.labels(KIND, "unavailable", result.reason).inc()
        raise ApiError(503, "kafka_unavailable", MAY_NOT_BE_STORED, headers=parts.unavailable_headers)
    await parts.keystore.note_rating(event.id, rating_day(now))
    answer = accepted(KIND, event, result)
    return OrjsonResponse({"id": answer["id"], "status": answer["status"]}, status_code=202)
