"""The default province policy (Zaozhuang's rules) that intake records at start-up, with a fixed id.

A policy is a registry record and intake is the one writer of the registry (contracts/access.py), so the
default policy enters the event store here, as a county bureau's policy would through the API.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from contracts.envelope import Event
from contracts.events import PolicyPublished, PolicyRules

DEFAULT_POLICY_SINCE = date(2017, 1, 1)
SOURCE = "/villagecounsel/assessment"  # the id and source it always had, so consumers drop the repeats


def default_policy_event(region_code: str, now: datetime) -> Event:
    """The default province policy, with the same id on every start-up."""
    return Event(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"urn:villagecounsel:default-policy:{region_code}:v1"),
        source=SOURCE,
        time=now,
        data=PolicyPublished(
            region_code=region_code,
            effective_from=DEFAULT_POLICY_SINCE,
            rules=PolicyRules(),
            recorded_by="villagecounsel-default-policy",
        ),
        recorded_at=now,
    )
