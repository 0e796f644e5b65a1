"""The ledger's routes: a village's file, entries with their corrections, an advisor's work log, exports a
justice office files, the chain check an auditor runs, and the access log. `app.py` wires them."""

import base64
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from enum import StrEnum
from typing import IO, Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from contracts.assignment import assigned_on
from contracts.envelope import FieldError
from plumbing.access import (
    may_read_record,
    not_found,
    refuse_advisors,
    require_own_work,
    require_village_reader,
)
from plumbing.audit import (
    Access,
    Action,
    accesses_under,
    current_request_id,
    record_access,
    stated_purpose,
)
from plumbing.auth import Principal, Role, require_region
from plumbing.clock import Clock
from plumbing.http import (
    ADVISOR_ID,
    QUERY_YEARS,
    AdvisorIdPath,
    ApiError,
    QueryMoment,
    RegionCodePath,
    VillageCodePath,
)
from plumbing.personal import Sealer
from plumbing.postgres import Connection
from plumbing.routing import AppClock, Caller, Database, Db
from plumbing.tables import XLSX_MEDIA_TYPE, attachment, csv_line
from services.ledger import queries
from services.ledger.exports import HEADERS, Totals, XlsxWriter, entry_row
from services.ledger.queries import EntryFilter
from services.ledger.rules import service_day
from services.ledger.settings import LedgerSettings

router = APIRouter()


def _sealer(request: Request) -> Sealer:
    sealer: Sealer = request.app.state.sealer
    return sealer


def _settings(request: Request) -> LedgerSettings:
    settings: LedgerSettings = request.app.state.settings
    return settings


# The ledger opens sealed personal fields for callers allowed to see them (the keys intake keeps).
Sealing = Annotated[Sealer, Depends(_sealer)]
LedgerConfig = Annotated[LedgerSettings, Depends(_settings)]

PERSONAL_ROLES = frozenset({Role.township_office, Role.county_bureau})
VOID_FIELDS_PUBLIC = ("target_event_id", "status")


# County bureaus keep the ledgers and pay; the departments above supervise them.
AUDITOR_ROLES = frozenset({Role.county_bureau, Role.prefecture_bureau, Role.province_department})


class Order(StrEnum):
    oldest_first = "oldest_first"
    newest_first = "newest_first"


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


def may_see_personal(caller: Principal, advisor_id: str) -> bool:
    """Township offices and county bureaus handle the cases; an advisor sees their own records' details.
    Prefecture, province and integration callers read statistics-grade fields only."""
    return caller.role in PERSONAL_ROLES or (caller.role is Role.advisor and caller.subject == advisor_id)


def present(entry: dict[str, Any], unassigned: bool, caller: Principal) -> dict[str, Any]:
    personal = entry["personal"]
    if personal is not None and not may_see_personal(caller, entry["advisor_id"]):
        personal = dict.fromkeys(personal, "***")
    shown: dict[str, Any] = {
        "event_id": str(entry["event_id"]),
        "village_code": entry["village_code"],
        "sequence": entry["sequence"],
        "type": entry["event_type"],
        "advisor_id": entry["advisor_id"],
        "occurred_at": entry["occurred_at"].isoformat(),
        "recorded_at": entry["recorded_at"].isoformat() if entry["recorded_at"] else None,
        "recorded_by": entry["recorded_by"],
        "fields": entry["fields"],
        "personal": personal,
        "personal_erased": entry["personal_erased"],
        "voided": entry["voided_by_event_id"] is not None,
        "voided_by": None,
        "unassigned": unassigned,
        "origin": {
            "topic": entry["kafka_topic"],
            "partition": entry["kafka_partition"],
            "offset": entry["kafka_offset"],
        },
        "entry_hash": entry["entry_hash"],
    }
    if entry["voided_by_event_id"] is not None:
        shown["voided_by"] = {
            "event_id": str(entry["voided_by_event_id"]),
            "at": entry["voided_at"].isoformat(),
            "by": entry["voided_by"],
        }
    if entry["void_status"] is not None:
        shown["void"] = {
            "target_event_id": str(entry["void_target_event_id"]),
            "status": entry["void_status"],
        }
    return shown


