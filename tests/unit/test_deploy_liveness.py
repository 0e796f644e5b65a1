"""Liveness never restarts a pod for a dependency's outage (readiness takes it out of the Service then),
but still does for a consumer stuck while Kafka and PostgreSQL both answer, and for a crashed projection.
Before, /healthz failed whenever a projection stalled: a PostgreSQL outage put every consumer pod into
CrashLoopBackOff (issue 15)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from plumbing.http import install_common

STALLED = {"projection": "ledger", "lag": 40, "stalled": True}


def app_with(liveness: dict[str, Any], checks: dict[str, bool]) -> FastAPI:
    app = FastAPI()

    async def readiness() -> dict[str, bool]:
        return checks

    install_common(app, "liveness-test", readiness, lambda: dict(liveness))
    return app


async def healthz(app: FastAPI) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        return await client.get("/healthz")


async def test_a_stall_during_a_postgresql_outage_keeps_the_pod_alive() -> None:
    answer = await healthz(app_with(STALLED, {"postgres": False, "kafka": True}))
    assert answer.status_code == 200
    assert answer.json()["waiting_for"] == ["postgres"]
    assert answer.json()["stalled"] is True


async def test_a_stall_during_a_kafka_outage_keeps_the_pod_alive() -> None:
    answer = await healthz(app_with(STALLED, {"postgres": True, "kafka": False}))
    assert answer.status_code == 200
    assert answer.json()["waiting_for"] == ["kafka"]


async def test_a_stall_with_both_dependencies_up_is_a_stuck_consumer_and_fails() -> None:
    answer = await healthz(app_with(STALLED, {"postgres": True, "kafka": True}))
    assert answer.status_code == 503
    assert answer.json()["waiting_for"] == []


async def test_a_crashed_projection_fails_whatever_the_dependencies_say() -> None:
    crashed = {**STALLED, "crashed": True}
    assert (await healthz(app_with(crashed, {"postgres": False, "kafka": False}))).status_code == 503


async def test_no_stall_is_alive_without_asking_the_dependencies() -> None:
    asked: list[bool] = []
    app = FastAPI()

    async def readiness() -> dict[str, bool]:
        asked.append(True)
        return {"postgres": False}

    install_common(app, "liveness-test", readiness, lambda: {"stalled": False, "lag": 0})
    assert (await healthz(app)).status_code == 200
    assert asked == [], "liveness asks the dependencies only for a stalled projection"
