"""The access log: every read of personal data and every export — who, when, what, why — append-only.

It lives in its own schema (`audit`), outside every projection, so a rebuild never touches it; the table
refuses UPDATE, DELETE and TRUNCATE (a trigger), and the services' database roles may only insert and read.
County bureaus and the departments above read the part of it that concerns their region.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import Header, Query

from plumbing.auth import Principal
from plumbing.postgres import Connection, prepare_shared_schema, read_migrations

AUDIT_SCHEMA = "audit"
AUDIT_MIGRATIONS = Path(__file__).resolve().parent / "audit_migrations"
PURPOSE_HEADER = "X-Access-Purpose"


class Purpose(StrEnum):
    """Why personal data was read or a ledger exported (a choice, so the log itself holds no free text)."""

    case_handling = "case_handling"
    supervision = "supervision"
    assessment = "assessment"
    data_subject_request = "data_subject_request"
    audit = "audit"
    unspecified = "unspecified"


class Action(StrEnum):
    read_personal = "read_personal"
    export = "export"


@dataclass(frozen=True)
class Access:
    action: Action
    region_code: str
    resource: str
    records: int
    purpose: Purpose


async def prepare_audit(conn: Connection) -> None:
    await prepare_shared_schema(conn, AUDIT_SCHEMA, read_migrations(AUDIT_SCHEMA, AUDIT_MIGRATIONS))


async def record_access(
    conn: Connection, service: str, caller: Principal, access: Access, request_id: str | None, now: datetime
) -> None:
    await conn.execute(
        """INSERT INTO audit.access_log (at, service, action, subject, role, caller_region, region_code,
                                         resource, records, purpose, request_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        now,
        service,
        str(access.action),
        caller.subject,
        str(caller.role),
        caller.region_code,
        access.region_code,
        access.resource,
        access.records,
        str(access.purpose),
        request_id,
    )


async def accesses_under(
    conn: Connection, region_prefix: str, since: datetime | None, until: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """The log's rows about a region and everything below it, newest first."""
    rows = await conn.fetch(
        """SELECT access_id, at, service, action, subject, role, caller_region, region_code, resource,
                  records, purpose, request_id
           FROM audit.access_log
           WHERE region_code LIKE $1 || '%'
             AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at < $3)
           ORDER BY at DESC, access_id DESC LIMIT $4""",
        region_prefix,
        since,
        until,
        limit,
    )
    return [{**dict(row), "at": row["at"].isoformat()} for row in rows]


_purpose: ContextVar[Purpose] = ContextVar("access_purpose", default=Purpose.unspecified)


async def access_purpose(
    purpose: Annotated[
        Purpose | None,
        Query(description="why personal data is read or a ledger exported; recorded in the access log"),
    ] = None,
    header: Annotated[Purpose | None, Header(alias=PURPOSE_HEADER)] = None,
) -> None:
    """A dependency of every route of a service that shows personal data: the caller's stated purpose
    (query `purpose` or header X-Access-Purpose), kept for the access log of this request."""
    _purpose.set(purpose or header or Purpose.unspecified)


def stated_purpose() -> Purpose:
    return _purpose.get()


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value is not None else None