def unassigned_flag(entry: dict[str, Any], terms: dict[tuple[str, str], Any]) -> bool:
    return not assigned_on(
        terms.get((entry["advisor_id"], entry["village_code"]), []), service_day(entry["occurred_at"])
    )


def encode_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


MAX_SEQUENCE = 2**63 - 1


def bad_cursor() -> ApiError:
    return ApiError(
        422,
        "validation_failed",
        "the cursor is not one this API gave out",
        [FieldError("query.cursor", "cursor", "pass the next_cursor of the previous page unchanged")],
    )


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:
        raise bad_cursor() from None


def sequence_cursor(cursor: str) -> int:
    """The entry number a village page continues after: ASCII digits within PostgreSQL's bigint."""
    text = decode_cursor(cursor)
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEQUENCE:
        raise bad_cursor()
    return int(text)


def worklog_cursor(cursor: str) -> tuple[datetime, UUID]:
    moment, _, last_id = decode_cursor(cursor).partition("|")
    try:
        after = (datetime.fromisoformat(moment), UUID(last_id))
    except ValueError:
        raise bad_cursor() from None
    if after[0].tzinfo is None or not QUERY_YEARS[0] <= after[0].year <= QUERY_YEARS[1]:
        raise bad_cursor()
    return after


async def log_access(
    db: Database,
    clock: Clock,
    caller: Principal,
    action: Action,
    region_code: str,
    resource: str,
    records: int,
) -> None:
    """One row of the access log (plumbing.audit) for a read that showed personal data, or an export."""
    if action is Action.read_personal and records == 0:
        return
    access = Access(action, region_code, resource, records, stated_purpose())
    async with db.acquire() as conn:
        await record_access(conn, "ledger", caller, access, current_request_id(), clock.now())


def personal_shown(entries: list[dict[str, Any]], caller: Principal) -> int:
    return sum(
        1
        for entry in entries
        if entry["personal"] is not None and may_see_personal(caller, entry["advisor_id"])
    )


async def village_advisors(conn: Connection, village_code: str) -> set[str]:
    return {advisor for advisor, _ in await queries.terms_for(conn, [village_code])}


async def require_village_file(conn: Connection, caller: Principal, village_code: str) -> None:
    require_region(caller, village_code)
    if caller.role is Role.advisor:
        require_village_reader(caller, village_code, await village_advisors(conn, village_code))


@router.get(
    "/v1/villages/{village_code}", tags=["ledger"], summary="A village's file: its advisors and terms"
)
async def village(village_code: VillageCodePath, caller: Caller, db: Db) -> dict[str, Any]:
    async with db.acquire() as conn:
        await require_village_file(conn, caller, village_code)
        return await queries.village_file(conn, village_code)


