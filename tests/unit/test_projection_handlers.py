"""One projection shape (issue 16): handlers registered per event type, in the order they apply; the
dispatch is pure, so it is tested here without a broker or a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.events import (
    AdvisorAssigned,
    AdvisorReleased,
    ConsultationRecorded,
    RecordVoided,
    RegionRegistered,
    ServiceRecord,
)
from plumbing.handlers import BatchContext, Handlers, last_of_each, payloads
from plumbing.projection import Batch, ConsumedEvent
from tests.support.samples import sample_event

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def consumed(event_type: str, topic: str, offset: int, **fields: Any) -> ConsumedEvent:
    return ConsumedEvent(sample_event(event_type, **fields), topic, 0, offset, b"")


BATCH = Batch(
    events=[
        consumed("consultation.recorded", "village-services", 1),
        consumed("advisor.assigned", "registry", 2),
        consumed("record.voided", "village-services", 3),
        consumed("region.registered", "registry", 4),
        consumed("consultation.recorded", "village-services", 5),
    ],
    conflicts=[],
    now=NOW,
)


async def test_handlers_apply_in_the_order_registered_each_with_its_types_in_batch_order() -> None:
    seen: list[tuple[str, list[int]]] = []
    handlers: Handlers[list[str]] = Handlers()

    @handlers.on(AdvisorAssigned, RegionRegistered, topic="registry")
    async def registry(_conn: Any, items: list[ConsumedEvent], context: BatchContext[list[str]]) -> None:
        seen.append(("registry", [item.offset for item in items]))
        context.state.append("registry")

    @handlers.on(ServiceRecord)
    async def records(_conn: Any, items: list[ConsumedEvent], context: BatchContext[list[str]]) -> None:
        seen.append(("records", [item.offset for item in items]))
        context.state.append("records")

    @handlers.on(RecordVoided)
    async def voids(_conn: Any, items: list[ConsumedEvent], _context: BatchContext[list[str]]) -> None:
        seen.append(("voids", [item.offset for item in items]))

    finished: list[list[str]] = []

    async def finish(_conn: Any, context: BatchContext[list[str]]) -> None:
        finished.append(context.state)

    apply = handlers.apply(state=list, finish=finish)
    await apply(None, BATCH)  # type: ignore[arg-type]
    # A void is a service record too: the records handler sees it in its place, the voids handler after.
    assert seen == [("registry", [2, 4]), ("records", [1, 3, 5]), ("voids", [3])]
    assert finished == [["registry", "records"]]
    await apply(None, BATCH)  # type: ignore[arg-type]
    assert finished[1] == ["registry", "records"], "the state is made fresh for each batch"
    assert handlers.handled() == {AdvisorAssigned, RegionRegistered, ServiceRecord, RecordVoided}


async def test_each_takes_events_one_by_one_in_batch_order_by_their_most_specific_type() -> None:
    seen: list[tuple[str, int]] = []
    handlers: Handlers[None] = Handlers()

    async def record(_conn: Any, item: ConsumedEvent, _data: Any, _context: BatchContext[None]) -> None:
        seen.append(("record", item.offset))

    async def void(
        _conn: Any, item: ConsumedEvent, _data: RecordVoided, _context: BatchContext[None]
    ) -> None:
        seen.append(("void", item.offset))

    handlers.each({ServiceRecord: record, RecordVoided: void}, topic="village-services")
    await handlers.apply(state=lambda: None)(None, BATCH)  # type: ignore[arg-type]
    assert seen == [("record", 1), ("void", 3), ("record", 5)]
    assert ConsultationRecorded in {type(item.event.data) for item in BATCH.events}


def test_a_handler_names_what_it_handles() -> None:
    with pytest.raises(ValueError, match="names the event types"):
        Handlers[None]().on()


async def test_runs_take_each_stretch_of_their_types_at_once_and_the_rest_one_by_one_in_order() -> None:
    """`each(..., runs=...)`: consecutive events of the run types go together (each type's in order, the
    types in the order of `runs`); an event handled one by one cuts the stretch."""
    seen: list[tuple[str, list[int]]] = []
    handlers: Handlers[None] = Handlers()

    async def one(_conn: Any, item: ConsumedEvent, _data: Any, _context: BatchContext[None]) -> None:
        seen.append(("released", [item.offset]))

    def run(name: str) -> Any:
        async def handle(_conn: Any, items: list[ConsumedEvent], _context: BatchContext[None]) -> None:
            seen.append((name, [item.offset for item in items]))

        return handle

    handlers.each(
        {AdvisorReleased: one},
        topic="registry",
        runs={RegionRegistered: run("regions"), AdvisorAssigned: run("terms")},
    )
    events = [
        consumed("advisor.assigned", "registry", 1),
        consumed("region.registered", "registry", 2),
        consumed("advisor.assigned", "registry", 3),
        consumed("region.registered", "registry", 4),
        consumed("advisor.released", "registry", 5),
        consumed("advisor.assigned", "registry", 6),
        consumed("consultation.recorded", "village-services", 7),
        consumed("advisor.assigned", "registry", 8),
    ]
    await handlers.apply(state=lambda: None)(None, Batch(events=events, conflicts=[], now=NOW))  # type: ignore[arg-type]
    # the consultation is not this registration's: it does not cut the stretch
    assert seen == [("regions", [2, 4]), ("terms", [1, 3]), ("released", [5]), ("terms", [6, 8])]
    assert handlers.handled() == {AdvisorReleased, RegionRegistered, AdvisorAssigned}
    with pytest.raises(ValueError, match="one by one or in runs"):
        handlers.each({RegionRegistered: one}, runs={RegionRegistered: run("regions")})


def test_last_of_each_keeps_the_last_event_of_every_key_in_key_order() -> None:
    events = [
        consumed("region.registered", "registry", 1, code="370101001001", name="甲", parent_code="370101001"),
        consumed("region.registered", "registry", 2, code="370101001002", name="乙", parent_code="370101001"),
        consumed("region.registered", "registry", 3, code="370101001001", name="丙", parent_code="370101001"),
    ]
    kept = last_of_each(events, RegionRegistered, lambda data: data.code)
    assert [(item.offset, data.name) for item, data in kept] == [(3, "丙"), (2, "乙")]
    with pytest.raises(TypeError, match="in a run of AdvisorAssigned"):
        last_of_each(events, AdvisorAssigned, lambda data: data.advisor_id)
    assert [data.name for data in payloads(events, RegionRegistered)] == ["甲", "乙", "丙"]
