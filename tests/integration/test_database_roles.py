"""PostgreSQL least privilege (issue 12): each service runs as its own role, owning only its schema."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.examples import example_fields
from plumbing.auth import Role, mint_token
from plumbing.clock import ManualClock
from plumbing.postgres import apply_migrations, read_migrations
from plumbing.projection import prepare_schema
from plumbing.roles import SERVICE_ROLES, service_database_url, set_up_roles
from services.assessment.projection import assessment_projection
from services.dashboard.projection import dashboard_projection
from services.intake.app import create_app as create_intake
from services.intake.sealing import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.sealing import SCHEMA as INTAKE_SCHEMA
from services.intake.settings import IntakeSettings
from services.ledger.app import create_app as create_ledger
from services.ledger.projection import ledger_projection
from services.ledger.settings import LedgerSettings
from tests.support.infrastructure import Infrastructure
from tests.support.places import fresh_county
from tests.support.waiting import eventually

SECRET = "roles-integration-secret-long-enough-for-hs256"
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)


def bearer(subject: str, role: Role, region: str) -> dict[str, str]:
    settings = IntakeSettings(jwt_secret=SECRET)
    token = mint_token(settings, subject=subject, role=role, region_code=region, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def roles(infrastructure: Infrastructure, topics: None) -> dict[str, str]:
    await set_up_roles(infrastructure.database_url)
    await set_up_roles(infrastructure.database_url)  # idempotent
    urls = {
        role.service: service_database_url(infrastructure.database_url, role.service, None)
        for role in SERVICE_ROLES
    }
    # Each service's tables, made by its own role as the service makes them at start: the checks below
    # name them, and alone (not after the tests that start the services) they did not exist.
    projections = {
        "ledger": ledger_projection(b"roles-test-digest-key"),
        "assessment": assessment_projection(),
        "dashboard": dashboard_projection(),
    }
    for service, projection in projections.items():
        pool = await asyncpg.create_pool(urls[service], min_size=1, max_size=1)
        assert pool is not None
        try:
            await prepare_schema(pool, projection)
        finally:
            await pool.close()
    conn = await asyncpg.connect(urls["intake"])
    try:
        await apply_migrations(conn, INTAKE_SCHEMA, read_migrations(INTAKE_SCHEMA, INTAKE_MIGRATIONS))
    finally:
        await conn.close()
    return urls


async def test_no_service_role_has_rights_beyond_its_own_schema(
    roles: dict[str, str], admin_pool: asyncpg.Pool
) -> None:
    found = await admin_pool.fetch(
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
        " WHERE starts_with(rolname, 'vc_')"
    )
    assert {row["rolname"] for row in found} == {role.name for role in SERVICE_ROLES}
    powers = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolbypassrls")
    assert not [row["rolname"] for row in found if any(row[power] for power in powers)]
    refused = [
        ("ledger", "SELECT count(*) FROM dashboard.figures"),
        ("ledger", "SELECT count(*) FROM assessment.activities"),
        ("ledger", "DELETE FROM keystore.data_keys"),
        ("ledger", "SELECT count(*) FROM keystore.erasures"),
        ("ledger", "UPDATE audit.access_log SET purpose = 'audit'"),
        ("ledger", "CREATE ROLE intruder"),
        ("intake", "SELECT count(*) FROM ledger.entries"),
        ("intake", "DELETE FROM audit.access_log"),
        ("dashboard", "SELECT count(*) FROM ledger.entry_personal"),
        ("dashboard", "SELECT count(*) FROM keystore.data_keys"),
        ("assessment", "SELECT count(*) FROM intake.advisor_owners"),
        ("assessment", "ALTER SCHEMA dashboard RENAME TO taken"),
    ]
    for service, statement in refused:
        conn = await asyncpg.connect(roles[service])
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        finally:
            await conn.close()
    allowed = [
        ("ledger", "SELECT count(*) FROM keystore.data_keys"),
        ("ledger", "SELECT count(*) FROM ledger.entries"),
        ("dashboard", "SELECT count(*) FROM audit.access_log"),
    ]
    for service, statement in allowed:
        conn = await asyncpg.connect(roles[service])
        try:
            await conn.execute(statement)
        finally:
            await conn.close()


async def test_intake_and_ledger_work_under_their_own_roles(
    roles: dict[str, str], infrastructure: Infrastructure
) -> None:
    intake_app = create_intake(
        IntakeSettings(
            **infrastructure.kafka_settings("intake"), jwt_secret=SECRET, database_url=roles["intake"]
        ),
        ManualClock(NOW),
    )
    ledger_app = create_ledger(
        LedgerSettings(
            **infrastructure.kafka_settings("ledger"),
            jwt_secret=SECRET,
            database_url=roles["ledger"],
            poll_timeout_ms=100,
        ),
        ManualClock(NOW),
    )
    county = fresh_county()
    village = f"{county}101201"
    advisor = f"adv-{county}-roles"
    body = {
        **{k: v for k, v in example_fields("consultation.recorded").items() if k != "recorded_by"},
        "id": str(uuid.uuid4()),
        "advisor_id": advisor,
        "village_code": village,
    }
    async with intake_app.router.lifespan_context(intake_app), ledger_app.router.lifespan_context(ledger_app):
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=intake_app), base_url="http://i") as intake,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=ledger_app), base_url="http://l") as ledger,
        ):
            sent = await intake.post(
                "/v1/consultations", json=body, headers=bearer(advisor, Role.advisor, county)
            )
            assert sent.status_code == 202, sent.text
            office = bearer("office", Role.township_office, village[:9])

            async def entries() -> list[dict[str, Any]]:
                answer = await ledger.get(f"/v1/villages/{village}/ledger", headers=office)
                assert answer.status_code == 200, answer.text
                return list(answer.json()["entries"])

            [entry] = await eventually(entries, lambda found: len(found) == 1, seconds=60, what="the entry")
            assert entry["personal"]["requester"]["name"] == "张三", "the ledger's role opens seals"
            erased = await intake.post(
                "/v1/erasures",
                json={
                    "target_event_id": body["id"],
                    "village_code": village,
                    "reason": "data_subject_request",
                },
                headers=bearer(f"county-{county}", Role.county_bureau, county),
            )
            assert erased.status_code == 202, erased.text
            [entry] = await entries()
            assert entry["personal"] is None
            assert entry["personal_erased"] is True
            log = await ledger.get(
                "/v1/audit/access",
                params={"region": village},
                headers=bearer(f"county-{county}", Role.county_bureau, county),
            )
            assert [row["subject"] for row in log.json()["accesses"]][-1] == "office"


async def test_the_migrate_command_applies_a_schema_as_the_services_own_role(
    infrastructure: Infrastructure, roles: dict[str, str]
) -> None:
    """Issue 15: the migration Job's command (`python -m services.X migrate`) applies the projection's
    migrations and exits, as the service's own role (a long migration never meets a startup probe)."""
    environment = {**infrastructure.kafka_environment("dashboard"), "DATABASE_URL": roles["dashboard"]}
    finished = subprocess.run(
        [sys.executable, "-m", "services.dashboard", "migrate"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    expected = len(dashboard_projection().all_migrations())
    assert f"dashboard: schema dashboard migrated, {expected} migrations" in finished.stdout
    conn = await asyncpg.connect(infrastructure.database_url)
    try:
        owner = await conn.fetchval(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'dashboard' AND tablename = 'village_log'"
        )
    finally:
        await conn.close()
    assert owner == "vc_dashboard"
