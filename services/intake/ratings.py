"""Residents' ratings from a village's public notice (群众评价): no login, so the rules that stand in for one.
A rating is a `feedback.submitted` by a resident whose id is derived from the device, the advisor and the
day (Asia/Shanghai): the same device rating the same advisor again that day makes the same event, which
every consumer counts once, whichever intake replica took it. Per-client token buckets refuse floods. Pure:
plain values in, plain values out; the clock is a parameter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from contracts.envelope import ContractViolation, Event, FieldError, parse_payload
from contracts.events import DEFAULT_ZONE, FeedbackSubmitted, Rater
from services.intake.rules import RecordRejected

# Ratings' event ids: uuid5 of (device, advisor, day) in this namespace.
RATING_NAMESPACE = uuid.UUID("0d7c4f3e-9b1a-4c55-8e62-3a1f7d2b9c40")
# Who recorded a rating: no principal signed in; the public notice's form did.
PUBLIC_NOTICE = "public-notice"
MAX_COMMENT = 300
FIELDS = frozenset({"device_id", "advisor_id", "village_code", "score", "comment"})


def rating_event_id(device_id: uuid.UUID, advisor_id: str, day: date) -> uuid.UUID:
    return uuid.uuid5(RATING_NAMESPACE, f"{device_id}|{advisor_id}|{day.isoformat()}")


def rating_day(now: datetime) -> date:
    return now.astimezone(DEFAULT_ZONE).date()


def _device_id(value: Any) -> tuple[uuid.UUID | None, list[FieldError]]:
    try:
        return uuid.UUID(str(value)), []
    except ValueError:
        return None, [FieldError("device_id", "uuid", "a UUID the page keeps on the device", value)]


def rating_event(body: Any, now: datetime, source: str) -> Event:
    """A resident's rating as the event to publish, or RecordRejected naming every problem. The comment
    (personal free text) is never echoed in an error: only its length."""
    if not isinstance(body, dict):
        raise RecordRejected(
            422, "validation_failed", "a rating is a JSON object", [FieldError("body", "object", "an object")]
        )
    errors = [
        FieldError(name, "extra_forbidden", f"a rating has only {sorted(FIELDS)}")
        for name in sorted(set(body) - FIELDS)
    ]
    if "device_id" not in body:
        errors.append(FieldError("device_id", "missing", "the page sends the device's id"))
        device = None
    else:
        device, device_errors = _device_id(body["device_id"])
        errors.extend(device_errors)
    comment = body.get("comment")
    if isinstance(comment, str) and len(comment) > MAX_COMMENT:
        errors.append(
            FieldError("comment", "string_too_long", f"at most {MAX_COMMENT} characters", len(comment))
        )
    elif comment is not None and not isinstance(comment, str):
        errors.append(FieldError("comment", "string_type", "text, or leave it out"))
    day = rating_day(now)
    fields = {
        "advisor_id": body.get("advisor_id"),
        "village_code": body.get("village_code"),
        "score": body.get("score"),
        "comment": (comment.strip() or None) if isinstance(comment, str) else None,
        "rater": Rater.resident,
        # The day, not the moment: the same rating sent again that day is the same event, not a conflict.
        "occurred_at": datetime.combine(day, time(), DEFAULT_ZONE),
        "recorded_by": PUBLIC_NOTICE,
    }
    try:
        payload = parse_payload(FeedbackSubmitted.event_type, fields, prefix="", producing=True)
    except ContractViolation as violation:
        errors.extend(
            FieldError(
                error.field, error.rule, error.message, None if error.field == "comment" else error.value
            )
            for error in violation.errors
        )
        payload = None
    if errors or not isinstance(payload, FeedbackSubmitted) or device is None:
        raise RecordRejected(422, "validation_failed", "the rating does not fit", errors)
    return Event(
        id=rating_event_id(device, payload.advisor_id, day),
        source=source,
        time=payload.occurred_at,
        data=payload,
        recorded_at=now,
    )


@dataclass
class _Bucket:
    tokens: float
    updated: float


class ClientBuckets:
    """A token bucket per client address: `burst` ratings at once, then `per_minute`. Per replica (a flood
    goes to every replica the load balancer picks, each refusing it); bounded: the longest-idle clients
    are forgotten beyond `max_clients` (a forgotten client starts full, which only lets through a burst)."""

    def __init__(self, burst: int, per_minute: float, max_clients: int = 100_000) -> None:
        self.burst = burst
        self.per_second = per_minute / 60
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str, now: float) -> float | None:
        """None when admitted (one token taken), else the seconds until a token is there."""
        bucket = self._buckets.pop(client, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        self._buckets[client] = bucket  # last in the dict: the most recently seen
        if len(self._buckets) > self.max_clients:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.per_second
