"""Intake's answer for a record Kafka has stored: the same for a record alone and in a batch."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

from prometheus_client import REGISTRY

from services.intake.publisher import Stored
from services.intake.routes.common import accepted, accepted_answer
from tests.support.samples import sample_event


def accepted_count(kind: str) -> float:
    labels = {"kind": kind, "outcome": "accepted", "reason": ""}
    return REGISTRY.get_sample_value("vc_intake_records_total", labels) or 0.0


def test_a_record_alone_gets_the_answer_a_batch_gives_and_is_counted() -> None:
    event = sample_event("lecture.held")
    before = accepted_count("lecture")
    answer = accepted("lecture", event, Stored(partition=2, offset=41))
    assert accepted_count("lecture") == before + 1
    assert answer == accepted_answer("lecture", event, Stored(partition=2, offset=41))
    assert accepted_count("lecture") == before + 1, "the batch counts its records itself, once per kind"
    assert answer == {
        "id": str(event.id),
        "kind": "lecture",
        "status": "accepted",
        "topic": "village-services",
        "partition": 2,
        "offset": 41,
        "recorded_at": event.recorded_at.isoformat() if event.recorded_at else None,
    }


def test_recorded_at_is_answered_in_each_records_own_zone() -> None:
    in_utc = sample_event("lecture.held")
    assert in_utc.recorded_at is not None
    in_shanghai = replace(in_utc, recorded_at=in_utc.recorded_at.astimezone(ZoneInfo("Asia/Shanghai")))
    assert in_shanghai.recorded_at == in_utc.recorded_at, "the same instant, written in two zones"
    answered = [accepted_answer("lecture", event, Stored(0, 0)) for event in (in_utc, in_shanghai, in_utc)]
    assert [answer["recorded_at"][-6:] for answer in answered] == ["+00:00", "+08:00", "+00:00"]
