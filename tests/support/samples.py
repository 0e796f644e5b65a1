"""A valid sample payload of every event type, for tests to start from and break on purpose."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from contracts.envelope import Event
from contracts.events import PAYLOAD_BY_TYPE, EventPayload
from contracts.examples import EXAMPLE_ADVISOR as ADVISOR
from contracts.examples import EXAMPLE_TIME as WHEN
from contracts.examples import EXAMPLE_VILLAGE as VILLAGE
from contracts.examples import example_fields as sample_fields

__all__ = ["ADVISOR", "VILLAGE", "WHEN", "sample_event", "sample_fields", "sample_payload"]


def sample_payload(
    event_type: str, advisor_id: str = ADVISOR, village_code: str = VILLAGE, **overrides: Any
) -> EventPayload:
    """A valid payload; advisor_id and village_code go wherever the type has such a field."""
    fields = {**sample_fields(event_type, advisor_id, village_code), **overrides}
    return PAYLOAD_BY_TYPE[event_type].model_validate(fields)


def sample_event(
    event_type: str,
    event_id: uuid.UUID | None = None,
    advisor_id: str = ADVISOR,
    village_code: str = VILLAGE,
    **overrides: Any,
) -> Event:
    payload = sample_payload(event_type, advisor_id, village_code, **overrides)
    return Event(
        id=event_id or uuid.uuid4(),
        source="/villagecounsel/tests",
        time=WHEN,
        data=payload,
        recorded_at=WHEN + timedelta(minutes=5),
    )
