"""CloudEvents 1.0 in Kafka binary content mode: attributes in `ce_*` headers, the JSON payload as value.

`to_kafka_record` and `from_kafka_record` are the only two ways an event crosses the wire; both refuse
what does not fit with a `ContractViolation` naming each field and rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any
from uuid import UUID

import orjson
from pydantic import ValidationError

from contracts.events import (
    PAYLOAD_BY_TYPE,
    PRODUCING,
    SCHEMA_VERSION,
    ApprovalEvent,
    EventPayload,
    PersonalErased,
    ServiceRecord,
)
from contracts.topics import ASSESSMENT

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
DEFAULT_SOURCE = "/villagecounsel/intake"

H_SPECVERSION = "ce_specversion"
H_ID = "ce_id"
H_SOURCE = "ce_source"
H_TYPE = "ce_type"
H_TIME = "ce_time"
H_SUBJECT = "ce_subject"
H_DATASCHEMA = "ce_dataschema"
H_RECORDEDAT = "ce_recordedat"
H_CONTENT_TYPE = "content-type"

Headers = list[tuple[str, bytes]]
PRODUCER_CONTEXT = {PRODUCING: True}


def dataschema_uri(event_type: str, version: int = SCHEMA_VERSION) -> str:
    return f"urn:villagecounsel:schema:{event_type}:v{version}"


def ce_time_meaning(payload_type: type[EventPayload]) -> str:
    """What `ce_time` holds for records of this type: the fact's own time where the fact has one (service
    records, erasures); for the registry and the assessment's conclusions, when the producer accepted or
    concluded this copy, which a re-sent copy (same `ce_id`) does not share. Intake, the assessment and
    the generated AsyncAPI document (headers' description) all follow this one table."""
    if issubclass(payload_type, ServiceRecord):
        return "when the thing happened: the payload's occurred_at, the same in every copy"
    if issubclass(payload_type, PersonalErased):
        return "when the personal fields were erased: the payload's erased_at, the same in every copy"
    if issubclass(payload_type, ApprovalEvent):
        return "when the official took the step: the payload's acted_at, the same in every copy"
    if payload_type.kafka_topic == ASSESSMENT:
        return (
            "when the assessment concluded this copy (not the month or year it is about); "
            "a re-sent copy with the same ce_id may carry a later time"
        )
    return (
        "when intake accepted this copy (equal to ce_recordedat), not when the fact takes effect: that is "
        "the payload's own date (term_start, effective_date, date, effective_from) where it has one; "
        "a re-sent copy with the same ce_id carries a later time, so never compare copies by ce_time"
    )


@dataclass(frozen=True)
class FieldError:
    """One broken rule: where (`data.person_times`), which rule (`greater_than_equal`), what it says."""

    field: str
    rule: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.field}: {self.rule} ({self.message})"


class ContractViolation(ValueError):
    """A payload or record that does not fit the contract. Its text never includes the values."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


@dataclass(frozen=True)
class Event:
    """An event as the services see it: the envelope's attributes plus the typed payload."""

    id: UUID
    source: str
    time: datetime
    data: EventPayload
    recorded_at: datetime | None = None

    @property
    def type(self) -> str:
        return self.data.event_type

    @property
    def subject(self) -> str:
        return self.data.record_key()

    @property
    def topic(self) -> str:
        return self.data.kafka_topic


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


def field_errors(error: ValidationError, prefix: str) -> list[FieldError]:
    found = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
        found.append(
            FieldError(field=path or prefix, rule=item["type"], message=item["msg"], value=item.get("input"))
        )
    return found


def parse_payload(
    event_type: str, data: Any, prefix: str = "data", *, producing: bool = False
) -> EventPayload:
    """Validate a payload (a dict or JSON bytes) as the given event type. `producing`: what a producer
    (intake) is about to publish, held to the published schema where the models read more (amounts
    written as strings); a consumer reads without it."""
    payload_type = PAYLOAD_BY_TYPE.get(event_type)
    if payload_type is None:
        raise ContractViolation(
            [
                FieldError(
                    "type", "unknown_event_type", f"no event type {event_type!r} in the catalogue", event_type
                )
            ]
        )
    try:
        context = PRODUCER_CONTEXT if producing else None
        if isinstance(data, bytes | str):
            return payload_type.model_validate_json(data, context=context)
        return payload_type.model_validate(data, context=context)
    except ValidationError as error:
        raise ContractViolation(field_errors(error, prefix)) from None


