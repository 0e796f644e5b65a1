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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from contracts.events import EventPayload
from plumbing.postgres import Connection
from plumbing.projection import ApplyBatch, Batch, ConsumedEvent

S = TypeVar("S")


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

    def each(self, table: dict[type[EventPayload], HandleOne[S]], topic: str | None = None) -> None:
        """Registers one handler per type, applied event by event in the batch's order across all of them
        (for facts whose order matters across types, e.g. the registry's one total order)."""

        async def in_order(conn: Connection, items: list[ConsumedEvent], context: BatchContext[S]) -> None:
            for item in items:
                kind = next(kind for kind in type(item.event.data).__mro__ if kind in table)
                await table[kind](conn, item, item.event.data, context)

        self.on(*table, topic=topic)(in_order)

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
