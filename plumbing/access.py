"""Who reads what, one rule for every read endpoint of every service: an advisor reads their own work and
the files of the villages they serve, nothing region-wide; every other role reads within its region. An
id the caller may not read answers exactly as a missing one (404), so ids cannot be probed."""

from __future__ import annotations

from collections.abc import Collection

from plumbing.auth import Principal, Role, require_region
from plumbing.http import ApiError

ADVISOR_RULE = "an advisor reads their own work and their villages' files, nothing region-wide"


def refuse_advisors(caller: Principal, what: str) -> None:
    """403 for an advisor asking for something region-wide (a region's figures, alerts, exports...)."""
    if caller.role is Role.advisor:
        raise ApiError(403, "forbidden", f"{ADVISOR_RULE}; {what} is region-wide")


def require_own_work(caller: Principal, advisor_id: str) -> None:
    """403 for an advisor asking for another advisor's work."""
    if caller.role is Role.advisor and caller.subject != advisor_id:
        raise ApiError(403, "forbidden", f"{ADVISOR_RULE}; {advisor_id} is another advisor")


def require_village_reader(caller: Principal, village_code: str, village_advisors: Collection[str]) -> None:
    """403 unless the village lies in the caller's region and, for an advisor, is one they serve(d)."""
    require_region(caller, village_code)
    if caller.role is Role.advisor and caller.subject not in village_advisors:
        raise ApiError(403, "forbidden", f"{ADVISOR_RULE}; {village_code} is not a village of theirs")


def may_read_record(
    caller: Principal, village_code: str, advisor_id: str, village_advisors: Collection[str]
) -> bool:
    """Whether the caller may read one record: within the region, and for an advisor their own record or
    one in a village they serve(d)."""
    if not caller.covers(village_code):
        return False
    return (
        caller.role is not Role.advisor or caller.subject == advisor_id or caller.subject in village_advisors
    )


def not_found(what: str) -> ApiError:
    """The 404 for a record that does not exist or that the caller may not read: worded the same."""
    return ApiError(404, "not_found", f"no {what}")


def require_policy_region(caller: Principal, region_code: str) -> None:
    """A policy is read within the caller's region or for a region above it (whose policy applies there)."""
    if not (caller.covers(region_code) or caller.region_code.startswith(region_code)):
        raise ApiError(
            403,
            "forbidden",
            f"{region_code} is neither within nor above the caller's region {caller.region_code}",
        )