def payload_json(payload: EventPayload) -> bytes:
    return orjson.dumps(payload.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


SPECVERSION_HEADER = (H_SPECVERSION, SPEC_VERSION.encode())
CONTENT_TYPE_HEADER = (H_CONTENT_TYPE, CONTENT_TYPE.encode())


@cache
def type_headers(event_type: str) -> tuple[tuple[str, bytes], tuple[str, bytes]]:
    """`ce_type` and `ce_dataschema`: the same for every record of a type, so encoded once per type (a
    batch of a thousand records encoded them a thousand times)."""
    return (H_TYPE, event_type.encode()), (H_DATASCHEMA, dataschema_uri(event_type).encode())


@lru_cache(maxsize=64)
def moment_text(moment: datetime, offset: timedelta | None) -> str:
    """A moment as ISO 8601 text, for moments a batch's records share (the one intake accepted them at):
    written once per batch. Keyed by the offset too: an equal instant in another zone is equal, and written
    otherwise."""
    return _iso(moment)


@lru_cache(maxsize=64)
def recorded_at_header(moment: datetime, offset: timedelta | None) -> tuple[str, bytes]:
    """`ce_recordedat`, once per batch (`moment_text`)."""
    return H_RECORDEDAT, moment_text(moment, offset).encode()


def to_kafka_record(event: Event) -> KafkaRecord:
    if event.time.tzinfo is None:
        raise ContractViolation([FieldError("time", "timezone_aware", "ce_time must carry a timezone")])
    type_header, dataschema_header = type_headers(event.type)
    subject = event.subject.encode()
    headers: Headers = [
        SPECVERSION_HEADER,
        (H_ID, str(event.id).encode()),
        (H_SOURCE, event.source.encode()),
        type_header,
        (H_TIME, _iso(event.time).encode()),
        (H_SUBJECT, subject),
        dataschema_header,
        CONTENT_TYPE_HEADER,
    ]
    if event.recorded_at is not None:
        headers.append(recorded_at_header(event.recorded_at, event.recorded_at.utcoffset()))
    return KafkaRecord(topic=event.topic, key=subject, value=payload_json(event.data), headers=headers)


def _header_map(headers: Headers | None) -> tuple[dict[str, str], list[FieldError]]:
    found: dict[str, str] = {}
    errors: list[FieldError] = []
    for name, raw in headers or ():
        try:
            found[name] = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError:
            errors.append(FieldError(f"headers.{name}", "utf8", "header is not UTF-8"))
    return found, errors


def _parse_time(name: str, text: str | None, errors: list[FieldError]) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        errors.append(FieldError(f"headers.{name}", "rfc3339", "not an RFC 3339 timestamp", text))
        return None
    if moment.tzinfo is None:
        errors.append(
            FieldError(f"headers.{name}", "timezone_aware", "timestamp must carry a timezone", text)
        )
        return None
    return moment


def from_kafka_record(topic: str, key: bytes | None, value: bytes | None, headers: Headers | None) -> Event:
    """Decode and validate one Kafka record; raise ContractViolation naming every broken rule."""
    attrs, errors = _header_map(headers)
    for required in (H_SPECVERSION, H_ID, H_SOURCE, H_TYPE, H_TIME, H_DATASCHEMA):
        if not attrs.get(required):
            errors.append(FieldError(f"headers.{required}", "required", "CloudEvents attribute missing"))
    if attrs.get(H_SPECVERSION, SPEC_VERSION) != SPEC_VERSION:
        errors.append(FieldError(f"headers.{H_SPECVERSION}", "equals_1.0", "only CloudEvents 1.0 is read"))
    if attrs.get(H_CONTENT_TYPE, CONTENT_TYPE).split(";")[0].strip() != CONTENT_TYPE:
        errors.append(FieldError(f"headers.{H_CONTENT_TYPE}", "application_json", "value must be JSON"))
    event_id: UUID | None = None
    if attrs.get(H_ID):
        try:
            event_id = UUID(attrs[H_ID])
        except ValueError:
            errors.append(FieldError(f"headers.{H_ID}", "uuid", "ce_id must be a UUID", attrs[H_ID]))
    event_type = attrs.get(H_TYPE, "")
    payload_type = PAYLOAD_BY_TYPE.get(event_type)
    if event_type and payload_type is None:
        errors.append(
            FieldError(f"headers.{H_TYPE}", "unknown_event_type", "not in the catalogue", event_type)
        )
    if payload_type is not None:
        if payload_type.kafka_topic != topic:
            errors.append(
                FieldError(
                    f"headers.{H_TYPE}", "topic", f"{event_type} belongs on {payload_type.kafka_topic}"
                )
            )
        schema = attrs.get(H_DATASCHEMA)
        if schema and schema != dataschema_uri(event_type):
            errors.append(
                FieldError(f"headers.{H_DATASCHEMA}", "known_schema", "unknown schema version", schema)
            )
    time = _parse_time(H_TIME, attrs.get(H_TIME), errors)
    recorded_at = _parse_time(H_RECORDEDAT, attrs.get(H_RECORDEDAT), errors)
    payload: EventPayload | None = None
    if payload_type is not None:
        if not value:
            errors.append(FieldError("data", "required", "record has no value"))
        else:
            try:
                payload = parse_payload(event_type, value)
            except ContractViolation as violation:
                errors.extend(violation.errors)
    if payload is not None:
        expected_key = payload.record_key()
        if key is None or key.decode("utf-8", "replace") != expected_key:
            errors.append(
                FieldError("key", "record_key", f"the record key must be {payload.kafka_topic}'s key")
            )
        if attrs.get(H_SUBJECT) not in (None, expected_key):
            errors.append(
                FieldError(f"headers.{H_SUBJECT}", "subject", "ce_subject must equal the record key")
            )
    if errors or payload is None or event_id is None or time is None:
        raise ContractViolation(errors)
    return Event(id=event_id, source=attrs[H_SOURCE], time=time, data=payload, recorded_at=recorded_at)


# Payload fields intake sets from who sent the record, not from what the client sent.
SENDER_FIELDS = frozenset({"recorded_by", "recorded_by_role"})
# How a record arrived (a bulk import of history), not what it says: an import of records already here is
# a duplicate, not a conflict.
IMPORTED_FIELD = "imported"
NOT_FINGERPRINTED = SENDER_FIELDS | {IMPORTED_FIELD}


def payload_values(payload: EventPayload) -> dict[str, Any]:
    """The payload as JSON values, unset fields left out: what `content_fingerprint` digests (less the
    sender's fields) and what the ledger files; a consumer dumps each payload once and hands both this."""
    return payload.model_dump(mode="json", exclude_none=True)


def content_fingerprint(event: Event, values: dict[str, Any] | None = None) -> bytes:
    """SHA-256 over what makes a fact a fact: its type, subject and the payload the client sent (not when
    it was sent, nor by whom).

    A client's retry of the same fact has the same fingerprint, whoever allowed to send it sends it (a
    township office re-sending an advisor's offline batch); the same id with other content is a conflict.
    `time` is left out: for service records it is `occurred_at`, already in the payload, and for registry
    records it is when intake accepted them, which differs between retries. The sender fields are left
    out for the same reason, and so is the `imported` marker; personal fields are sealed deterministically
    per record id, so they stay. `values`: the payload's `payload_values`, when the caller has them.
    """
    canonical = orjson.dumps({"type": event.type, "subject": event.subject}, option=orjson.OPT_SORT_KEYS)
    dumped = payload_values(event.data) if values is None else values
    sent = orjson.dumps(
        {name: value for name, value in dumped.items() if name not in NOT_FINGERPRINTED},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical + b"\n" + sent).digest()
