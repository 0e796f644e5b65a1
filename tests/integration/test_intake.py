"""Intake over HTTP against the real broker: every kind lands on its topic, bad records are refused by
rule, batches report per record, a stopped broker gives 503 and recovery needs no restart."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY

from contracts.envelope import from_kafka_record
from contracts.examples import example_fields
from contracts.topics import VILLAGE_SERVICES
from devstack.stack import Profile, kafka_down, kafka_kill, kafka_up
from devstack.tcp_proxy import TcpProxy
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.kafka import KafkaConnection, create_producer
from services.intake.app import create_app
from services.intake.publisher import _stop_producer
from services.intake.rules import KIND_BY_NAME, KINDS
from services.intake.settings import IntakeSettings
from tests.support.infrastructure import Infrastructure
from tests.support.kafka_io import read_topic
from tests.support.waiting import eventually

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
SECRET = "integration-test-secret-long-enough-for-hs256"
COUNTY_REGION = "370402"
# A 503 cannot know whether Kafka stored the record without confirming it in time (issue 14).
MAY_NOT = "may not have been stored; retry with the same id"


def intake_settings(kafka: dict[str, Any], **changes: Any) -> IntakeSettings:
    """Intake's settings, connecting to Kafka as `kafka` says (intake's own user on a closed broker)."""
    values: dict[str, Any] = {
        **kafka,
        "jwt_secret": SECRET,
        "publish_timeout_seconds": 3.0,
        "retry_after_seconds": 2,
        **changes,
    }
    return IntakeSettings(**values)


@asynccontextmanager
async def running_intake(settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, ManualClock(NOW))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def intake(infrastructure: Infrastructure, topics: None) -> AsyncIterator[httpx.AsyncClient]:
    async with running_intake(
        intake_settings(infrastructure.kafka_settings("intake"), database_url=infrastructure.database_url)
    ) as client:
        yield client


def token(
    subject: str, role: Role, region: str, settings: IntakeSettings | None = None, **kwargs: Any
) -> dict[str, str]:
    settings = settings or intake_settings({})
    signed = mint_token(
        settings, subject=subject, role=role, region_code=region, now=datetime.now(UTC), **kwargs
    )
    return {"Authorization": f"Bearer {signed}"}


COUNTY = token("county-370402", Role.county_bureau, COUNTY_REGION)
ADVISOR = token("lawyer-0001", Role.advisor, COUNTY_REGION)


def record(kind: str, **changes: Any) -> dict[str, Any]:
    fields = {k: v for k, v in example_fields(KIND_BY_NAME[kind].event_type).items() if k != "recorded_by"}
    if "policy" == kind:
        fields["region_code"] = COUNTY_REGION
    return {"id": str(uuid.uuid4()), **fields, **changes}


async def records_by_id(kafka: KafkaConnection, topic: str, ids: set[str]) -> dict[str, Any]:
    found = {}
    for item in await read_topic(kafka, topic):
        headers = dict(item.headers)
        event_id = headers.get("ce_id", b"").decode()
        if event_id in ids:
            found[event_id] = item
    return found


async def test_every_kind_is_accepted_and_lands_on_its_topic_with_headers_and_key(
    intake: httpx.AsyncClient, infrastructure: Infrastructure
) -> None:
    sent: dict[str, tuple[str, dict[str, Any]]] = {}
    for kind in KINDS:
        body = record(kind.name)
        answer = await intake.post(kind.path, json=body, headers=COUNTY)
        assert answer.status_code == 202, (kind.name, answer.text)
        assert answer.json()["status"] == "accepted"
        assert answer.json()["recorded_at"] == NOW.isoformat()
        sent[body["id"]] = (kind.event_type, body)

    for topic in ("village-services", "registry"):
        expected = {i for i, (t, _) in sent.items() if from_type(t) == topic}
        stored = await records_by_id(infrastructure.kafka, topic, expected)
        assert set(stored) == expected
        for event_id, item in stored.items():
            event_type, body = sent[event_id]
            event = from_kafka_record(item.topic, item.key, item.value, list(item.headers))
            headers = dict(item.headers)
            assert headers["ce_type"] == event_type.encode()
            assert headers["ce_recordedat"] == NOW.isoformat().encode()
            assert item.key == event.subject.encode()
            if topic == "village-services":
                assert item.key == body["village_code"].encode()
            payload = orjson.loads(item.value)
            if "recorded_by" in payload:
                assert payload["recorded_by"] == "county-370402"


def from_type(event_type: str) -> str:
    from contracts.events import PAYLOAD_BY_TYPE

    return PAYLOAD_BY_TYPE[event_type].kafka_topic


@pytest.mark.parametrize(
    ("path", "changes", "field", "rule"),
    [
        ("/v1/consultations", {"person_times": 0}, "person_times", "greater_than_equal"),
        ("/v1/consultations", {"occurred_at": "2026-03-21T08:00:00+08:00"}, "occurred_at", "not_in_future"),
        ("/v1/consultations", {"occurred_at": "2024-01-01T08:00:00+08:00"}, "occurred_at", "max_age"),
        ("/v1/consultations", {"village_code": "37040210520X"}, "village_code", "string_pattern_mismatch"),
        ("/v1/consultations", {"topic": "weather"}, "topic", "enum"),
        ("/v1/consultations", {"recorded_by": "me"}, "recorded_by", "server_set"),
        ("/v1/consultations", {"extra": 1}, "extra", "extra_forbidden"),
        ("/v1/visits", {"ended_at": "2026-03-14T09:00:00+00:00"}, "ended_at", "value_error"),
        ("/v1/visits", {"ended_at": "2026-03-15T10:00:00+00:00"}, "ended_at", "value_error"),
    ],
)
async def test_each_validation_rule_gives_422_with_field_rule_and_value(
    intake: httpx.AsyncClient, path: str, changes: dict[str, Any], field: str, rule: str
) -> None:
    kind = next(kind.name for kind in KINDS if kind.path == path)
    answer = await intake.post(path, json=record(kind, **changes), headers=ADVISOR)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["request_id"] == answer.headers["x-request-id"]
    matching = [entry for entry in error["fields"] if entry["field"] == field and entry["rule"] == rule]
    assert matching, error["fields"]
    if field in changes:
        assert matching[0]["value"] == changes[field]
    assert "Traceback" not in answer.text


async def test_missing_id_bad_json_and_oversized_bodies_are_refused(infrastructure: Infrastructure) -> None:
    settings = intake_settings(
        infrastructure.kafka_settings("intake"), database_url=infrastructure.database_url, max_body_bytes=4096
    )
    async with running_intake(settings) as client:
        no_id = record("lecture")
        del no_id["id"]
        answer = await client.post("/v1/lectures", json=no_id, headers=ADVISOR)
        assert answer.status_code == 422
        assert answer.json()["error"]["fields"][0]["field"] == "id"

        as_json = {**ADVISOR, "Content-Type": "application/json"}
        answer = await client.post("/v1/lectures", content=b"{oops", headers=as_json)
        assert answer.status_code == 422
        assert answer.json()["error"]["fields"][0]["rule"] == "json_invalid"

        huge = record("lecture", title="x" * 200)
        answer = await client.post(
            "/v1/batch", json={"records": [{"kind": "lecture", "record": huge}] * 40}, headers=ADVISOR
        )
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "body_too_large"


async def test_a_batch_of_mixed_records_reports_each_and_one_bad_record_sinks_nothing(
    intake: httpx.AsyncClient, infrastructure: Infrastructure
) -> None:
    good = [
        record("visit"),
        record("consultation"),
        record("mediation"),
        record("lecture"),
        record("document"),
    ]
    bad = [
        {"kind": "consultation", "record": record("consultation", person_times=0)},
        {"kind": "teleportation", "record": record("lecture")},
        {"kind": "feedback", "record": record("feedback")},  # an advisor may not rate themselves
    ]
    kinds = ["visit", "consultation", "mediation", "lecture", "document"]
    items = [{"kind": kind, "record": body} for kind, body in zip(kinds, good, strict=True)]
    answer = await intake.post(
        "/v1/batch",
        json={"records": [items[0], bad[0], *items[1:3], bad[1], *items[3:], bad[2]]},
        headers=ADVISOR,
    )
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["accepted"], summary["rejected"], summary["unavailable"]) == (5, 3, 0)
    statuses = [(result["index"], result["status"]) for result in summary["results"]]
    assert [status for _, status in statuses] == [
        "accepted",
        "rejected",
        "accepted",
        "accepted",
        "rejected",
        "accepted",
        "accepted",
        "rejected",
    ]
    assert summary["results"][1]["error"]["fields"][0]["rule"] == "greater_than_equal"
    assert summary["results"][4]["error"]["fields"][0]["field"] == "kind"
    assert summary["results"][7]["error"]["status"] == 403
    stored = await records_by_id(infrastructure.kafka, "village-services", {body["id"] for body in good})
    assert set(stored) == {body["id"] for body in good}


async def test_a_batch_counts_its_records_by_kind_and_outcome(intake: httpx.AsyncClient) -> None:
    def counted(kind: str, outcome: str, reason: str = "") -> float:
        labels = {"kind": kind, "outcome": outcome, "reason": reason}
        return REGISTRY.get_sample_value("vc_intake_records_total", labels) or 0.0

    kinds = ["visit", "lecture", "visit", "consultation", "visit"]
    before = {kind: counted(kind, "accepted") for kind in kinds}
    refused_before = counted("consultation", "rejected", "greater_than_equal")
    items = [{"kind": kind, "record": record(kind)} for kind in kinds]
    items.insert(2, {"kind": "consultation", "record": record("consultation", person_times=0)})
    answer = await intake.post("/v1/batch", json={"records": items}, headers=ADVISOR)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (5, 1)
    after = {kind: counted(kind, "accepted") - before[kind] for kind in before}
    assert after == {"visit": 3, "lecture": 1, "consultation": 1}
    assert counted("consultation", "rejected", "greater_than_equal") == refused_before + 1


async def test_a_retried_batch_keeps_its_ids(
    intake: httpx.AsyncClient, infrastructure: Infrastructure
) -> None:
    batch = {"records": [{"kind": "consultation", "record": record("consultation")} for _ in range(20)]}
    ids = {item["record"]["id"] for item in batch["records"]}
    first = await intake.post("/v1/batch", json=batch, headers=ADVISOR)
    again = await intake.post("/v1/batch", json=batch, headers=ADVISOR)
    assert first.status_code == again.status_code == 200
    assert {r["id"] for r in again.json()["results"]} == ids
    copies: dict[str, int] = {}
    for item in await read_topic(infrastructure.kafka, "village-services"):
        event_id = dict(item.headers)["ce_id"].decode()
        if event_id in ids:
            copies[event_id] = copies.get(event_id, 0) + 1
            assert from_kafka_record(item.topic, item.key, item.value, list(item.headers)).id == uuid.UUID(
                event_id
            )
    assert copies == dict.fromkeys(ids, 2), "each retry reaches the topic with the client's id"


@pytest.mark.parametrize(
    ("headers", "path", "changes", "status", "rule"),
    [
        ({}, "/v1/lectures", {}, 401, None),
        ({"Authorization": "Bearer not-a-jwt"}, "/v1/lectures", {}, 401, None),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "/v1/lectures", {}, 401, None),
        (
            token("lawyer-0001", Role.advisor, COUNTY_REGION, lifetime=timedelta(seconds=-10)),
            "/v1/lectures",
            {},
            401,
            None,
        ),
        (ADVISOR, "/v1/lectures", {"advisor_id": "lawyer-0002"}, 403, "own_records_only"),
        (ADVISOR, "/v1/lectures", {"village_code": "370403101201"}, 403, "within_region"),
        (ADVISOR, "/v1/registry/assignments", {}, 403, "county_level_or_above"),
        (
            token("town-1", Role.township_office, "370402105"),
            "/v1/mediations",
            {"village_code": "370402106201"},
            403,
            "within_region",
        ),
        (
            token("town-1", Role.township_office, "370402105"),
            "/v1/registry/violations",
            {},
            403,
            "county_level_or_above",
        ),
        (token("sys-1", Role.integration, "37"), "/v1/registry/policies", {}, 403, "county_level_or_above"),
        (COUNTY, "/v1/registry/policies", {"region_code": "37"}, 403, "within_region"),
        (
            token("city-3704", Role.prefecture_bureau, "3704"),
            "/v1/registry/policies",
            {"region_code": "3704"},
            202,
            None,
        ),
        (token("town-1", Role.township_office, "370402105"), "/v1/mediations", {}, 202, None),
    ],
)
async def test_role_and_region_boundaries(
    intake: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    changes: dict[str, Any],
    status: int,
    rule: str | None,
) -> None:
    kind = next(kind.name for kind in KINDS if kind.path == path)
    answer = await intake.post(path, json=record(kind, **changes), headers=headers)
    assert answer.status_code == status, answer.text
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["error"]["code"] == "unauthenticated"
    if rule is not None:
        assert rule in {entry["rule"] for entry in answer.json()["error"]["fields"]}


async def test_overload_answers_429_with_retry_after(intake: httpx.AsyncClient) -> None:
    admission = intake.app.state.admission  # type: ignore[attr-defined]
    admission.in_flight = admission.limit
    try:
        answer = await intake.post("/v1/lectures", json=record("lecture"), headers=ADVISOR)
    finally:
        admission.in_flight = 0
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "2"


OUTAGE = Profile(
    "outage", kafka_port=18092, controller_port=18093, postgres_port=18432, kafka_proxied=(18094, 18095)
)


def producer_starts() -> float:
    return sum(
        REGISTRY.get_sample_value("vc_intake_producer_starts_total", {"outcome": outcome}) or 0.0
        for outcome in ("started", "failed")
    )


async def test_503_while_the_broker_is_stopped_and_recovery_without_restarting_intake(
    infrastructure: Infrastructure, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its own broker, so the outage touches no other test. Through the outage, producers are replaced
    with a back-off (before: one a second, hundreds an outage) and each is stopped to its end (before:
    aiokafka's sender task was left pending, "Task was destroyed but it is pending"). A burst of requests
    failing together replaces no producer: failures count once they have lasted 10 s, and only the current
    producer's (before: 30 requests in flight replaced it 10 times and doubled the back-off to its end)."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    kafka_up(OUTAGE)
    try:
        outage = Infrastructure(OUTAGE.kafka_bootstrap, OUTAGE.database_url, "devstack", OUTAGE)
        async with running_intake(
            intake_settings(
                outage.kafka_settings("intake"),
                database_url=infrastructure.database_url,
                publish_timeout_seconds=2.0,
            )
        ) as client:
            before = await client.post("/v1/lectures", json=record("lecture"), headers=ADVISOR)
            assert before.status_code == 202, before.text

            kafka_kill(OUTAGE)
            down = record("lecture")
            answer = await client.post("/v1/lectures", json=down, headers=ADVISOR)
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "2"
            assert answer.json()["error"]["code"] == "kafka_unavailable"
            assert MAY_NOT in answer.json()["error"]["message"]
            batch = await client.post(
                "/v1/batch",
                json={"records": [{"kind": "lecture", "record": record("lecture")}]},
                headers=ADVISOR,
            )
            assert batch.status_code == 503
            assert batch.json()["unavailable"] == 1
            assert MAY_NOT in batch.json()["results"][0]["error"]["message"]
            assert (await client.get("/readyz")).status_code == 503

            capsys.readouterr()
            burst = await asyncio.gather(
                *(client.post("/v1/lectures", json=record("lecture"), headers=ADVISOR) for _ in range(30))
            )
            assert {answer.status_code for answer in burst} == {503}
            assert capsys.readouterr().out.count('"producer_recreated"') == 0

            starts_before = producer_starts()
            outage_ends = time.monotonic() + 15
            while time.monotonic() < outage_ends:  # records keep coming during the outage
                answer = await client.post("/v1/lectures", json=record("lecture"), headers=ADVISOR)
                assert answer.status_code == 503, answer.text
            starts = producer_starts() - starts_before
            assert 1 <= starts <= 6, f"{starts} producers started in a 15 s outage"

            kafka_up(OUTAGE)

            async def retry() -> int:
                return (await client.post("/v1/lectures", json=down, headers=ADVISOR)).status_code

            await eventually(retry, lambda status: status == 202, seconds=90, what="intake recovers")
            assert (await client.get("/readyz")).status_code == 200
        stored = await records_by_id(outage.kafka, "village-services", {down["id"]})
        assert set(stored) >= {down["id"]}
        gc.collect()
        pending = [entry.getMessage() for entry in caplog.records if "destroyed" in entry.getMessage()]
        assert pending == []
    finally:
        kafka_down(OUTAGE)
        shutil.rmtree(OUTAGE.home, ignore_errors=True)


async def test_a_producer_slower_to_start_than_a_request_is_kept_and_then_stores_records(
    infrastructure: Infrastructure,
) -> None:
    """Behind a slow link (0.25 s each way for every chunk, through devstack's TCP proxy) a producer's start
    (TLS, SASL, metadata, a producer id, on two connections) takes several seconds, longer than a publish's
    2 s; a produce, one round trip on an open connection, does not. Before, each start was cut off at the
    request's timeout, so intake never had a producer and answered 503 for as long as the link was slow
    (as it did for over 15 s after a broker's restart in the soak). Now the start goes on past the request
    that began it, and the requests after it are stored."""
    kafka_up(OUTAGE)
    assert OUTAGE.kafka_proxied is not None
    proxy = TcpProxy(OUTAGE.kafka_proxied[1], OUTAGE.kafka_proxied[0])
    await proxy.start()
    try:
        outage = Infrastructure(OUTAGE.kafka_bootstrap, OUTAGE.database_url, "devstack", OUTAGE)
        proxy.latency(0.25)
        slow = {
            **outage.kafka_settings("intake"),
            "kafka_bootstrap_servers": f"127.0.0.1:{proxy.listen_port}",
        }
        async with running_intake(
            intake_settings(slow, database_url=infrastructure.database_url, publish_timeout_seconds=2.0)
        ) as client:
            sent = record("lecture")

            async def post() -> int:
                return (await client.post("/v1/lectures", json=sent, headers=ADVISOR)).status_code

            await eventually(post, lambda status: status == 202, seconds=60, what="a record stored")
        stored = await records_by_id(outage.kafka, "village-services", {sent["id"]})
        assert set(stored) == {sent["id"]}
    finally:
        await proxy.stop()
        kafka_down(OUTAGE)
        shutil.rmtree(OUTAGE.home, ignore_errors=True)


async def test_a_producer_stopped_while_its_broker_hangs_closes_its_connections_and_reports_nothing(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A producer replaced while its broker does not answer (a silent hang, through devstack's TCP proxy) has
    a batch in flight that never drains: after the grace period its batches are failed and it is stopped.
    Before, asyncio reported each failed batch's drain waiter ("Future exception was never retrieved:
    ProducerClosed"), the sender's retry of the request in flight then failed stop() (KeyError) and left the
    producer's connections and its metadata task open, and the sender's own fail-all callback raised
    AttributeError into asyncio's log."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    kafka_up(OUTAGE)
    assert OUTAGE.kafka_proxied is not None
    proxy = TcpProxy(OUTAGE.kafka_proxied[1], OUTAGE.kafka_proxied[0])
    await proxy.start()
    try:
        kafka = dataclasses.replace(
            OUTAGE.kafka_as("intake"), bootstrap_servers=f"127.0.0.1:{proxy.listen_port}"
        )
        producer = create_producer(kafka, "intake", request_timeout_ms=8_000)
        await asyncio.wait_for(producer.start(), 60)
        stored = await asyncio.wait_for(await producer.send(VILLAGE_SERVICES, value=b"{}", key=b"k"), 30)
        assert stored.offset >= 0

        proxy.hang()
        in_flight = await producer.send(VILLAGE_SERVICES, value=b"{}", key=b"k")
        await asyncio.sleep(0.5)
        capsys.readouterr()
        await _stop_producer(producer)
        assert in_flight.done()
        assert isinstance(in_flight.exception(), KafkaError)
        assert producer.client._sync_task is None, "the metadata task is still running"
        assert not [node for node, conn in producer.client._conns.items() if conn.connected()]
        stop_failures = [line for line in capsys.readouterr().out.splitlines() if "producer_stop" in line]

        del in_flight, producer
        gc.collect()
        await asyncio.sleep(0.1)
        reported = [entry.getMessage() for entry in caplog.records if entry.name == "asyncio"]
        assert reported == [], (reported, stop_failures)
    finally:
        await proxy.stop()
        kafka_down(OUTAGE)
        shutil.rmtree(OUTAGE.home, ignore_errors=True)


async def test_no_personal_field_reaches_a_log_line_or_the_metrics(
    intake: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = {
        "name": "王秘密",
        "phone": "13912345678",
        "summary": "宅基地纠纷细节保密",
        "description": "群体上访风险细节保密",
        "comment": "评价内容保密",
    }
    capsys.readouterr()
    consultation = record(
        "consultation",
        summary=secrets["summary"],
        requester={"name": secrets["name"], "phone": secrets["phone"]},
    )
    assert (await intake.post("/v1/consultations", json=consultation, headers=ADVISOR)).status_code == 202
    risk = record("risk_report", description=secrets["description"])
    assert (await intake.post("/v1/risk-reports", json=risk, headers=ADVISOR)).status_code == 202
    feedback = record("feedback", comment=secrets["comment"])
    assert (await intake.post("/v1/feedback", json=feedback, headers=COUNTY)).status_code == 202
    rejected = record(
        "consultation", person_times=0, requester={"name": secrets["name"], "phone": "not a phone"}
    )
    assert (await intake.post("/v1/consultations", json=rejected, headers=ADVISOR)).status_code == 422
    batch = {
        "records": [
            {
                "kind": "risk_report",
                "record": record("risk_report", description=secrets["description"], severity="extreme"),
            }
        ]
    }
    assert (await intake.post("/v1/batch", json=batch, headers=ADVISOR)).status_code == 200

    logged = capsys.readouterr().out
    lines = [orjson.loads(line) for line in logged.splitlines() if line.startswith("{")]
    assert any(
        line.get("event") == "record_rejected" and line.get("event_id") == rejected["id"] for line in lines
    )
    assert any(
        line.get("event") == "http_request" and line.get("route") == "/v1/consultations" for line in lines
    )
    metrics_text = (await intake.get("/metrics")).text
    for secret in secrets.values():
        assert secret not in logged
        assert secret not in metrics_text


async def test_the_openapi_document_lets_a_client_integrate(intake: httpx.AsyncClient) -> None:
    document = (await intake.get("/openapi.json")).json()
    for kind in KINDS:
        operation = document["paths"][kind.path]["post"]
        body = operation["requestBody"]["content"]["application/json"]
        assert body["examples"], kind.name
        assert {"202", "401", "403", "422", "429", "503"} <= set(operation["responses"])
        assert MAY_NOT in operation["responses"]["503"]["description"]
        assert operation["security"] == [{"bearer": []}]
        schema = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]
        assert "id" in schema["required"]
        assert "recorded_by" not in schema["properties"]
    assert document["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    refs = orjson.dumps(document).decode().split('"$ref":"')[1:]
    names = {ref.split('"', 1)[0] for ref in refs}
    for name in names:
        target: Any = document
        for step in name.removeprefix("#/").split("/"):
            target = target[step]
        assert target is not None, name


async def test_a_dry_run_checks_a_record_and_stores_nothing(
    intake: httpx.AsyncClient, infrastructure: Infrastructure
) -> None:
    body = record("consultation")
    checked = await intake.post("/v1/consultations", params={"dry_run": "true"}, json=body, headers=COUNTY)
    assert checked.status_code == 200, checked.text
    assert checked.json() == {"id": body["id"], "kind": "consultation", "status": "valid"}
    refused = await intake.post(
        "/v1/consultations", params={"dry_run": "true"}, json={**body, "person_times": 0}, headers=COUNTY
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "person_times"
    stored = await intake.post("/v1/consultations", json={**body, "id": str(uuid.uuid4())}, headers=COUNTY)
    assert stored.status_code == 202
    found = await records_by_id(infrastructure.kafka, "village-services", {body["id"], stored.json()["id"]})
    assert set(found) == {stored.json()["id"]}, "the dry run published nothing"
