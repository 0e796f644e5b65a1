"""Who may call what: every route of every service, for every role, inside and outside the caller's region.

The one table `tests/integration/test_security_inputs.py::test_every_cell_of_the_access_matrix` checks
against the running services, and that `docs/security.md` shows (`python -m tests.support.access_matrix`
prints it; a test fails when the document is stale).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

ROLES = (
    "advisor",
    "township_office",
    "county_bureau",
    "prefecture_bureau",
    "province_department",
    "integration",
    "ministry",
)
# The Ministry (司法部) reads every region's figures and files and records nothing; no region is outside
# its own. The access log and the payout sheet stay with the offices that keep and pay (county and above).
NATIONAL_READERS = frozenset({"ministry"})
NOT_NATIONAL = frozenset(
    {"record", "rating", "registry", "county_acts", "prefecture_acts", "payers", "auditors"}
)
AUDITORS = frozenset({"county_bureau", "prefecture_bureau", "province_department"})
REGISTRARS = AUDITORS


class Cell(StrEnum):
    """What a role gets: allowed, allowed for an advisor's own work and villages only, or refused."""

    allowed = "allowed"
    own = "own"
    refused = "refused"
    not_found = "not_found"  # refused, worded as a missing id so that ids cannot be probed
    filtered = "filtered"  # answered, with nothing of a region outside the caller's


def _village(role: str) -> tuple[Cell, Cell]:
    return (Cell.own if role == "advisor" else Cell.allowed, Cell.refused)


def _advisor_work(role: str) -> tuple[Cell, Cell]:
    # an advisor may serve villages of several regions: each office sees the part within its own
    return (Cell.own if role == "advisor" else Cell.allowed, Cell.filtered)


def _entry(role: str) -> tuple[Cell, Cell]:
    return (Cell.own if role == "advisor" else Cell.allowed, Cell.not_found)


def _region(role: str) -> tuple[Cell, Cell]:
    return (Cell.refused if role == "advisor" else Cell.allowed, Cell.refused)


def _own_region(role: str) -> tuple[Cell, Cell]:
    # about the caller's own region (no region in the path): outside ours it is still theirs
    allowed = Cell.refused if role == "advisor" else Cell.allowed
    return (allowed, allowed)


def _auditors(role: str) -> tuple[Cell, Cell]:
    return (Cell.allowed, Cell.allowed) if role in AUDITORS else (Cell.refused, Cell.refused)


def _places(role: str) -> tuple[Cell, Cell]:
    return (Cell.allowed, Cell.refused)


def _signed_in(role: str) -> tuple[Cell, Cell]:
    return (Cell.allowed, Cell.allowed)


def _record(role: str) -> tuple[Cell, Cell]:
    return (Cell.own if role == "advisor" else Cell.allowed, Cell.refused)


def _rating(role: str) -> tuple[Cell, Cell]:
    return (Cell.refused if role == "advisor" else Cell.allowed, Cell.refused)


def _county_acts(role: str) -> tuple[Cell, Cell]:
    return (Cell.allowed if role == "county_bureau" else Cell.refused, Cell.refused)


def _prefecture_acts(role: str) -> tuple[Cell, Cell]:
    return (Cell.allowed if role == "prefecture_bureau" else Cell.refused, Cell.refused)


def _payers(role: str) -> tuple[Cell, Cell]:
    return (Cell.allowed if role in AUDITORS else Cell.refused, Cell.refused)


def _registry(role: str) -> tuple[Cell, Cell]:
    return (Cell.allowed if role in REGISTRARS else Cell.refused, Cell.refused)


@dataclass(frozen=True)
class Rule:
    """A kind of route: what each role gets inside its region, and outside it."""

    meaning: str
    cells: Callable[[str], tuple[Cell, Cell]]


