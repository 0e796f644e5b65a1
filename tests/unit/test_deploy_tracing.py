"""W3C traceparent: taken from the HTTP request (or started), answered, bound to the request's log lines,
written by intake into the Kafka record's headers, and read back by the consumers (issue 15)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI

from contracts.envelope import KafkaRecord
from plumbing import tracing
from plumbing.http import install_common
from plumbing.kafka import KafkaConnection
from plumbing.logs import configure_logging, get_logger
from plumbing.projection import _trace_fields
from services.intake.publisher import Publisher, Stored

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


async def test_intake_writes_the_requests_traceparent_into_the_kafka_headers() -> None:
    publisher = Publisher(KafkaConnection("unused:1"), timeout_seconds=1, recreate_after_failures=3)
    producer = FakeProducer()
    publisher._producer = cast(Any, producer)
    record = KafkaRecord(topic="village-services", key=b"k", value=b"{}", headers=[("ce_id", b"1")])
    token = tracing.use(tracing.start(PARENT))
    try:
        results = await publisher.publish_all([record])
    finally:
        tracing.reset(token)
    assert isinstance(results[0], Stored)
    headers = dict(producer.sent[0])
    assert headers["ce_id"] == b"1"
    sent = tracing.parse(headers["traceparent"])
    assert sent is not None
    assert sent.trace_id == TRACE
    assert record.headers == [("ce_id", b"1")], "the record itself is not changed"
    await publisher.publish_all([record])  # outside a request: no header
    assert "traceparent" not in dict(producer.sent[1])