@router.get("/v1/villages/{village_code}/ledger", tags=["ledger"], summary="A village's entries, paginated")
async def village_ledger(
    village_code: VillageCodePath,
    caller: Caller,
    db: Db,
    clock: AppClock,
    sealer: Sealing,
    since: QueryMoment | None = None,
    until: QueryMoment | None = None,
    kind: str | None = Query(
        default=None,
        pattern=r"^[a-z_]+\.[a-z_]+$",
        description="an event type, e.g. consultation.recorded",
    ),
    advisor_id: Annotated[str | None, Query(pattern=ADVISOR_ID)] = None,
    voided: bool | None = None,
    order: Order = Order.oldest_first,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    require_region(caller, village_code)
    after = sequence_cursor(cursor) if cursor is not None else None
    filters = EntryFilter(since, until, kind, advisor_id, voided)
    async with db.acquire() as conn:
        await require_village_file(conn, caller, village_code)
        entries = await queries.village_page(
            conn,
            village_code,
            filters,
            newest_first=order is Order.newest_first,
            after=after,
            limit=limit,
            sealer=sealer,
        )
        terms = await queries.terms_for(conn, [village_code])
    next_cursor = encode_cursor(str(entries[-1]["sequence"])) if len(entries) == limit else None
    await log_access(
        db,
        clock,
        caller,
        Action.read_personal,
        village_code,
        f"village-ledger:{village_code}",
        personal_shown(entries, caller),
    )
    return {
        "village_code": village_code,
        "entries": [present(entry, unassigned_flag(entry, terms), caller) for entry in entries],
        "next_cursor": next_cursor,
    }


@router.get("/v1/entries/{event_id}", tags=["ledger"], summary="One entry with its correction history")
async def one_entry(
    event_id: UUID, caller: Caller, db: Db, clock: AppClock, sealer: Sealing
) -> dict[str, Any]:
    async with db.acquire() as conn:
        found = await queries.entry(conn, event_id, sealer)
        if found is None or not may_read_record(
            caller,
            found["village_code"],
            found["advisor_id"],
            await village_advisors(conn, found["village_code"]) if caller.role is Role.advisor else (),
        ):
            raise not_found(f"ledger entry has the id {event_id}")
        history = await queries.corrections(conn, event_id, sealer)
        terms = await queries.terms_for(conn, [found["village_code"]])
    shown = present(found, unassigned_flag(found, terms), caller)
    await log_access(
        db,
        clock,
        caller,
        Action.read_personal,
        found["village_code"],
        f"entry:{event_id}",
        personal_shown([found], caller),
    )
    shown["corrections"] = [
        {
            "void_event_id": str(item["void_event_id"]),
            "sequence": item["sequence"],
            "status": item["status"],
            "at": item["voided_at"].isoformat(),
            "by": item["voided_by"],
            "reason": (item["personal"] or {}).get("reason")
            if may_see_personal(caller, found["advisor_id"])
            else "***",
        }
        for item in history
    ]
    return shown


@router.get("/v1/advisors/{advisor_id}/worklog", tags=["ledger"], summary="An advisor's work log (工作日志)")
async def worklog(
    advisor_id: AdvisorIdPath,
    caller: Caller,
    db: Db,
    clock: AppClock,
    sealer: Sealing,
    since: QueryMoment | None = None,
    until: QueryMoment | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    require_own_work(caller, advisor_id)
    after = worklog_cursor(cursor) if cursor is not None else None
    async with db.acquire() as conn:
        entries = await queries.worklog_page(
            conn, advisor_id, caller.prefix, since, until, after, limit, sealer
        )
        terms = await queries.terms_for(conn, sorted({entry["village_code"] for entry in entries}))
    await log_access(
        db,
        clock,
        caller,
        Action.read_personal,
        caller.region_code,
        f"worklog:{advisor_id}",
        personal_shown(entries, caller),
    )
    next_cursor = None
    if len(entries) == limit:
        last = entries[-1]
        next_cursor = encode_cursor(f"{last['occurred_at'].isoformat()}|{last['event_id']}")
    return {
        "advisor_id": advisor_id,
        "entries": [present(entry, unassigned_flag(entry, terms), caller) for entry in entries],
        "next_cursor": next_cursor,
    }


async def export_lines(
    db: Database, sealer: Sealer, villages: list[str], filters: EntryFilter, caller: Principal, period: str
) -> AsyncIterator[tuple[str, Any]]:
    """("sheet", (code, title)), ("row", values) and ("totals", rows) for each village, streamed."""
    async with db.acquire() as conn, conn.transaction(readonly=True):
        names = await queries.village_names(conn, villages)
        terms = await queries.terms_for(conn, villages)
        advisor_names: dict[str, str] = {}
        for code in villages:
            yield "sheet", (code, f"{names.get(code, code)}（{code}）工作台账 {period}")
            totals = Totals()
            async for entry in queries.village_entries(conn, code, filters, sealer):
                if entry["advisor_id"] not in advisor_names:
                    found = await queries.advisor_names(conn, [entry["advisor_id"]])
                    advisor_names[entry["advisor_id"]] = found.get(entry["advisor_id"], "")
                totals.add(entry)
                show = may_see_personal(caller, entry["advisor_id"])
                yield (
                    "row",
                    entry_row(entry, advisor_names[entry["advisor_id"]], unassigned_flag(entry, terms), show),
                )
            yield "totals", totals.rows()


async def export(
    db: Database,
    clock: Clock,
    sealer: Sealer,
    limit: int,
    villages: list[str],
    filters: EntryFilter,
    caller: Principal,
    file_format: ExportFormat,
    filename: str,
) -> StreamingResponse:
    """The villages' entries as a CSV or .xlsx download, streamed (the rows are read while the answer is
    sent)."""
    async with db.acquire() as conn:
        rows = await queries.export_rows_up_to(conn, villages, filters, limit + 1)
    if rows > limit:
        raise ApiError(
            413,
            "export_too_large",
            f"the export would hold more than {limit} rows (VC_EXPORT_MAX_ROWS); "
            "narrow it with since and until, or export fewer villages",
            [FieldError("rows", "export_max_rows", f"at most {limit} rows per export", limit)],
        )
    region = villages[0] if len(villages) == 1 else caller.region_code
    await log_access(
        db, clock, caller, Action.export, region, f"export:{filename}.{file_format.value}", len(villages)
    )
    start = filters.since.date() if filters.since else "最早"
    end = filters.until.date() if filters.until else "现在"
    period = f"{start} 至 {end}"
    disposition = attachment(filename, file_format.value)
    if file_format is ExportFormat.csv:

        async def csv_body() -> AsyncIterator[str]:
            yield "\ufeff"  # a BOM, so that spreadsheet programs read the Chinese as UTF-8
            async for kind, value in export_lines(db, sealer, villages, filters, caller, period):
                if kind == "sheet":
                    yield csv_line([value[1]])
                    yield csv_line(HEADERS)
                elif kind == "row":
                    yield csv_line(value)
                else:
                    for total in value:
                        yield csv_line(total)
                    yield "\r\n"

        return StreamingResponse(csv_body(), media_type="text/csv; charset=utf-8", headers=disposition)
    writer = XlsxWriter()
    sheet = None
    async for kind, value in export_lines(db, sealer, villages, filters, caller, period):
        if kind == "sheet":
            sheet = writer.start_sheet(*value)
        elif sheet is not None and kind == "row":
            writer.append(sheet, value)
        elif sheet is not None:
            writer.append(sheet, [])
            for total in value:
                writer.append(sheet, total)
    return StreamingResponse(_chunks(writer.finish()), media_type=XLSX_MEDIA_TYPE, headers=disposition)


@router.get(
    "/v1/villages/{village_code}/export", tags=["exports"], summary="A village's ledger as CSV or .xlsx"
)
async def export_village(
    village_code: VillageCodePath,
    caller: Caller,
    db: Db,
    settings: LedgerConfig,
    sealer: Sealing,
    clock: AppClock,
    since: QueryMoment | None = None,
    until: QueryMoment | None = None,
    format: ExportFormat = ExportFormat.xlsx,
) -> StreamingResponse:
    require_region(caller, village_code)
    async with db.acquire() as conn:
        await require_village_file(conn, caller, village_code)
    return await export(
        db,
        clock,
        sealer,
        settings.export_max_rows,
        [village_code],
        EntryFilter(since, until),
        caller,
        format,
        f"ledger-{village_code}",
    )


@router.get(
    "/v1/advisors/{advisor_id}/export",
    tags=["exports"],
    summary="An advisor's ledger, a sheet per village",
)
async def export_advisor(
    advisor_id: AdvisorIdPath,
    caller: Caller,
    db: Db,
    settings: LedgerConfig,
    sealer: Sealing,
    clock: AppClock,
    since: QueryMoment | None = None,
    until: QueryMoment | None = None,
    format: ExportFormat = ExportFormat.xlsx,
) -> StreamingResponse:
    require_own_work(caller, advisor_id)
    async with db.acquire() as conn:
        villages = await queries.advisor_villages(conn, advisor_id, caller.prefix)
    filters = EntryFilter(since, until, advisor_id=advisor_id)
    return await export(
        db,
        clock,
        sealer,
        settings.export_max_rows,
        villages,
        filters,
        caller,
        format,
        f"ledger-advisor-{advisor_id}",
    )


@router.get(
    "/v1/regions/{region_code}/export",
    tags=["exports"],
    summary="Every village of a region, a sheet each",
)
async def export_region(
    region_code: RegionCodePath,
    caller: Caller,
    db: Db,
    settings: LedgerConfig,
    sealer: Sealing,
    clock: AppClock,
    since: QueryMoment | None = None,
    until: QueryMoment | None = None,
    format: ExportFormat = ExportFormat.xlsx,
) -> StreamingResponse:
    refuse_advisors(caller, "a region's export")
    require_region(caller, region_code)
    async with db.acquire() as conn:
        villages = await queries.villages_under(conn, region_code)
    return await export(
        db,
        clock,
        sealer,
        settings.export_max_rows,
        villages,
        EntryFilter(since, until),
        caller,
        format,
        f"ledger-{region_code}",
    )


async def verify(db: Database, villages: list[str]) -> dict[str, Any]:
    async with db.acquire() as conn, conn.transaction(readonly=True):
        checked, broken = await queries.first_broken_link(conn, villages)
    return {
        "intact": broken is None,
        "villages_checked": checked,
        "first_broken": broken.__dict__ if broken else None,
    }


@router.get(
    "/v1/villages/{village_code}/verification", tags=["audit"], summary="Check a village's hash chain"
)
async def verify_village(village_code: VillageCodePath, caller: Caller, db: Db) -> dict[str, Any]:
    require_region(caller, village_code)
    async with db.acquire() as conn:
        await require_village_file(conn, caller, village_code)
    return await verify(db, [village_code])


@router.get("/v1/regions/{region_code}/verification", tags=["audit"], summary="Check every village's chain")
async def verify_region(region_code: RegionCodePath, caller: Caller, db: Db) -> dict[str, Any]:
    refuse_advisors(caller, "a region's chain check")
    require_region(caller, region_code)
    async with db.acquire() as conn:
        villages = await queries.villages_under(conn, region_code)
    return await verify(db, villages)


@router.get("/v1/conflicts", tags=["audit"], summary="Ids seen again with other content (kept out)")
async def conflicts(
    caller: Caller, db: Db, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    refuse_advisors(caller, "the list of conflicts")
    async with db.acquire() as conn:
        found = await queries.conflicts_under(conn, caller.prefix, limit)
    return {"conflicts": [{**item, "event_id": str(item["event_id"])} for item in found]}


@router.get("/v1/audit/access", tags=["audit"], summary="Who read personal data or exported, when and why")
async def access_log(
    caller: Caller,
    db: Db,
    region: Annotated[str | None, Query(pattern=r"^[0-9]{2,12}$")] = None,
    since: QueryMoment | None = None,
    until: QueryMoment | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    if caller.role not in AUDITOR_ROLES:
        raise ApiError(403, "forbidden", "the access log is read by county bureaus and the departments above")
    region_code = region or caller.region_code
    require_region(caller, region_code)
    async with db.acquire() as conn:
        rows = await accesses_under(conn, region_code, since, until, limit)
    return {"region_code": region_code, "accesses": rows}


def _chunks(file: IO[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    try:
        while chunk := file.read(size):
            yield chunk
    finally:
        file.close()
