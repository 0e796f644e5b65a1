"""Intake's HTTP API: one POST per kind of record, a batch endpoint for offline sync.

A record is acknowledged (202) only after Kafka has stored it (idempotent producer, acks=all).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from pydantic import ValidationError

from contracts.envelope import Event, FieldError, field_errors, to_kafka_record
from contracts.events import AdvisorRegistered, registration_permitted
from contracts.topics import INPUT_TOPICS, TOPIC_BY_NAME
from plumbing.auth import REGISTRY_ROLES, Principal, bearer_principal, require_region
from plumbing.clock import Clock, SystemClock
from plumbing.http import ApiError, OrjsonResponse, field_entry, install_common, require_json_body
from plumbing.kafka import ensure_topics, kafka_reachable
from plumbing.logs import configure_logging, get_logger
from plumbing.personal import PersonalDataErased, Sealer, master_key_from_text, plain_personal
from services.intake import metrics
from services.intake.default_policy import default_policy_event
from services.intake.openapi import install_openapi
from services.intake.publisher import NotStored, Publisher, Stored
from services.intake.rules import KIND_BY_NAME, KINDS, Limits, RecordKind, RecordRejected, prepare_event
from services.intake.sealing import ErasureRequest, Keystore, KeystoreUnavailable, erasure_event
from services.intake.settings import IntakeSettings
from services.intake.workbench import workbench_connect_sources, workbench_router

log = get_logger(__name__)

SOURCE = "/villagecounsel/intake"


class Admission:
    """Refuses work (429) beyond a fixed number of requests in flight instead of queueing without bound."""

    def __init__(self, limit: int, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0

    async def __call__(self) -> AsyncIterator[None]:
        if self.in_flight >= self.limit:
            raise ApiError(
                429,
                "overloaded",
                "too many requests in flight; retry later with the same ids",
                headers={"Retry-After": str(self.retry_after)},
            )
        self.in_flight += 1
        try:
            yield
        finally:
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


def _log_rejection(kind: str, body: Any, rejection: RecordRejected) -> None:
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


def _erased_refusal(event_id: Any) -> tuple[str, list[FieldError]]:
    return (
        "this record's personal data was erased; it cannot be sent again",
        [FieldError("id", "personal_data_erased", "erased records stay erased", str(event_id))],
    )


async def _ownership_refusal(keystore: Keystore, event: Event) -> RecordRejected | None:
    """A registration of an advisor that another region owns is not the caller's to write (403)."""
    data = event.data
    if not isinstance(data, AdvisorRegistered):
        return None
    owner = await keystore.advisor_owner(data.advisor_id)
    if owner is None or registration_permitted(owner, data):
        return None
    return RecordRejected(
        403,
        "forbidden",
        "this record is not the caller's to write",
        [
            FieldError(
                "advisor_id",
                "owned_by_another_region",
                f"registered by region {owner}: only it, or a region above it, may change the advisor",
                data.advisor_id,
            )
        ],
    )


async def _seal_each(keystore: Keystore, events: list[Event]) -> list[Event | ApiError]:
    """Each event sealed, or the refusal of the one whose personal data was erased (a batch goes on
    without it) or that could not be sealed because the key store is down."""
    refused: dict[Any, ApiError] = {}
    while True:
        remaining = [event for event in events if event.id not in refused]
        try:
            sealed = {event.id: event for event in await keystore.seal(remaining)}
            break
        except PersonalDataErased as erased:
            refused[erased.key_id] = ApiError(410, "personal_data_erased", *_erased_refusal(erased.key_id))
        except KeystoreUnavailable:
            down = ApiError(503, "keystore_unavailable", KEYSTORE_DOWN)
            sealed = {event.id: event for event in remaining if not plain_personal(event.data)}
            refused.update({event.id: down for event in remaining if event.id not in sealed})
            break
    return [refused.get(event.id) or sealed[event.id] for event in events]


