"""W3C traceparent: taken from the HTTP request (or started), answered, bound to the request's log lines,
written by intake into the Kafka record's headers, and read back by the consumers (issue 15)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from contracts.envelope import KafkaRecord
from plumbing import tracing
from plumbing.http import install_common
from plumbing.kafka import KafkaConnection
from plumbing.logs import configure_logging, get_logger
from plumbing.projection import ConsumedEvent, _trace_fields, record_spans
from plumbing.tracing import Tracing
from services.intake.publisher import Publisher, Stored
from tests.support.deploy import OVERLAYS, ROOT
from tests.support.samples import sample_event
from tests.unit.test_deploy_manifests import rendered, selects

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # an all-zero trace id is invalid
        f"00-{TRACE}-{'0' * 16}-01",
        f"ff-{TRACE}-00f067aa0ba902b7-01",  # version ff is invalid
        f"00-{TRACE.upper()}-00f067aa0ba902b7-01",  # W3C: lower-case hex only
    ],
)
def test_an_invalid_traceparent_is_ignored_and_a_new_trace_started(value: str | None) -> None:
    assert tracing.parse(value) is None
    started = tracing.start(value)
    assert started.trace_id != TRACE
    assert tracing.parse(started.traceparent) == started


def test_a_valid_traceparent_continues_the_callers_trace_in_a_span_of_its_own() -> None:
    parent = tracing.parse(PARENT)
    assert parent == tracing.TraceContext(TRACE, "00f067aa0ba902b7", True)
    own = tracing.start(PARENT.encode())
    assert own.trace_id == TRACE
    assert own.span_id != "00f067aa0ba902b7"
    assert tracing.from_kafka_headers([("ce_id", b"x"), ("traceparent", own.traceparent.encode())]) == own
    assert _trace_fields(own) == {"trace_id": TRACE, "parent_span_id": own.span_id}
    assert _trace_fields(None) == {}


async def test_the_http_answer_and_log_lines_carry_the_trace(capsys: pytest.CaptureFixture[str]) -> None:
    app = FastAPI()
    seen: dict[str, Any] = {}

    async def ready() -> dict[str, bool]:
        return {}

    @app.get("/probe")
    async def probe() -> dict[str, str]:
        seen["headers"] = tracing.kafka_headers()
        get_logger("probe").info("inside")
        return {}

    install_common(app, "trace-test", ready)
    configure_logging("trace-test", "INFO")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        answer = await client.get("/probe", headers={"traceparent": PARENT})
        fresh = await client.get("/probe")
    own = tracing.parse(answer.headers["traceparent"])
    assert own is not None
    assert own.trace_id == TRACE
    assert own.span_id != "00f067aa0ba902b7"
    new = tracing.parse(fresh.headers["traceparent"])
    assert new is not None
    assert new.trace_id != TRACE
    assert seen["headers"] == [("traceparent", fresh.headers["traceparent"].encode())]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    inside = [line for line in lines if line["event"] == "inside"]
    assert [line["trace_id"] for line in inside] == [TRACE, new.trace_id]
    assert tracing.current() is None, "the trace ends with the request"


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[list[tuple[str, bytes]]] = []

    async def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> Any:
        self.sent.append(headers)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(type("Meta", (), {"partition": 0, "offset": len(self.sent)})())
        return done


def memory_tracing(service: str) -> tuple[Tracing, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    spans = Tracing(service, lambda: memory)
    spans.start()
    return spans, memory


def finished(spans: Tracing, memory: InMemorySpanExporter) -> list[ReadableSpan]:
    spans.provider.force_flush()
    return list(memory.get_finished_spans())


async def test_intake_writes_its_producer_spans_traceparent_into_the_kafka_headers() -> None:
    spans, memory = memory_tracing("intake")
    publisher = Publisher(KafkaConnection("unused:1"), 1, 3, spans.tracer)
    producer = FakeProducer()
    publisher._producer = cast(Any, producer)
    record = KafkaRecord(
        topic="village-services", key=b"k", value=b"{}", headers=[("ce_id", b"1"), ("ce_type", b"t")]
    )
    with spans.tracer.start_as_current_span(
        "POST /v1/consultations", context=tracing.parse(PARENT).as_parent()
    ):  # type: ignore[union-attr]
        results = await publisher.publish_all([record])
    await publisher.publish_all([record, record])  # outside a request: a trace of its own
    try:
        exported = {span.name: span for span in finished(spans, memory)}
    finally:
        spans.stop()
    assert isinstance(results[0], Stored)
    headers = dict(producer.sent[0])
    assert headers["ce_id"] == b"1"
    assert record.headers == [("ce_id", b"1"), ("ce_type", b"t")], "the record itself is not changed"
    sent = tracing.parse(headers["traceparent"])
    server = exported["POST /v1/consultations"]
    producer_span = [span for span in memory.get_finished_spans() if span.kind == SpanKind.PRODUCER]
    first, batch = producer_span
    assert sent == tracing.of_span(first.context), "the header is the producer span's context"
    assert first.parent is not None
    assert first.parent.span_id == server.context.span_id
    assert server.parent is not None
    assert trace.format_span_id(server.parent.span_id) == "00f067aa0ba902b7"
    assert trace.format_trace_id(first.context.trace_id) == TRACE
    assert first.attributes is not None
    assert first.attributes["messaging.message.id"] == "1"
    assert first.attributes["cloudevents.event_type"] == "t"
    assert first.attributes["messaging.destination.name"] == "village-services"
    assert batch.parent is None
    assert batch.attributes is not None
    assert batch.attributes["messaging.batch.message_count"] == 2
    assert [tracing.parse(dict(sent)["traceparent"]) for sent in producer.sent[1:]] == [
        tracing.of_span(batch.context)
    ] * 2


async def test_the_server_span_continues_the_callers_trace_and_keeps_no_query_or_personal_text() -> None:
    app = FastAPI()
    spans, memory = memory_tracing("trace-test")

    async def ready() -> dict[str, bool]:
        return {}

    @app.get("/v1/people/{code}")
    async def person(code: str, name: str, phone: str = "") -> dict[str, str]:
        if phone:
            raise RuntimeError(f"no person called {name}")  # an exception text quoting a request value
        return {}

    install_common(app, "trace-test", ready, spans=spans)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://test"
    ) as client:
        answer = await client.get("/v1/people/37?name=张三", headers={"traceparent": PARENT})
        failed = await client.get("/v1/people/37?name=张三&phone=13800000000")
        await client.get("/healthz")
    try:
        exported = finished(spans, memory)
    finally:
        spans.stop()
    assert (answer.status_code, failed.status_code) == (200, 500)
    server, failing = exported  # none for the probe, none per ASGI message
    assert server.kind == SpanKind.SERVER
    assert server.name == "GET /v1/people/{code}"
    assert tracing.parse(answer.headers["traceparent"]) == tracing.of_span(server.context)
    assert trace.format_trace_id(server.context.trace_id) == TRACE
    assert server.parent is not None
    assert trace.format_span_id(server.parent.span_id) == "00f067aa0ba902b7"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/people/{code}"
    assert failing.context.trace_id != server.context.trace_id, "no traceparent: a trace of its own"
    assert failing.status.status_code == StatusCode.ERROR
    assert [dict(event.attributes or {}) for event in failing.events] == [{"exception.type": "RuntimeError"}]
    for span in exported:
        assert set(span.attributes or {}) <= tracing.KEPT_ATTRIBUTES
        text = repr((span.attributes, [(event.name, event.attributes) for event in span.events], span.status))
        for personal in ("张三", "%E5%BC%A0", "13800000000", "no person called"):
            assert personal not in text


def test_an_instrumentations_attributes_are_dropped_unless_kept() -> None:
    span = ReadableSpan(
        name="GET /v1/x",
        context=SpanContext(1, 2, is_remote=False),
        attributes={
            "http.route": "/v1/x",
            "http.target": "/v1/x?name=张三",
            "http.url": "http://h/v1/x?name=张三",
            "url.query": "name=张三",
            "http.user_agent": "x",
        },
        events=[Event("exception", {"exception.type": "ValueError", "exception.message": "张三"})],
        links=[Link(SpanContext(3, 4, is_remote=True), {"note": "张三", "messaging.message.id": "e"})],
        status=Status(StatusCode.ERROR, "ValueError: 张三"),
    )
    kept = tracing.without_personal_data(span)
    assert kept.attributes == {"http.route": "/v1/x"}
    assert [event.attributes for event in kept.events] == [{"exception.type": "ValueError"}]
    assert [link.attributes for link in kept.links] == [{"messaging.message.id": "e"}]
    assert kept.status.status_code == StatusCode.ERROR
    assert kept.status.description is None
    assert (kept.context, kept.name) == (span.context, span.name)


def test_a_projection_makes_a_span_per_applied_record_of_a_sampled_trace_only() -> None:
    spans, memory = memory_tracing("ledger")
    producer_span = tracing.TraceContext(TRACE, "00f067aa0ba902b7", sampled=True)
    unsampled = tracing.TraceContext("1" * 32, "2" * 16, sampled=False)
    event = sample_event("consultation.recorded")
    applied = [
        ConsumedEvent(event, "village-services", 3, 41, b"", producer_span),
        ConsumedEvent(sample_event("consultation.recorded"), "village-services", 3, 42, b"", unsampled),
        ConsumedEvent(sample_event("consultation.recorded"), "village-services", 3, 43, b"", None),
    ]
    record_spans(spans.tracer, "ledger", applied, started_ns=1_000, batch_size=3)
    try:
        [span] = finished(spans, memory)
    finally:
        spans.stop()
    assert span.kind == SpanKind.CONSUMER
    assert tracing.of_span(span.context) is not None
    assert trace.format_trace_id(span.context.trace_id) == TRACE
    assert span.parent is not None
    assert trace.format_span_id(span.parent.span_id) == "00f067aa0ba902b7"
    assert span.start_time == 1_000
    assert span.attributes == {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": "village-services",
        "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 41,
        "messaging.consumer.group.name": "ledger",
        "messaging.message.id": str(event.id),
        "messaging.batch.message_count": 3,
        "cloudevents.event_id": str(event.id),
        "cloudevents.event_type": "consultation.recorded",
    }


@pytest.mark.parametrize(
    ("environ", "exporting"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ],
)
def test_spans_are_exported_only_when_an_otlp_endpoint_is_set(
    environ: dict[str, str], exporting: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "ledger-eu")
    spans = Tracing.from_environment("ledger")
    assert spans.exporting is exporting
    assert (spans.record_tracer is not None) is exporting
    assert spans.provider.resource.attributes["service.name"] == "ledger-eu"


SERVICES = ("intake", "ledger", "assessment", "dashboard")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_in_the_cluster_sends_its_spans_to_the_overlays_collector(overlay: str) -> None:
    docs = rendered(overlay)
    config = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "villagecounsel-tracing"
    )
    endpoint = urlsplit(config["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.scheme == "http"
    assert endpoint.port == 4318
    assert config["data"]["OTEL_TRACES_SAMPLER"].startswith("parentbased_")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    for deployment in (d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] in SERVICES):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["OTEL_SERVICE_NAME"] == deployment["metadata"]["name"]
        assert {"configMapRef": {"name": "villagecounsel-tracing"}} in container["envFrom"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(
            port["port"] == 4318
            for policy in policies
            if selects(policy, labels)
            for rule in policy["spec"].get("egress", [])
            for port in rule.get("ports", [])
        ), deployment["metadata"]["name"]


def test_compose_runs_a_pinned_trace_receiver_and_every_service_sends_to_it() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    image, tag = services["jaeger"]["image"].rsplit(":", 1)
    assert image == "jaegertracing/jaeger"
    assert tag[0].isdigit(), "a version, not latest"
    assert "--set=receivers.otlp.protocols.http.endpoint=0.0.0.0:4318" in services["jaeger"]["command"]
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        assert env["OTEL_SERVICE_NAME"] == name
