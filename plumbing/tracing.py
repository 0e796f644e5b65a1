"""W3C Trace Context (`traceparent`) from the HTTP request into the Kafka record and every consumer's logs.

One record can be followed from the request that carried it to each projection that applied it: the
HTTP middleware takes the caller's `traceparent` (or starts a trace), binds `trace_id` and `span_id` to
the request's log lines and answers with its own `traceparent`; intake writes that `traceparent` into
the Kafka record's headers; each projection reads it back and logs it with what it did to the record
(`event_applied` at DEBUG, `dead_lettered`, conflicts). The header is outside the CloudEvents
attributes and the payload, so it changes neither an event's content nor its fingerprint: a retry with
another trace is still the same event. No spans are exported (there is no OpenTelemetry collector in the
deployment yet); the ids are the W3C ones, so a collector added later joins them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass

HEADER = "traceparent"
_FORMAT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self) -> TraceContext:
        """This process's own span in the caller's trace."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.sampled)


def parse(value: str | bytes | None) -> TraceContext | None:
    """A valid `traceparent`, or None (W3C: an invalid one is ignored, and a new trace started)."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    found = _FORMAT.match(text.strip())
    if found is None:
        return None
    version, trace_id, span_id, flags = found.groups()
    if version == "ff" or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id, bool(int(flags, 16) & 1))


def start(incoming: str | bytes | None) -> TraceContext:
    """The span of a request: a child of the caller's trace, or the root of a new one."""
    parent = parse(incoming)
    return parent.child() if parent else TraceContext(secrets.token_hex(16), secrets.token_hex(8))


_current: ContextVar[TraceContext | None] = ContextVar("villagecounsel_trace", default=None)


def current() -> TraceContext | None:
    return _current.get()


def use(context: TraceContext | None) -> Token[TraceContext | None]:
    """Make `context` the current one; returns the token for `reset`."""
    return _current.set(context)


def reset(token: Token[TraceContext | None]) -> None:
    _current.reset(token)


def kafka_headers() -> list[tuple[str, bytes]]:
    """The header to add to a record produced now (none outside a traced request)."""
    context = current()
    return [(HEADER, context.traceparent.encode())] if context else []


def from_kafka_headers(headers: Iterable[tuple[str, bytes]] | None) -> TraceContext | None:
    for name, value in headers or ():
        if name == HEADER:
            return parse(value)
    return None
