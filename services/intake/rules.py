"""What intake accepts, as pure functions: kinds of record, checks beyond types, who may write what."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from contracts.envelope import ContractViolation, Event, FieldError, parse_payload
from contracts.events import (
    DEFAULT_ZONE,
    PAYLOAD_BY_TYPE,
    AdvisorRegistered,
    EventPayload,
    FeedbackSubmitted,
    ServiceRecord,
    TeamRegistered,
    VisitLogged,
)
from plumbing.auth import REGISTRY_ROLES, Principal, Role

SERVER_SET_FIELDS = ("recorded_by", "recorded_at", "recorded_by_role", "sealed_personal", "imported")


@dataclass(frozen=True)
class RecordKind:
    """One kind of record a client may send: its name in batches, its event type and its path."""

    name: str
    event_type: str
    path: str
    summary: str

    @property
    def is_registry(self) -> bool:
        return not issubclass(PAYLOAD_BY_TYPE[self.event_type], ServiceRecord)


KINDS: tuple[RecordKind, ...] = (
    RecordKind(
        "consultation", "consultation.recorded", "/v1/consultations", "Record a legal consultation (法律咨询)"
    ),
    RecordKind(
        "mediation", "mediation.recorded", "/v1/mediations", "Record a dispute mediation (矛盾纠纷调解)"
    ),
    RecordKind("lecture", "lecture.held", "/v1/lectures", "Record a legal lecture (法治讲座)"),
    RecordKind(
        "legal_aid", "legal_aid.assisted", "/v1/legal-aid", "Record legal aid or a case (法律援助/代理案件)"
    ),
    RecordKind("visit", "visit.logged", "/v1/visits", "Log an on-site visit (驻村服务, 一次一记)"),
    RecordKind(
        "document", "document.reviewed", "/v1/documents", "Record a document reviewed (文书/村规民约)"
    ),
    RecordKind(
        "risk_report", "risk.reported", "/v1/risk-reports", "Report a risk upward (社情民意/风险上报)"
    ),
    RecordKind("feedback", "feedback.submitted", "/v1/feedback", "Submit feedback on an advisor (评价)"),
    RecordKind("void", "record.voided", "/v1/voids", "Void a record (更正: void plus a new record)"),
    RecordKind("advisor", "advisor.registered", "/v1/registry/advisors", "Register an advisor"),
    RecordKind(
        "assignment", "advisor.assigned", "/v1/registry/assignments", "Assign an advisor to a village"
    ),
    RecordKind("release", "advisor.released", "/v1/registry/releases", "Release an advisor from a village"),
    RecordKind(
        "violation", "violation.recorded", "/v1/registry/violations", "Record a violation (grade: violation)"
    ),
    RecordKind(
        "region_classification",
        "region.classified",
        "/v1/registry/region-classifications",
        "Classify a region (remote, mountain, ...)",
    ),
    RecordKind("policy", "policy.published", "/v1/registry/policies", "Publish a region's assessment policy"),
    RecordKind("team", "team.registered", "/v1/registry/teams", "Register an advisor team (律师团队)"),
    RecordKind(
        "team_assignment", "team.assigned", "/v1/registry/team-assignments", "Assign a team to a village"
    ),
    RecordKind(
        "team_release", "team.released", "/v1/registry/team-releases", "Release a team from a village"
    ),
)
KIND_BY_NAME = {kind.name: kind for kind in KINDS}


@dataclass(frozen=True)
class Limits:
    max_age: timedelta
    clock_skew: timedelta


class RecordRejected(Exception):
    """A record intake will not publish: 422 (does not fit) or 403 (not the caller's to write)."""

    def __init__(self, status: int, code: str, message: str, errors: list[FieldError]) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors


def _parse_id(body: dict[str, Any]) -> uuid.UUID:
    raw = body.get("id")
    if raw is None:
        raise RecordRejected(
            422,
            "validation_failed",
            "every record carries the id its client chose when the fact was first recorded",
            [FieldError("id", "missing", "a UUID chosen by the client; a retry sends the same one")],
        )
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise RecordRejected(
            422, "validation_failed", "id is not a UUID", [FieldError("id", "uuid", "must be a UUID", raw)]
        ) from None


def _time_errors(payload: EventPayload, now: datetime, limits: Limits) -> list[FieldError]:
    errors: list[FieldError] = []
    latest = now + limits.clock_skew
    if isinstance(payload, ServiceRecord):
        if payload.occurred_at > latest:
            errors.append(
                FieldError(
                    "occurred_at",
                    "not_in_future",
                    "occurred_at is in the future",
                    payload.occurred_at.isoformat(),
                )
            )
        if payload.occurred_at < now - limits.max_age:
            errors.append(
                FieldError(
                    "occurred_at",
                    "max_age",
                    f"older than {limits.max_age.days} days: history is brought in by a county bureau "
                    "or above with the bulk import of a ledger file (POST /v1/imports, or "
                    "`python -m services.intake import FILE`), which keeps the original dates",
                    payload.occurred_at.isoformat(),
                )
            )
    if isinstance(payload, VisitLogged) and payload.ended_at > latest:
        errors.append(
            FieldError("ended_at", "not_in_future", "ended_at is in the future", payload.ended_at.isoformat())
        )
    recorded_date = getattr(payload, "date", None) if "date" in _field_names(type(payload)) else None
    if isinstance(recorded_date, date) and recorded_date > now.astimezone(DEFAULT_ZONE).date():
        errors.append(FieldError("date", "not_in_future", "date is in the future", recorded_date.isoformat()))
    return errors


def _codes_in(payload: EventPayload) -> list[tuple[str, str]]:
    """(field, code) pairs that must lie within the caller's region."""
    found = []
    for field in _code_fields(type(payload)):
        value = getattr(payload, field)
        if isinstance(value, str):
            found.append((field, value))
    return found


@cache
def _code_fields(payload_type: type[EventPayload]) -> tuple[str, ...]:
    # Asked of the model's fields, not with getattr's default: a pydantic model's miss costs an exception.
    return tuple(
        name for name in ("village_code", "code", "region_code") if name in _field_names(payload_type)
    )


@cache
def _field_names(payload_type: type[EventPayload]) -> frozenset[str]:
    # Once per type: pydantic's `model_fields` is a descriptor that calls a method on every read.
    return frozenset(payload_type.model_fields)


def authorization_errors(principal: Principal, payload: EventPayload) -> list[FieldError]:
    errors: list[FieldError] = []
    if principal.role is Role.ministry:
        errors.append(
            FieldError(
                "role", "records_nothing", "the Ministry reads every region's figures and records nothing"
            )
        )
    elif isinstance(payload, ServiceRecord):
        if principal.role is Role.advisor and payload.advisor_id != principal.subject:
            errors.append(
                FieldError(
                    "advisor_id",
                    "own_records_only",
                    "an advisor records only their own work",
                    payload.advisor_id,
                )
            )
        if principal.role is Role.advisor and isinstance(payload, FeedbackSubmitted):
            errors.append(
                FieldError("rater", "not_self_rated", "feedback on an advisor is not theirs to record")
            )
    elif principal.role not in REGISTRY_ROLES:
        errors.append(
            FieldError(
                "role",
                "county_level_or_above",
                f"registry and policy records need a county bureau or above, not {principal.role}",
            )
        )
    for field, code in _codes_in(payload):
        if not principal.covers(code):
            errors.append(
                FieldError(
                    field, "within_region", f"outside the caller's region {principal.region_code}", code
                )
            )
    return errors


def prepare_event(
    kind: RecordKind, body: Any, principal: Principal, now: datetime, limits: Limits, source: str
) -> Event:
    """Turn a client's record into the event to publish, or raise RecordRejected naming every problem."""
    if not isinstance(body, dict):
        raise RecordRejected(
            422,
            "validation_failed",
            "a record is a JSON object",
            [FieldError("body", "object", "expected an object")],
        )
    event_id = _parse_id(body)
    server_set = [name for name in SERVER_SET_FIELDS if name in body]
    if server_set:
        raise RecordRejected(
            422,
            "validation_failed",
            "the server sets these fields from the authenticated caller",
            [
                FieldError(name, "server_set", "set by the server; leave it out", body[name])
                for name in server_set
            ],
        )
    fields = {name: value for name, value in body.items() if name != "id"}
    payload_type = PAYLOAD_BY_TYPE[kind.event_type]
    if "recorded_by" in _field_names(payload_type):
        fields["recorded_by"] = principal.subject
    if "recorded_by_role" in _field_names(payload_type):
        fields["recorded_by_role"] = str(principal.role)
    if payload_type in (AdvisorRegistered, TeamRegistered) and fields.get("region_code") is None:
        fields["region_code"] = principal.region_code  # the registering region owns the advisor or team
    try:
        payload = parse_payload(kind.event_type, fields, prefix="", producing=True)
    except ContractViolation as violation:
        raise RecordRejected(
            422, "validation_failed", "the record does not fit the contract", violation.errors
        ) from None
    time_errors = _time_errors(payload, now, limits)
    if time_errors:
        raise RecordRejected(422, "validation_failed", "the record's times are out of bounds", time_errors)
    refusals = authorization_errors(principal, payload)
    if refusals:
        raise RecordRejected(403, "forbidden", "this record is not the caller's to write", refusals)
    return Event(
        id=event_id,
        source=source,
        time=payload.occurred_at if isinstance(payload, ServiceRecord) else now,
        data=payload,
        recorded_at=now,
    )
