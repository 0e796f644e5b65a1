"""Intake's records: one POST per kind (`/v1/consultations`, ..., `/v1/registry/...`) and `/v1/batch`,
up to 1,000 records of mixed kinds for offline clients. A record is acknowledged (202) only after Kafka
has stored it."""

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from contracts.envelope import Event, FieldError, to_kafka_record
from plumbing.http import ApiError, OrjsonResponse, field_entry
from plumbing.personal import PersonalDataErased
from plumbing.routing import AppClock, Caller
from services.intake import metrics
from services.intake.publisher import NotStored, Stored
from services.intake.routes.common import (
    KEYSTORE_DOWN,
    MAY_NOT_BE_STORED,
    SOURCE,
    Admitted,
    Parts,
    accepted,
    accepted_answer,
    erased_refusal,
    log,
    log_rejection,
    ownership_refusal,
    read_json_body,
    seal_each,
)
from services.intake.rules import KIND_BY_NAME, KINDS, RecordKind, RecordRejected, prepare_event
from services.intake.sealing import KeystoreUnavailable

router = APIRouter()


def record_endpoint(kind: RecordKind) -> Callable[..., Awaitable[OrjsonResponse]]:
    async def record(
        request: Request,
        caller: Caller,
        parts: Parts,
        clock: AppClock,
        _admitted: Admitted,
        dry_run: Annotated[
            bool,
            Query(description="only check the record: 200 when it would be accepted; nothing stored"),
        ] = False,
    ) -> OrjsonResponse:
        body = await read_json_body(request, parts.settings.max_body_bytes)
        try:
            event = prepare_event(kind, body, caller, clock.now(), parts.limits, SOURCE)
        except RecordRejected as rejection:
            log_rejection(kind.name, body, rejection)
            raise ApiError(rejection.status, rejection.code, rejection.message, rejection.errors) from None
        try:
            refusal = await ownership_refusal(parts.keystore, event)
        except KeystoreUnavailable:
            raise ApiError(
                503, "keystore_unavailable", KEYSTORE_DOWN, headers=parts.unavailable_headers
            ) from None
        if refusal is not None:
            log_rejection(kind.name, body, refusal)
            raise ApiError(refusal.status, refusal.code, refusal.message, refusal.errors)
        if dry_run:
            return OrjsonResponse(
                {"id": str(event.id), "kind": kind.name, "status": "valid"}, status_code=200
            )
        try:
            [event] = await parts.keystore.seal([event])
        except PersonalDataErased:
            raise ApiError(410, "personal_data_erased", *erased_refusal(event.id)) from None
        except KeystoreUnavailable:
            raise ApiError(
                503, "keystore_unavailable", KEYSTORE_DOWN, headers=parts.unavailable_headers
            ) from None
        started = time.perf_counter()
        [result] = await parts.publisher.publish_all([to_kafka_record(event)])
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        if isinstance(result, NotStored):
            metrics.RECORDS.labels(kind.name, "unavailable", result.reason).inc()
            log.warning("record_not_stored", event_id=str(event.id), kind=kind.name, error=result.reason)
            raise ApiError(
                503,
                "kafka_unavailable",
                MAY_NOT_BE_STORED,
                headers=parts.unavailable_headers,
            )
        await parts.keystore.note_owners([event])
        return OrjsonResponse(accepted(kind.name, event, result), status_code=202)

    record.__name__ = f"record_{kind.name}"
    return record


for kind in KINDS:
    router.add_api_route(
        kind.path,
        record_endpoint(kind),
        methods=["POST"],
        status_code=202,
        summary=kind.summary,
        tags=["registry" if kind.is_registry else "records"],
        openapi_extra={"x-record-kind": kind.name},
    )


async def batch(
    request: Request, caller: Caller, _admitted: Admitted, parts: Parts, clock: AppClock
) -> OrjsonResponse:
    body = await read_json_body(request, parts.settings.max_body_bytes)
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        raise ApiError(
            422,
            "validation_failed",
            'a batch is {"records": [{"kind": ..., "record": {...}}, ...]}',
            [FieldError("records", "non_empty_list", "a non-empty list of records")],
        )
    if len(records) > parts.settings.batch_max_records:
        raise ApiError(
            413,
            "batch_too_large",
            f"at most {parts.settings.batch_max_records} records per batch",
            [
                FieldError(
                    "records", "max_length", f"at most {parts.settings.batch_max_records}", len(records)
                )
            ],
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
                event = prepare_event(kind, record, caller, now, parts.limits, SOURCE)
                refusal = await ownership_refusal(parts.keystore, event)
                if refusal is not None:
                    raise refusal
                to_publish.append((index, kind.name, event))
                continue
            except RecordRejected as refused:
                rejection = refused
            except KeystoreUnavailable:
                rejection = RecordRejected(503, "keystore_unavailable", KEYSTORE_DOWN, [])
        log_rejection(kind_name if isinstance(kind_name, str) else "unknown", record, rejection)
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
    sealing = await seal_each(parts.keystore, [event for _, _, event in to_publish])
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
    published = await parts.publisher.publish_all([to_kafka_record(event) for _, _, event in to_publish])
    if to_publish:
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
    await parts.keystore.note_owners(
        [
            event
            for (_, _, event), outcome in zip(to_publish, published, strict=True)
            if isinstance(outcome, Stored)
        ]
    )
    accepted_by_kind: Counter[str] = Counter()
    for (index, kind_name, event), outcome in zip(to_publish, published, strict=True):
        if isinstance(outcome, Stored):
            results[index] = {"index": index, **accepted_answer(kind_name, event, outcome)}
            accepted_by_kind[kind_name] += 1
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
    for kind_name, count in accepted_by_kind.items():
        metrics.RECORDS.labels(kind_name, "accepted", "").inc(count)
    counts = {
        status: sum(1 for r in results if r["status"] == status)
        for status in ("accepted", "rejected", "unavailable")
    }
    summary = {**counts, "results": results}
    if counts["unavailable"]:
        return OrjsonResponse(summary, status_code=503, headers=parts.unavailable_headers)
    return OrjsonResponse(summary, status_code=200)


router.add_api_route(
    "/v1/batch",
    batch,
    methods=["POST"],
    summary="Sync up to 1,000 records of mixed kinds (offline clients)",
    tags=["records"],
    openapi_extra={"x-record-kind": "batch"},
)
