"""What intake's routes share: the parts `create_app` builds (publisher, key store, limits, settings, the
importer) as one typed dependency, admission control, reading a JSON body within its limit, and the
answers and refusals every kind of record gets."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from contracts.envelope import Event, FieldError, moment_text
from contracts.events import AdvisorRegistered, TeamRegistered
from plumbing.http import ApiError, OrjsonResponse, error_body, require_json_body
from plumbing.logs import get_logger
from plumbing.personal import PersonalDataErased, plain_personal
from services.intake import metrics
from services.intake.backfill import ImportOutcome, ImportRun
from services.intake.publisher import Publisher, Stored
from services.intake.ratings import ClientBuckets
from services.intake.rules import Limits, RecordRejected
from services.intake.sealing import Keystore, KeystoreUnavailable
from services.intake.settings import IntakeSettings

log = get_logger("services.intake.app")


@dataclass(frozen=True)
class IntakeParts:
    """What intake's routes work with, built once by `create_app`."""

    settings: IntakeSettings
    publisher: Publisher
    keystore: Keystore
    limits: Limits
    importer: ImportRun
    unavailable_headers: dict[str, str]
    rating_buckets: ClientBuckets


def _parts(request: Request) -> IntakeParts:
    parts: IntakeParts = request.app.state.parts
    return parts


async def _admitted(request: Request) -> AsyncIterator[None]:
    admission: Admission = request.app.state.admission
    admission.enter()
    try:
        yield
    finally:
        admission.leave()


Parts = Annotated[IntakeParts, Depends(_parts)]
# 429 with Retry-After beyond the number of requests in flight intake takes (no unbounded queue).
Admitted = Annotated[None, Depends(_admitted)]


SOURCE = "/villagecounsel/intake"


class Admission:
    """Refuses work (429) beyond a fixed number of requests in flight instead of queueing without bound."""

    def __init__(self, limit: int, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0

    def enter(self) -> None:
        if self.in_flight >= self.limit:
            raise ApiError(
                429,
                "overloaded",
                "too many requests in flight; retry later with the same ids",
                headers={"Retry-After": str(self.retry_after)},
            )
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1


async def read_json_body(request: Request, max_bytes: int) -> Any:
    require_json_body(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "body_too_large", f"the body exceeds {max_bytes} bytes; send smaller batches")
    received = bytearray()
    async for chunk in request.stream():
        received.extend(chunk)
        if len(received) > max_bytes:
            raise ApiError(413, "body_too_large", f"the body exceeds {max_bytes} bytes; send smaller batches")
    try:
        return orjson.loads(received)
    except orjson.JSONDecodeError:
        raise ApiError(
            422,
            "validation_failed",
            "the body is not JSON",
            [FieldError("body", "json_invalid", "the body must be a JSON document")],
        ) from None


def log_rejection(kind: str, body: Any, rejection: RecordRejected) -> None:
    event_id = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None
    rules = sorted({f"{error.field}:{error.rule}" for error in rejection.errors})
    log.info("record_rejected", event_id=event_id, kind=kind, status=rejection.status, rules=rules)
    for rule in {error.rule for error in rejection.errors}:
        metrics.RECORDS.labels(kind, "rejected", rule).inc()


# Kafka may have stored a record whose acknowledgement did not arrive in time: never say "not stored".
MAY_NOT_BE_STORED = (
    "Kafka did not confirm the record in time: it may not have been stored; retry with the same id"
)
KEYSTORE_DOWN = (
    "the key store for personal data did not answer; the record may not have been stored; "
    "retry with the same id"
)


def erased_refusal(event_id: Any) -> tuple[str, list[FieldError]]:
    return (
        "this record's personal data was erased; it cannot be sent again",
        [FieldError("id", "personal_data_erased", "erased records stay erased", str(event_id))],
    )


async def ownership_refusal(keystore: Keystore, event: Event) -> RecordRejected | None:
    """A registration of an advisor that another region owns is not the caller's to write (403)."""
    data = event.data
    if isinstance(data, AdvisorRegistered):
        field, subject, value = "advisor_id", "the advisor", data.advisor_id
        owner = await keystore.advisor_owner(data.advisor_id)
    elif isinstance(data, TeamRegistered):
        field, subject, value = "team_id", "the team", data.team_id
        owner = await keystore.team_owner(data.team_id)
    else:
        return None
    if owner is None or region_may_change(owner, data.region_code):
        return None
    return RecordRejected(
        403,
        "forbidden",
        "this record is not the caller's to write",
        [
            FieldError(
                field,
                "owned_by_another_region",
                f"registered by region {owner}: only it, or a region above it, may change {subject}",
                value,
            )
        ],
    )


def region_may_change(owner_region: str, region_code: str | None) -> bool:
    """The advisors' rule (contracts.events.registration_permitted) for any registration: the owner or a
    region above it; a registration without a region changes nothing already owned."""
    return region_code is not None and owner_region.startswith(region_code)


async def seal_each(keystore: Keystore, events: list[Event]) -> list[Event | ApiError]:
    """Each event sealed, or the refusal of the one whose personal data was erased (a batch goes on
    without it) or that could not be sealed because the key store is down."""
    refused: dict[Any, ApiError] = {}
    while True:
        remaining = [event for event in events if event.id not in refused]
        try:
            sealed = {event.id: event for event in await keystore.seal(remaining)}
            break
        except PersonalDataErased as erased:
            refused[erased.key_id] = ApiError(410, "personal_data_erased", *erased_refusal(erased.key_id))
        except KeystoreUnavailable:
            down = ApiError(503, "keystore_unavailable", KEYSTORE_DOWN)
            sealed = {event.id: event for event in remaining if not plain_personal(event.data)}
            refused.update({event.id: down for event in remaining if event.id not in sealed})
            break
    return [refused.get(event.id) or sealed[event.id] for event in events]


def accepted(kind: str, event: Event, stored: Stored) -> dict[str, Any]:
    metrics.RECORDS.labels(kind, "accepted", "").inc()
    return accepted_answer(kind, event, stored)


def accepted_answer(kind: str, event: Event, stored: Stored) -> dict[str, Any]:
    """What `accepted` answers, without counting the record (a batch counts its records once per kind)."""
    recorded_at = event.recorded_at
    return {
        "id": str(event.id),
        "kind": kind,
        "status": "accepted",
        "topic": event.topic,
        "partition": stored.partition,
        "offset": stored.offset,
        "recorded_at": moment_text(recorded_at, recorded_at.utcoffset()) if recorded_at else None,
    }


def import_answer(
    outcome: ImportOutcome, request: Request, unavailable_headers: dict[str, str]
) -> OrjsonResponse:
    """200 when valid (a dry run) or imported; 422 (403 when about the region) listing every row's errors,
    nothing published; 503 when Kafka stopped the import part-way (run it again)."""
    summary = outcome.as_json()
    errors = summary.pop("errors")
    if outcome.check.errors:
        status = 403 if outcome.check.forbidden else 422
        body = error_body(
            status,
            "forbidden" if status == 403 else "import_invalid",
            f"{len(errors)} problems in the file: nothing was published; every row's problems are listed",
            getattr(request.state, "request_id", None),
        )
        body["error"]["fields"] = errors
        return OrjsonResponse({**body, "import": summary}, status_code=status)
    if outcome.stopped:
        return OrjsonResponse({"import": summary}, status_code=503, headers=unavailable_headers)
    return OrjsonResponse({"import": summary}, status_code=200)