def _accepted(kind: str, event: Event, stored: Stored) -> dict[str, Any]:
    metrics.RECORDS.labels(kind, "accepted", "").inc()
    return {
        "id": str(event.id),
        "kind": kind,
        "status": "accepted",
        "topic": event.topic,
        "partition": stored.partition,
        "offset": stored.offset,
        "recorded_at": event.recorded_at.isoformat() if event.recorded_at else None,
    }


def create_app(settings: IntakeSettings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    clock = clock or SystemClock()
    kafka = settings.kafka_connection()
    publisher = Publisher(
        kafka,
        settings.publish_timeout_seconds,
        settings.producer_recreate_after_failures,
    )
    limits = Limits(
        max_age=timedelta(days=settings.max_record_age_days),
        clock_skew=timedelta(seconds=settings.clock_skew_seconds),
    )
    admission = Admission(settings.max_in_flight_requests, settings.retry_after_seconds)
    keystore = Keystore(
        settings.database_url,
        Sealer(master_key_from_text(settings.personal_master_key)),
        settings.keystore_timeout_seconds,
    )
    unavailable_headers = {"Retry-After": str(settings.retry_after_seconds)}

    async def publish_default_policies() -> None:
        """Until Kafka has stored them (intake starts without Kafka); repeats are dropped by id."""
        records = [
            to_kafka_record(default_policy_event(code, clock.now()))
            for code in settings.default_policy_region_codes
        ]
        while True:
            results = await publisher.publish_all(records)
            records = [
                record
                for record, result in zip(records, results, strict=True)
                if isinstance(result, NotStored)
            ]
            if not records:
                return
            log.warning("default_policy_not_stored", regions=len(records))
            await asyncio.sleep(settings.retry_after_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        configure_logging("intake", settings.log_level)
        try:
            await ensure_topics(
                kafka,
                [TOPIC_BY_NAME[topic] for topic in INPUT_TOPICS],
                replication_factor=settings.topic_replication_factor,
                timeout_seconds=settings.kafka_timeout_seconds,
            )
        except Exception as error:  # noqa: BLE001 - intake starts without Kafka and answers 503 until it is back
            log.warning("topics_not_ensured", error=type(error).__name__)
        await publisher.start()
        policies = asyncio.create_task(publish_default_policies(), name="intake-default-policies")
        try:
            with contextlib.suppress(TimeoutError):  # with Kafka up, stored before the first request
                await asyncio.wait_for(asyncio.shield(policies), settings.publish_timeout_seconds)
            yield
        finally:
            policies.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await policies
            await publisher.stop()
            await keystore.stop()

    app = FastAPI(
        title="villagecounsel intake",
        version="1.0.0",
        summary="Record what village legal advisors do (一村一法律顾问), one by one or in offline batches.",
        lifespan=lifespan,
    )

    async def readiness() -> dict[str, bool]:
        return {"kafka": await kafka_reachable(kafka), "keystore": await keystore.reachable()}

    install_common(app, "intake", readiness, connect_sources=workbench_connect_sources(settings))
    install_openapi(app)
    app.state.publisher = publisher
    app.state.admission = admission

    authenticated = bearer_principal(settings)

    CallerDep = Annotated[Principal, Depends(authenticated)]
    AdmittedDep = Annotated[None, Depends(admission)]

    def record_endpoint(kind: RecordKind) -> Callable[..., Awaitable[OrjsonResponse]]:
        async def record(
            request: Request,
            caller: CallerDep,
            _admitted: AdmittedDep,
            dry_run: Annotated[
                bool,
                Query(description="only check the record: 200 when it would be accepted; nothing stored"),
            ] = False,
        ) -> OrjsonResponse:
            body = await read_json_body(request, settings.max_body_bytes)
            try:
                event = prepare_event(kind, body, caller, clock.now(), limits, SOURCE)
            except RecordRejected as rejection:
                _log_rejection(kind.name, body, rejection)
                raise ApiError(
                    rejection.status, rejection.code, rejection.message, rejection.errors
                ) from None
            try:
                refusal = await _ownership_refusal(keystore, event)
            except KeystoreUnavailable:
                raise ApiError(
                    503, "keystore_unavailable", KEYSTORE_DOWN, headers=unavailable_headers
                ) from None
            if refusal is not None:
                _log_rejection(kind.name, body, refusal)
                raise ApiError(refusal.status, refusal.code, refusal.message, refusal.errors)
            if dry_run:
                return OrjsonResponse(
                    {"id": str(event.id), "kind": kind.name, "status": "valid"}, status_code=200
                )
            try:
                [event] = await keystore.seal([event])
            except PersonalDataErased:
                raise ApiError(410, "personal_data_erased", *_erased_refusal(event.id)) from None
            except KeystoreUnavailable:
                raise ApiError(
                    503, "keystore_unavailable", KEYSTORE_DOWN, headers=unavailable_headers
                ) from None
            started = time.perf_counter()
            [result] = await publisher.publish_all([to_kafka_record(event)])
            metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
            if isinstance(result, NotStored):
                metrics.RECORDS.labels(kind.name, "unavailable", result.reason).inc()
                log.warning("record_not_stored", event_id=str(event.id), kind=kind.name, reason=result.reason)
                raise ApiError(
                    503,
                    "kafka_unavailable",
                    MAY_NOT_BE_STORED,
                    headers=unavailable_headers,
                )
            await keystore.note_owners([event])
            return OrjsonResponse(_accepted(kind.name, event, result), status_code=202)

        record.__name__ = f"record_{kind.name}"
        return record

    for kind in KINDS:
        app.add_api_route(
            kind.path,
            record_endpoint(kind),
            methods=["POST"],
            status_code=202,
            summary=kind.summary,
            tags=["registry" if kind.is_registry else "records"],
            openapi_extra={"x-record-kind": kind.name},
        )

    async def batch(request: Request, caller: CallerDep, _admitted: AdmittedDep) -> OrjsonResponse:
        body = await read_json_body(request, settings.max_body_bytes)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise ApiError(
                422,
                "validation_failed",
                'a batch is {"records": [{"kind": ..., "record": {...}}, ...]}',
                [FieldError("records", "non_empty_list", "a non-empty list of records")],
            )
        if len(records) > settings.batch_max_records:
            raise ApiError(
                413,
                "batch_too_large",
                f"at most {settings.batch_max_records} records per batch",
                [FieldError("records", "max_length", f"at most {settings.batch_max_records}", len(records))],
            )
        metrics.BATCH_SIZE.observe(len(records))
        now = clock.now()
        results: list[dict[str, Any]] = [{}] * len(records)
        to_publish: list[tuple[int, str, Event]] = []
        for index, item in enumerate(records):
            kind_name = item.get("kind") if isinstance(item, dict) else None
            kind = KIND_BY_NAME.get(kind_name) if isinstance(kind_name, str) else None
            record = item.get("record") if isinstance(item, dict) else None
            if kind is None:
                error = FieldError("kind", "enum", f"one of {sorted(KIND_BY_NAME)}", kind_name)
                rejection = RecordRejected(422, "validation_failed", "unknown kind of record", [error])
            else:
                try:
                    event = prepare_event(kind, record, caller, now, limits, SOURCE)
                    refusal = await _ownership_refusal(keystore, event)
                    if refusal is not None:
                        raise refusal
                    to_publish.append((index, kind.name, event))
                    continue
                except RecordRejected as refused:
                    rejection = refused
                except KeystoreUnavailable:
                    rejection = RecordRejected(503, "keystore_unavailable", KEYSTORE_DOWN, [])
            _log_rejection(kind_name if isinstance(kind_name, str) else "unknown", record, rejection)
            results[index] = {
                "index": index,
                "id": record.get("id") if isinstance(record, dict) else None,
                "kind": kind_name,
                "status": "unavailable" if rejection.status == 503 else "rejected",
                "error": {
                    "status": rejection.status,
                    "code": rejection.code,
                    "message": rejection.message,
                    "fields": [field_entry(error) for error in rejection.errors],
                },
            }
        sealing = await _seal_each(keystore, [event for _, _, event in to_publish])
        for (index, kind_name, event), sealed in zip(list(to_publish), sealing, strict=True):
            if isinstance(sealed, ApiError):
                results[index] = {
                    "index": index,
                    "id": str(event.id),
                    "kind": kind_name,
                    "status": "unavailable" if sealed.status == 503 else "rejected",
                    "error": {
                        "status": sealed.status,
                        "code": sealed.code,
                        "message": sealed.message,
                        "fields": [field_entry(error) for error in sealed.fields],
                    },
                }
        to_publish = [
            (index, kind_name, sealed)
            for (index, kind_name, _), sealed in zip(to_publish, sealing, strict=True)
            if isinstance(sealed, Event)
        ]
        started = time.perf_counter()
        published = await publisher.publish_all([to_kafka_record(event) for _, _, event in to_publish])
        if to_publish:
            metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        await keystore.note_owners(
            [
                event
                for (_, _, event), outcome in zip(to_publish, published, strict=True)
                if isinstance(outcome, Stored)
            ]
        )
        for (index, kind_name, event), outcome in zip(to_publish, published, strict=True):
            if isinstance(outcome, Stored):
                results[index] = {"index": index, **_accepted(kind_name, event, outcome)}
            else:
                metrics.RECORDS.labels(kind_name, "unavailable", outcome.reason).inc()
                results[index] = {
                    "index": index,
                    "id": str(event.id),
                    "kind": kind_name,
                    "status": "unavailable",
                    "error": {
                        "status": 503,
                        "code": "kafka_unavailable",
                        "message": MAY_NOT_BE_STORED,
                    },
                }
        counts = {
            status: sum(1 for r in results if r["status"] == status)
            for status in ("accepted", "rejected", "unavailable")
        }
        summary = {**counts, "results": results}
        if counts["unavailable"]:
            return OrjsonResponse(summary, status_code=503, headers=unavailable_headers)
        return OrjsonResponse(summary, status_code=200)

    async def erase_personal(request: Request, caller: CallerDep, _admitted: AdmittedDep) -> OrjsonResponse:
        body = await read_json_body(request, settings.max_body_bytes)
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
            village = await keystore.key_village(wanted.target_event_id)
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
            erasure = await keystore.erase(
                wanted.target_event_id, wanted.village_code, caller.subject, wanted.reason, clock.now()
            )
        except KeystoreUnavailable:
            raise ApiError(503, "keystore_unavailable", KEYSTORE_DOWN, headers=unavailable_headers) from None
        if erasure.village_code is not None and not caller.covers(erasure.village_code):
            raise ApiError(
                403, "forbidden", f"the record is outside the caller's region {caller.region_code}"
            )
        event = erasure_event(erasure, wanted.village_code, SOURCE)
        [result] = await publisher.publish_all([to_kafka_record(event)])
        if isinstance(result, NotStored):
            log.warning("erasure_not_published", event_id=str(event.id), reason=result.reason)
            raise ApiError(
                503,
                "kafka_unavailable",
                "the key is destroyed but the erasure may not have been published; send it again",
                headers=unavailable_headers,
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

    app.add_api_route(
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

    app.add_api_route(
        "/v1/batch",
        batch,
        methods=["POST"],
        summary="Sync up to 1,000 records of mixed kinds (offline clients)",
        tags=["records"],
        openapi_extra={"x-record-kind": "batch"},
    )
    app.include_router(workbench_router(settings, clock))
    return app
