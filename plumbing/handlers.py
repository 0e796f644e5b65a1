"""One shape for every projection: handlers registered per event type, dispatched by the runtime.

A projection module declares `handlers = Handlers[State]()` and registers a handler per kind of event
with `@handlers.on(EventType, ...)`; the runtime calls `apply` with each batch (in one transaction), and
`apply` runs the handlers in the order they were registered, each with the batch's events of its types in
the batch's order. A handler takes (connection, its events, the batch's context): the context carries the
batch (its conflicts, the time) and a state made fresh for each batch by the projection's `state`
factory (an accumulator, a key), which `finish` may write at the end.

The order of registration is the order of application, which is what a projection's correctness rests on
(registry facts before the records they qualify, records before the voids that take them back).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from contracts.events import AdvisorRegistered, EventPayload, registrations_permitted
from plumbing.postgres import Connection
from plumbing.projection import ApplyBatch, Batch, ConsumedEvent

S = TypeVar("S")
K = TypeVar("K")
P = TypeVar("P", bound=EventPayload)


@dataclass
class BatchContext(Generic[S]):
    """What every handler of one batch shares."""

    batch: Batch
    state: S


Handle = Callable[[Connection, list[ConsumedEvent], BatchContext[S]], Awaitable[None]]
# One event at a time: (connection, the consumed event, its payload as the registered type, the context).
HandleOne = Callable[[Connection, ConsumedEvent, Any, BatchContext[S]], Awaitable[None]]


@dataclass(frozen=True)
class _Registered(Generic[S]):
    types: tuple[type[EventPayload], ...]
    topic: str | None
    handle: Handle[S]


class Handlers(Generic[S]):
    """The handlers of a projection, in the order they apply."""

    def __init__(self) -> None:
        self._registered: list[_Registered[S]] = []
        # Which registrations take a payload class, asked once per class: `isinstance` on a pydantic model
        # goes through ABCMeta (4 % of a dashboard rebuild's samples, every handler asking of every event).
        self._takers: dict[type[EventPayload], tuple[bool, ...]] = {}

    def on(self, *types: type[EventPayload], topic: str | None = None) -> Callable[[Handle[S]], Handle[S]]:
        """Registers the decorated function for events of these types (of this topic only, if given)."""
        if not types:
            raise ValueError("a handler names the event types it handles")

        def register(handle: Handle[S]) -> Handle[S]:
            self._registered.append(_Registered(types, topic, handle))
            self._takers.clear()
            return handle

        return register

    def each(
        self,
        table: dict[type[EventPayload], HandleOne[S]],
        topic: str | None = None,
        runs: dict[type[EventPayload], Handle[S]] | None = None,
    ) -> None:
        """Registers one handler per type, applied event by event in the batch's order across all of them
        (for facts whose order matters across types, e.g. the registry's one total order).

        `runs`: handlers that take many events at once. Consecutive events of these types (nothing of
        `table`'s types between them) go to them together: each type's events in their order, in one call,
        type after type in `runs`' order. So the types in `runs` must commute with each other (none reads
        or writes what another writes), and each handler must leave what its events applied one by one
        would leave (`last_of_each`). A rebuild's registry is long stretches of regions, advisors and their
        terms: a statement per stretch and type instead of a round trip per event."""
        together = runs or {}
        overlap = set(table) & set(together)
        if overlap:
            raise ValueError(
                f"a type is handled one by one or in runs, not both: {sorted(map(str, overlap))}"
            )

        def kind_of(item: ConsumedEvent) -> type[EventPayload]:
            return next(kind for kind in type(item.event.data).__mro__ if kind in table or kind in together)

        async def in_order(conn: Connection, items: list[ConsumedEvent], context: BatchContext[S]) -> None:
            for in_runs, stretch in itertools.groupby(items, key=lambda item: kind_of(item) in together):
                if in_runs:
                    for kind, run in by_kind(stretch, kind_of, list(together)):
                        await together[kind](conn, run, context)
                else:
                    for item in stretch:
                        await table[kind_of(item)](conn, item, item.event.data, context)

        self.on(*table, *together, topic=topic)(in_order)

    def _taken_by(self, kind: type[EventPayload]) -> tuple[bool, ...]:
        found = self._takers.get(kind)
        if found is None:
            found = self._takers[kind] = tuple(issubclass(kind, r.types) for r in self._registered)
        return found

    def handled(self) -> frozenset[type[EventPayload]]:
        return frozenset(kind for registered in self._registered for kind in registered.types)

    def apply(
        self,
        state: Callable[[], S],
        finish: Callable[[Connection, BatchContext[S]], Awaitable[None]] | None = None,
    ) -> ApplyBatch:
        """The projection's apply step: every handler in order, then `finish`."""

        async def apply_batch(conn: Connection, batch: Batch) -> None:
            context = BatchContext(batch, state())
            takers = [(item, self._taken_by(type(item.event.data))) for item in batch.events]
            for index, registered in enumerate(self._registered):
                items = [
                    item
                    for item, taken in takers
                    if taken[index] and (registered.topic is None or item.topic == registered.topic)
                ]
                if items:
                    await registered.handle(conn, items, context)
            if finish is not None:
                await finish(conn, context)

        return apply_batch


def by_kind(
    items: Iterable[ConsumedEvent], kind_of: Callable[[ConsumedEvent], K], kinds: Sequence[K]
) -> list[tuple[K, list[ConsumedEvent]]]:
    """The items of each kind, in their order, the kinds in the order given (those with items only)."""
    found: dict[K, list[ConsumedEvent]] = {kind: [] for kind in kinds}
    for item in items:
        found[kind_of(item)].append(item)
    return [(kind, found[kind]) for kind in kinds if found[kind]]


def payloads(items: Sequence[ConsumedEvent], payload: type[P]) -> list[P]:
    """The payloads of a run of one type, in order."""
    found = []
    for item in items:
        data = item.event.data
        if not isinstance(data, payload):
            raise TypeError(f"{item.event.type} in a run of {payload.__name__}")
        found.append(data)
    return found


def last_of_each(
    items: Sequence[ConsumedEvent], payload: type[P], key: Callable[[P], Hashable]
) -> list[tuple[ConsumedEvent, P]]:
    """The events of a run (with their payloads), the last one of each key only, in the order of the keys:
    what a run of upserts that each set every column leaves, applied in one statement (PostgreSQL refuses to
    update a row twice in one INSERT ... ON CONFLICT), its rows locked in key order."""
    last = {key(data): (item, data) for item, data in zip(items, payloads(items, payload), strict=True)}
    return [last[found] for found in sorted(last, key=_sortable)]


def _sortable(key: Hashable) -> tuple[str, ...]:
    return tuple(map(str, key)) if isinstance(key, tuple) else (str(key),)


async def advisor_registrations(
    conn: Connection, items: Sequence[ConsumedEvent]
) -> tuple[list[tuple[AdvisorRegistered, str | None]], int]:
    """A run of advisor registrations against a projection's `advisors (advisor_id, owner_region)`, as one
    by one (`registrations_permitted`): the registration to write for each advisor with its owner, in
    advisor order, and how many were refused."""
    registrations = payloads(items, AdvisorRegistered)
    rows = await conn.fetch(
        "SELECT advisor_id, owner_region FROM advisors WHERE advisor_id = ANY($1::text[])",
        sorted({data.advisor_id for data in registrations}),
    )
    kept, refused = registrations_permitted(
        {row["advisor_id"]: row["owner_region"] for row in rows}, registrations
    )
    return [kept[advisor] for advisor in sorted(kept)], refused