RULES = {
    "village": Rule(
        "a village's file or an advisor's work: within the region; an advisor only their own", _village
    ),
    "advisor_work": Rule(
        "an advisor's work across villages: an advisor only their own; an office sees the part in its region",
        _advisor_work,
    ),
    "entry": Rule("one record: as `village`; out of reach, a 404 worded like a missing id", _entry),
    "region": Rule("region-wide reads: within the region; never an advisor", _region),
    "own_region": Rule("about the caller's own region (no code in the path); never an advisor", _own_region),
    "auditors": Rule("the access log: county bureaus and above, their own region", _auditors),
    "places": Rule(
        "a region's place in the tree, the policy in force there: within (or above) the region", _places
    ),
    "signed_in": Rule("region names, who am I, a batch (judged record by record)", _signed_in),
    "record": Rule("a service record: within the region; an advisor only their own work", _record),
    "rating": Rule("feedback on an advisor: within the region; never the advisor", _rating),
    "registry": Rule("registry, policy and erasure: county bureau and above, within the region", _registry),
    "county_acts": Rule(
        "year-end: adjusting a grade and submitting, by the county bureau of that county", _county_acts
    ),
    "prefecture_acts": Rule(
        "year-end: accepting or returning a county's submission, by the prefecture bureau above it",
        _prefecture_acts,
    ),
    "payers": Rule("the payout sheet: county bureau and above (they pay), within the region", _payers),
}

# Routes anyone may call without a token: the operations endpoints (inside the cluster only: the Ingress
# never routes them), the API documents, the page and its files, and the public notice (公示) with its
# residents' ratings.
PUBLIC = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/",
        "/config.json",
        "/favicon.ico",
        "/static/{name}",
        "/public/villages/{code}",
        "/v1/public/villages/{code}",
        # a resident's rating from the public notice: rate-limited per client, one per device per advisor
        # per day (409), CORS for the dashboard's origin only
        "/v1/public/ratings",
        # the advisor's workbench: its page, files and forms; the development sign-in answers only in
        # local mode and only for the demo advisors (403 naming the rule otherwise)
        "/workbench",
        "/workbench/",
        "/workbench/config.json",
        "/workbench/forms.json",
        "/workbench/dev-sign-in",
        "/workbench/{name}",
    }
)

