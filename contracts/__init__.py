"""The event contracts other systems integrate through: payload models, CloudEvents envelope, topics."""

from contracts.envelope import (
    ContractViolation,
    Event,
    FieldError,
    KafkaRecord,
    content_fingerprint,
    from_kafka_record,
    parse_payload,
    to_kafka_record,
)
from contracts.events import PAYLOAD_BY_TYPE, PAYLOAD_TYPES, EventPayload

__all__ = [
    "PAYLOAD_BY_TYPE",
    "PAYLOAD_TYPES",
    "ContractViolation",
    "Event",
    "EventPayload",
    "FieldError",
    "KafkaRecord",
    "content_fingerprint",
    "from_kafka_record",
    "parse_payload",
    "to_kafka_record",
]
