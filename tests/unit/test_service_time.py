"""Which month a visit's minutes count in (contracts.service_time), as a table of cases."""

from __future__ import annotations

from datetime import datetime

import pytest

from contracts.events import DEFAULT_ZONE
from contracts.service_time import on_site_minutes_by_month, whole_minutes


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=DEFAULT_ZONE)


@pytest.mark.parametrize(
    ("started", "ended", "parts"),
    [
        ("2025-06-10T08:00", "2025-06-10T16:30", [("2025-06", 510)]),
        ("2025-06-30T23:00", "2025-07-01T01:30", [("2025-06", 60), ("2025-07", 90)]),
        ("2025-06-30T23:59", "2025-07-01T00:00", [("2025-06", 1)]),
        ("2025-07-01T00:00", "2025-07-01T08:00", [("2025-07", 480)]),
        ("2025-12-31T22:00", "2026-01-01T06:00", [("2025-12", 120), ("2026-01", 360)]),
        # Whole minutes: the parts add up to the visit's whole minutes, the last month gets the rest.
        ("2025-06-30T23:00:30", "2025-07-01T01:30:00", [("2025-06", 59), ("2025-07", 90)]),
        ("2025-06-30T23:00:30", "2025-07-01T01:29:50", [("2025-06", 59), ("2025-07", 90)]),
        # Midnight in Beijing, whatever zone the visit was sent in: 16:00 UTC is midnight in Shanghai.
        ("2025-06-30T15:00:00+00:00", "2025-06-30T17:00:00+00:00", [("2025-06", 60), ("2025-07", 60)]),
    ],
)
def test_a_visit_counts_in_each_month_for_the_part_spent_there(
    started: str, ended: str, parts: list[tuple[str, int]]
) -> None:
    start, end = datetime.fromisoformat(started), datetime.fromisoformat(ended)
    start = start if start.tzinfo else start.replace(tzinfo=DEFAULT_ZONE)
    end = end if end.tzinfo else end.replace(tzinfo=DEFAULT_ZONE)
    found = on_site_minutes_by_month(start, end)
    assert [(part.month_text, part.minutes) for part in found] == parts
    assert sum(part.minutes for part in found) == whole_minutes(start, end)
