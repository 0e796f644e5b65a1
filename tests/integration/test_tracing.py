"""One record followed by its trace: the request's `traceparent` reaches the Kafka record through intake
and a projection's log line for that record, on the real broker and PostgreSQL (issue 15)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from devstack.broker_security import ADMIN
from plumbing import tracing
from plumbing.clock import SystemClock
from plumbing.logs import configure_logging
from plumbing.service import ProjectionHost
from plumbing.settings import ProjectionSettings
from tests.integration.test_intake import COUNTY, intake_settings, record, records_by_id, running_intake
from tests.support.counting import counting_projection
from tests.support.infrastructure import Infrastructure
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
    assert tracing.from_kafka_headers(stored[body["id"]].headers) == intake_span

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
    assert lines[0]["parent_span_id"] == intake_span.span_id
    assert lines[0]["projection"] == tag
