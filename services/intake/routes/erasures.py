"""Intake's erasures: `POST /v1/erasures` destroys a record's key (county bureau and up, within the region)
and publishes `personal.erased`."""

from fastapi import APIRouter, Request
from pydantic import ValidationError

from contracts.envelope import FieldError, field_errors, to_kafka_record
from plumbing.auth import REGISTRY_ROLES, require_region
from plumbing.http import ApiError, OrjsonResponse
from plumbing.routing import AppClock, Caller
from services.intake.publisher import NotStored
from services.intake.routes.common import KEYSTORE_DOWN, SOURCE, Admitted, Parts, log, read_json_body
from services.intake.sealing import ErasureRequest, KeystoreUnavailable, erasure_event

router = APIRouter()


async def erase_personal(
    request: Request, caller: Caller, _admitted: Admitted, parts: Parts, clock: AppClock
) -> OrjsonResponse:
    body = await read_json_body(request, parts.settings.max_body_bytes)
    try:
        wanted = ErasureRequest.model_validate(body)
    except ValidationError as error:
        raise ApiError(
            422, "validation_failed", "an erasure names its record", field_errors(error, "")
        ) from None
    if caller.role not in REGISTRY_ROLES:
        raise ApiError(
            403,
            "forbidden",
            "erasing personal data needs a county bureau or above",
            [FieldError("role", "county_level_or_above", f"not {caller.role}")],
        )
    require_region(caller, wanted.village_code)
    try:
        village = await parts.keystore.key_village(wanted.target_event_id)
        if village is not None and village != wanted.village_code:
            raise ApiError(
                422,
                "validation_failed",
                "the record is not of that village",
                [
                    FieldError(
                        "village_code", "record_village", "the village of the record", wanted.village_code
                    )
                ],
            )
        erasure = await parts.keystore.erase(
            wanted.target_event_id, wanted.village_code, caller.subject, wanted.reason, clock.now()
        )
    except KeystoreUnavailable:
        raise ApiError(
            503, "keystore_unavailable", KEYSTORE_DOWN, headers=parts.unavailable_headers
        ) from None
    if erasure.village_code is not None and not caller.covers(erasure.village_code):
        raise ApiError(403, "forbidden", f"the record is outside the caller's region {caller.region_code}")
    event = erasure_event(erasure, wanted.village_code, SOURCE)
    [result] = await parts.publisher.publish_all([to_kafka_record(event)])
    if isinstance(result, NotStored):
        log.warning("erasure_not_published", event_id=str(event.id), error=result.reason)
        raise ApiError(
            503,
            "kafka_unavailable",
            "the key is destroyed but the erasure may not have been published; send it again",
            headers=parts.unavailable_headers,
        )
    log.info("personal_data_erased", event_id=str(event.id), target_event_id=str(erasure.key_id))
    return OrjsonResponse(
        {
            "id": str(event.id),
            "kind": "erasure",
            "status": "accepted",
            "target_event_id": str(erasure.key_id),
            "erased_at": erasure.erased_at.isoformat(),
            "erased_by": erasure.erased_by,
            "key_destroyed": True,
            "topic": event.topic,
            "partition": result.partition,
            "offset": result.offset,
        },
        status_code=202,
    )


router.add_api_route(
    "/v1/erasures",
    erase_personal,
    methods=["POST"],
    status_code=202,
    summary="Erase a record's personal data (PIPL Art. 47): its key is destroyed, every copy unreadable",
    tags=["records"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErasureRequest"}}},
        },
        "security": [{"bearer": []}],
    },
)
