"""One record followed by its trace: the request's `traceparent` reaches the Kafka record through intake,
a projection's log line for that record, and the spans every service exports over OTLP, on the real
broker and PostgreSQL (issue 15)."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from devstack.broker_security import ADMIN
from plumbing import tracing
from plumbing.clock import ManualClock, SystemClock
from plumbing.logs import configure_logging
from plumbing.service import ProjectionHost
from plumbing.settings import ProjectionSettings
from services.assessment.app import create_app as create_assessment
from services.assessment.settings import AssessmentSettings
from services.dashboard.app import create_app as create_dashboard
from services.dashboard.settings import DashboardSettings
from services.intake.app import create_app as create_intake
from services.ledger.app import create_app as create_ledger
from tests.integration.test_intake import (
    COUNTY,
    NOW,
    intake_settings,
    record,
    records_by_id,
    running_intake,
)
from tests.integration.test_ledger import ledger_settings, projection_settings
from tests.support.counting import counting_projection
from tests.support.infrastructure import Infrastructure
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.waiting import eventually

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
async def traced_intake(infrastructure: Infrastructure, topics: None) -> AsyncIterator[httpx.AsyncClient]:
    settings = intake_settings(
        infrastructure.kafka_settings("intake"), database_url=infrastructure.database_url
    )
    async with running_intake(settings) as client:
        yield client


async def test_a_records_trace_runs_from_the_request_to_the_projections_log(
    traced_intake: httpx.AsyncClient,
    infrastructure: Infrastructure,
    tag: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = record("consultation")
    answer = await traced_intake.post(
        "/v1/consultations", json=body, headers={**COUNTY, "traceparent": f"00-{TRACE}-b7ad6b7169203331-01"}
    )
    assert answer.status_code == 202, answer.text
    intake_span = tracing.parse(answer.headers["traceparent"])
    assert intake_span is not None
    assert intake_span.trace_id == TRACE

    stored = await records_by_id(infrastructure.kafka, "village-services", {body["id"]})
    sent = tracing.from_kafka_headers(stored[body["id"]].headers)  # the producer span, the request's child
    assert sent is not None
    assert sent.trace_id == TRACE
    assert sent.span_id != intake_span.span_id

    configure_logging("tracing-test", "DEBUG")
    settings = ProjectionSettings(
        **infrastructure.kafka_settings(ADMIN), database_url=infrastructure.database_url, poll_timeout_ms=200
    )
    host = ProjectionHost(counting_projection(tag, tag), settings, SystemClock())
    await host.start()
    seen: list[dict[str, object]] = []

    async def applied_lines() -> list[dict[str, object]]:
        for line in capsys.readouterr().out.splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("event") == "event_applied" and entry.get("event_id") == body["id"]:
                    seen.append(entry)
        return seen

    try:
        lines = await eventually(applied_lines, bool, seconds=60, what="the projection's line for the record")
    finally:
        await host.stop()
        configure_logging("tracing-test", "INFO")
    assert lines[0]["trace_id"] == TRACE
    assert lines[0]["parent_span_id"] == sent.span_id
    assert lines[0]["projection"] == tag


PROJECTIONS = ("ledger", "assessment", "dashboard")
SECRETS = {"name": "王秘密", "phone": "13912345678", "summary": "宅基地纠纷细节保密"}


async def test_one_records_spans_run_from_the_request_through_kafka_to_every_projection(
    infrastructure: Infrastructure, topics: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace_id = secrets.token_hex(16)  # this test's own: other tests' records carry TRACE
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # ms: the test need not wait 5 s per batch
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        clock = ManualClock(NOW)
        apps = [
            create_intake(
                intake_settings(
                    infrastructure.kafka_settings("intake"), database_url=infrastructure.database_url
                ),
                clock,
            ),
            create_ledger(ledger_settings(infrastructure), clock),
            create_assessment(AssessmentSettings(**projection_settings(infrastructure, "assessment")), clock),
            create_dashboard(DashboardSettings(**projection_settings(infrastructure, "dashboard")), clock),
        ]
        body = record(
            "consultation",
            summary=SECRETS["summary"],
            requester={"name": SECRETS["name"], "phone": SECRETS["phone"]},
        )
        async with contextlib.AsyncExitStack() as running:
            for app in apps:
                await running.enter_async_context(app.router.lifespan_context(app))
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=apps[0]), base_url="http://intake"
            ) as intake:
                answer = await intake.post(
                    "/v1/consultations",
                    json=body,
                    headers={**COUNTY, "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
                )
            assert answer.status_code == 202, answer.text

            def ours(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
                found: dict[str, list[ReceivedSpan]] = {}
                for span in spans:
                    if span.trace_id == trace_id:
                        found.setdefault(span.service, []).append(span)
                return found

            async def received() -> dict[str, list[ReceivedSpan]]:
                return ours(receiver.spans())

            traced = await eventually(
                received,
                lambda found: all(service in found for service in ("intake", *PROJECTIONS)),
                seconds=60,
                what="the record's spans from intake and every projection",
            )

    intake_spans = {span.kind: span for span in traced["intake"]}
    server = intake_spans[Span.SpanKind.SPAN_KIND_SERVER]
    producer = intake_spans[Span.SpanKind.SPAN_KIND_PRODUCER]
    assert server.parent_span_id == "b7ad6b7169203331", "the caller's span is the server span's parent"
    assert server.attributes["http.route"] == "/v1/consultations"
    assert answer.headers["traceparent"] == f"00-{trace_id}-{server.span_id}-01"
    assert producer.parent_span_id == server.span_id
    assert producer.attributes["messaging.message.id"] == body["id"]
    for service in PROJECTIONS:
        [consumer] = traced[service]
        assert consumer.kind == Span.SpanKind.SPAN_KIND_CONSUMER
        assert consumer.parent_span_id == producer.span_id, (
            f"{service}: the record's header is the producer span"
        )
        assert consumer.attributes["cloudevents.event_id"] == body["id"]
        assert consumer.attributes["messaging.consumer.group.name"] == service
        assert consumer.attributes["messaging.destination.name"] == "village-services"
        assert isinstance(consumer.attributes["messaging.kafka.offset"], int)
    exported = repr([(span.name, span.attributes) for span in receiver.spans()])
    for secret in SECRETS.values():
        assert secret not in exported
