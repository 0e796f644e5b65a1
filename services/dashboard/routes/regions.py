"""The dashboard's regions: the path up to the province, search by name, who the caller is, and a
village's summary (一村一卷) from the dashboard's own projection."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from contracts.events import COUNTRY_CODE, DEFAULT_ZONE, SERVICE_RECORD_NAMES
from plumbing.access import refuse_advisors, require_village_reader
from plumbing.auth import Role, require_region
from plumbing.http import ApiError, NationalRegionCodePath, VillageCodePath
from plumbing.routing import AppClock, Caller, Db
from services.dashboard import queries
from services.dashboard.settings import DashboardSettings

router = APIRouter()


@router.get("/v1/regions/{code}/path", tags=["regions"], summary="The region and the regions above it")
async def region_path(code: NationalRegionCodePath, caller: Caller, db: Db) -> dict[str, Any]:
    require_region(caller, code)
    async with db.acquire() as conn:
        # The Ministry's path starts at the country it reads; everyone else's at their province.
        return {"path": await queries.path(conn, code, from_country=caller.region_code == COUNTRY_CODE)}


@router.get(
    "/v1/regions", tags=["regions"], summary="Search regions by Chinese name, within the caller's region"
)
async def search(
    caller: Caller,
    db: Db,
    name: Annotated[str, Query(min_length=1, max_length=50)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    async with db.acquire() as conn:
        return {"regions": await queries.search(conn, name, caller.region_code, limit)}


@router.get("/v1/me", tags=["regions"], summary="Who the caller is and which region they read")
async def me(caller: Caller, db: Db) -> dict[str, Any]:
    async with db.acquire() as conn:
        found = await queries.region(conn, caller.region_code)
    return {
        "subject": caller.subject,
        "role": str(caller.role),
        "region_code": caller.region_code,
        "region_name": found["name"] if found else caller.region_code,
        "local_mode": caller.subject == "local-mode",
    }


@router.get(
    "/v1/villages/{code}/ledger-summary",
    tags=["regions"],
    summary="A village's summary (一村一卷): its advisors, teams and terms, how many records, the latest ten",
)
async def ledger_summary(
    code: VillageCodePath, caller: Caller, db: Db, clock: AppClock, request: Request
) -> dict[str, Any]:
    # What the page shows of a village's file: its advisors and terms, how many records it holds and the
    # latest ten (kind, time, advisor, voided: no resident's field and no free text), from the dashboard's
    # own projection of the same events the ledger keeps (services share only events).
    require_region(caller, code)
    today = clock.now().astimezone(DEFAULT_ZONE).date()
    async with db.acquire() as conn:
        if caller.role is Role.advisor:
            serving = await queries.village_advisors(conn, code, today)
            serving_teams = await queries.region_team_terms(conn, code, today)
            in_teams = await queries.teams(conn, [term["team_id"] for term in serving_teams], today)
            members = {member["advisor_id"] for team in in_teams.values() for member in team["members"]}
            require_village_reader(caller, code, {advisor["advisor_id"] for advisor in serving} | members)
        found = await queries.region(conn, code)
        if found is None or found["level"] != "village":
            raise ApiError(404, "not_found", f"no village {code}")
        count, recent = await queries.village_log(conn, code, 10)
        terms = await queries.village_terms(conn, code)
        team_terms = await queries.village_team_terms(conn, code)
        cards = await queries.teams(conn, sorted({term["team_id"] for term in team_terms}), today)
    settings: DashboardSettings = request.app.state.settings
    return {
        "village_code": code,
        "name": found["name"],
        "entries": count,
        "advisors": [
            {
                "advisor_id": term["advisor_id"],
                "name": term["name"],
                "organisation": term["organisation"],
                "term_start": term["term_start"].isoformat(),
                "term_end": term["term_end"].isoformat(),
            }
            for term in terms
        ],
        "teams": [
            {
                **cards.get(term["team_id"], {"team_id": term["team_id"], "members": []}),
                "term_start": term["term_start"].isoformat(),
                "term_end": term["term_end"].isoformat(),
            }
            for term in team_terms
        ],
        "recent": [
            {
                "occurred_at": entry["occurred_at"].isoformat(),
                "kind": SERVICE_RECORD_NAMES.get(entry["event_type"], entry["event_type"]),
                "advisor_id": entry["advisor_id"],
                "voided": entry["voided"],
            }
            for entry in recent
        ],
        "ledger_url": f"{settings.ledger_url}/v1/villages/{code}/ledger",
    }


@router.get(
    "/v1/regions/{code}/teams",
    tags=["regions"],
    summary="The teams (律师团队) serving villages of the region today, with their members",
)
async def region_teams(
    code: NationalRegionCodePath, caller: Caller, db: Db, clock: AppClock
) -> dict[str, Any]:
    refuse_advisors(caller, "a region's teams")
    require_region(caller, code)
    today = clock.now().astimezone(DEFAULT_ZONE).date()
    async with db.acquire() as conn:
        terms = await queries.region_team_terms(conn, code, today)
        cards = await queries.teams(conn, sorted({term["team_id"] for term in terms}), today)
    return {
        "region_code": code,
        "on": today.isoformat(),
        "teams": [
            {
                **cards.get(term["team_id"], {"team_id": term["team_id"], "members": []}),
                "village_code": term["village_code"],
                "village_name": term["village_name"],
                "term_start": term["term_start"].isoformat(),
                "term_end": term["term_end"].isoformat(),
            }
            for term in terms
        ],
    }
