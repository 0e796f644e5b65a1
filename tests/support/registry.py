"""A registry stream as a consumer reads it: the payloads in order on the registry's one partition."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime

from contracts.envelope import Event, content_fingerprint
from contracts.events import EventPayload
from contracts.topics import REGISTRY
from plumbing.projection import ConsumedEvent


def registry_stream(
    payloads: Sequence[EventPayload], rng: random.Random, now: datetime
) -> list[ConsumedEvent]:
    """Each payload as an event (ids drawn from `rng`: the same every run) at its offset."""
    found = []
    for offset, payload in enumerate(payloads):
        event = Event(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            source="/test",
            time=now,
            data=payload,
            recorded_at=now,
        )
        found.append(ConsumedEvent(event, REGISTRY, 0, offset, content_fingerprint(event)))
    return found
