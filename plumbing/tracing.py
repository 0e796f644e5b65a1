"""W3C Trace Context and OpenTelemetry spans, from the HTTP request through Kafka to every projection.

One record can be followed from the request that carried it to each projection that applied it. The
FastAPI instrumentation opens a server span per request (continuing the caller's `traceparent`, or
starting a trace); the request's log lines carry its ids and the answer its `traceparent`. Intake opens
a producer span around each publish and writes that span's `traceparent` into the Kafka records'
headers, outside the CloudEvents attributes and the payload, so it changes neither an event's content
nor its fingerprint. Each projection logs the record's trace ids with what it did to it and, when spans
are exported, opens one span per applied record as a child of that producer span.

Spans leave the process only when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: OTLP over HTTP, in batches, from a background thread.
Without it there is no exporter and no per-record span, only the ids. Sampling is the SDK's
(`OTEL_TRACES_SAMPLER`, default `parentbased_always_on`): a projection makes spans only for records
whose trace was sampled, so the sampling chosen at the edge sets the consumers' cost too. Whatever an
instrumentation records, only the attributes named in `KEPT_ATTRIBUTES` are exported
(`WithoutPersonalData`): no query strings, no bodies, no exception texts (they can quote request values).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Status, TraceFlags, Tracer

HEADER = "traceparent"
_FORMAT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
UNTRACED_PATHS = "/healthz$,/readyz$,/metrics$"  # probes and scrapes: no spans

# Everything a span may carry out of the process. The route template, never the path or the query
# (`/v1/x?name=...`); the method and status; the Kafka coordinates and the event's id and type.
KEPT_ATTRIBUTES = frozenset(
    {
        "http.method",
        "http.request.method",
        "http.route",
        "http.status_code",
        "http.response.status_code",
        "http.scheme",
        "url.scheme",
        "http.flavor",
        "network.protocol.version",
        "messaging.system",
        "messaging.operation.type",
        "messaging.destination.name",
        "messaging.destination.partition.id",
        "messaging.kafka.offset",
        "messaging.consumer.group.name",
        "messaging.message.id",
        "messaging.batch.message_count",
        "cloudevents.event_id",
        "cloudevents.event_type",
    }
)
EXCEPTION_TYPE = "exception.type"


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

    def as_parent(self) -> Context:
        """An OpenTelemetry context whose (remote) parent span is this one."""
        remote = SpanContext(
            int(self.trace_id, 16),
            int(self.span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED if self.sampled else TraceFlags.DEFAULT),
        )
        return trace.set_span_in_context(NonRecordingSpan(remote))


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
    """Ids for a request no span covers (probes): a child of the caller's trace, or a new one."""
    parent = parse(incoming)
    return parent.child() if parent else TraceContext(secrets.token_hex(16), secrets.token_hex(8))


def of_span(context: SpanContext) -> TraceContext | None:
    if not context.is_valid:
        return None
    return TraceContext(
        trace.format_trace_id(context.trace_id),
        trace.format_span_id(context.span_id),
        context.trace_flags.sampled,
    )


def current() -> TraceContext | None:
    """The ids of the current OpenTelemetry span (the request's, the publish's), if there is one."""
    return of_span(trace.get_current_span().get_span_context())


def kafka_headers() -> list[tuple[str, bytes]]:
    """The header to add to a record produced now: the current span's `traceparent`."""
    context = current()
    return [(HEADER, context.traceparent.encode())] if context else []


def from_kafka_headers(headers: Iterable[tuple[str, bytes]] | None) -> TraceContext | None:
    for name, value in headers or ():
        if name == HEADER:
            return parse(value)
    return None


def exporting_configured(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) for name in ENDPOINT_VARIABLES)


class Tracing:
    """One service's spans: ids always (answered, logged, written to Kafka); exported only when asked."""

    def __init__(self, service: str, exporter: Callable[[], SpanExporter] | None = None) -> None:
        self.service = service
        self._exporter = exporter
        self.provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service}),
            shutdown_on_exit=False,  # stopped by the service's lifespan
        )
        self.tracer: Tracer = self.provider.get_tracer("villagecounsel")
        self._started = False

    @classmethod
    def from_environment(cls, service: str) -> Tracing:
        """OTLP over HTTP when the standard endpoint variable is set; the exporter reads the rest of
        `OTEL_EXPORTER_OTLP_*` (headers, timeout, compression) itself."""
        if not exporting_configured(os.environ):
            return cls(service)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(service, OTLPSpanExporter)

    @property
    def exporting(self) -> bool:
        return self._exporter is not None

    @property
    def record_tracer(self) -> Tracer | None:
        """The tracer for per-record spans in a projection, or None when nothing would be exported."""
        return self.tracer if self.exporting else None

    def start(self) -> None:
        """Begin exporting (a background thread sends the batches); in the lifespan, not at construction."""
        if self._exporter is not None and not self._started:
            self.provider.add_span_processor(BatchSpanProcessor(WithoutPersonalData(self._exporter())))
            self._started = True

    def stop(self) -> None:
        """Send what is still queued and stop the exporting thread."""
        if self._started:
            self.provider.shutdown()
            self._started = False


def _kept(attributes: Mapping[str, object] | None) -> dict[str, object]:
    return {key: value for key, value in (attributes or {}).items() if key in KEPT_ATTRIBUTES}


def without_personal_data(span: ReadableSpan) -> ReadableSpan:
    """The span with only the attributes in `KEPT_ATTRIBUTES`, exceptions by type only, and no status text."""
    events = [
        Event(event.name, {EXCEPTION_TYPE: event.attributes[EXCEPTION_TYPE]}, event.timestamp)
        if event.name == "exception" and event.attributes and EXCEPTION_TYPE in event.attributes
        else Event(event.name, _kept(event.attributes), event.timestamp)  # type: ignore[arg-type]
        for event in span.events
    ]
    links = [Link(link.context, _kept(link.attributes)) for link in span.links]  # type: ignore[arg-type]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_kept(span.attributes),  # type: ignore[arg-type]
        events=events,
        links=links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class WithoutPersonalData(SpanExporter):
    """Hands the exporter each span with only the attributes that cannot hold personal data."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([without_personal_data(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