ROUTES: dict[tuple[str, str, str], str] = {
    ("ledger", "GET", "/v1/villages/{village_code}"): "village",
    ("ledger", "GET", "/v1/villages/{village_code}/ledger"): "village",
    ("ledger", "GET", "/v1/villages/{village_code}/export"): "village",
    ("ledger", "GET", "/v1/villages/{village_code}/verification"): "village",
    ("ledger", "GET", "/v1/entries/{event_id}"): "entry",
    ("ledger", "GET", "/v1/advisors/{advisor_id}/worklog"): "advisor_work",
    ("ledger", "GET", "/v1/advisors/{advisor_id}/export"): "advisor_work",
    ("ledger", "GET", "/v1/regions/{region_code}/export"): "region",
    ("ledger", "GET", "/v1/regions/{region_code}/verification"): "region",
    ("ledger", "GET", "/v1/conflicts"): "own_region",
    ("ledger", "GET", "/v1/audit/access"): "auditors",
    ("assessment", "GET", "/v1/compliance/{advisor_id}/{village_code}"): "village",
    ("assessment", "GET", "/v1/advisors/{advisor_id}/compliance"): "advisor_work",
    ("assessment", "GET", "/v1/regions/{region_code}/compliance"): "region",
    ("assessment", "GET", "/v1/regions/{region_code}/alerts"): "region",
    ("assessment", "GET", "/v1/regions/{region_code}/grades"): "region",
    ("assessment", "GET", "/v1/regions/{region_code}/policy"): "places",
    ("assessment", "GET", "/v1/regions/{region_code}/approvals"): "region",
    ("assessment", "POST", "/v1/regions/{region_code}/approvals/{year}/adjustments"): "county_acts",
    ("assessment", "POST", "/v1/regions/{region_code}/approvals/{year}/submission"): "county_acts",
    ("assessment", "POST", "/v1/regions/{region_code}/approvals/{year}/acceptance"): "prefecture_acts",
    ("assessment", "POST", "/v1/regions/{region_code}/approvals/{year}/return"): "prefecture_acts",
    ("assessment", "GET", "/v1/regions/{region_code}/payouts"): "payers",
    ("assessment", "GET", "/v1/regions/{region_code}/teams"): "region",
    ("dashboard", "GET", "/v1/regions/{code}/figures"): "region",
    ("dashboard", "GET", "/v1/regions/{code}/work-report"): "region",
    ("dashboard", "GET", "/v1/regions/{code}/series"): "region",
    ("dashboard", "GET", "/v1/regions/{code}/approvals"): "region",
    ("dashboard", "GET", "/v1/regions/{code}/path"): "places",
    ("dashboard", "GET", "/v1/regions"): "signed_in",
    ("dashboard", "GET", "/v1/me"): "signed_in",
    ("dashboard", "GET", "/v1/villages/{code}/ledger-summary"): "village",
    ("dashboard", "GET", "/v1/regions/{code}/teams"): "region",
    ("intake", "POST", "/v1/consultations"): "record",
    ("intake", "POST", "/v1/mediations"): "record",
    ("intake", "POST", "/v1/lectures"): "record",
    ("intake", "POST", "/v1/legal-aid"): "record",
    ("intake", "POST", "/v1/visits"): "record",
    ("intake", "POST", "/v1/documents"): "record",
    ("intake", "POST", "/v1/risk-reports"): "record",
    ("intake", "POST", "/v1/feedback"): "rating",
    ("intake", "POST", "/v1/voids"): "record",
    ("intake", "POST", "/v1/registry/advisors"): "registry",
    ("intake", "POST", "/v1/registry/assignments"): "registry",
    ("intake", "POST", "/v1/registry/releases"): "registry",
    ("intake", "POST", "/v1/registry/violations"): "registry",
    ("intake", "POST", "/v1/registry/region-classifications"): "registry",
    ("intake", "POST", "/v1/registry/policies"): "registry",
    ("intake", "POST", "/v1/registry/teams"): "registry",
    ("intake", "POST", "/v1/registry/team-assignments"): "registry",
    ("intake", "POST", "/v1/registry/team-releases"): "registry",
    ("intake", "POST", "/v1/erasures"): "registry",
    ("intake", "POST", "/v1/imports"): "registry",  # history: a county bureau and above, its own villages
    ("intake", "POST", "/v1/batch"): "signed_in",  # each record of a batch is judged by its own row
}


def cells(rule_name: str, role: str) -> tuple[Cell, Cell]:
    """(inside, outside) for a role; an advisor's "outside" is another advisor's work in the same county;
    the Ministry's "outside" is the country again (nothing is outside it)."""
    inside, outside = RULES[rule_name].cells(role)
    if role in NATIONAL_READERS:
        inside = Cell.refused if rule_name in NOT_NATIONAL else inside
        return inside, inside
    if role != "advisor":
        return inside, outside
    if inside is Cell.own:
        return inside, Cell.not_found if rule_name == "entry" else Cell.refused
    return inside, inside


MARKS = {Cell.allowed: "✓", Cell.own: "own", Cell.refused: "403", Cell.not_found: "404", Cell.filtered: "∅"}
SHORT = {
    "advisor": "advisor",
    "township_office": "township",
    "county_bureau": "county",
    "prefecture_bureau": "prefecture",
    "province_department": "province",
    "integration": "integration",
    "ministry": "ministry",
}


def render() -> str:
    """The table for docs/security.md: a cell is `inside / outside` the caller's region."""
    head = "| service | route | " + " | ".join(SHORT[role] for role in ROLES) + " |"
    lines = [head, "|" + "---|" * (len(ROLES) + 2)]
    for (service, method, path), rule_name in ROUTES.items():
        marks = [" / ".join(MARKS[cell] for cell in cells(rule_name, role)) for role in ROLES]
        lines.append(f"| {service} | `{method} {path}` | " + " | ".join(marks) + " |")
    public = ", ".join(f"`{path}`" for path in sorted(PUBLIC))
    lines.append("")
    lines.append(f"Without a token (anyone): {public}.")
    lines.append("")
    lines.extend(f"- `{name}`: {rule.meaning}" for name, rule in RULES.items())
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render() + "\n")
