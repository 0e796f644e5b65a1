"""Whether an advisor is assigned to a village on a day: the one definition, in Python and in SQL.

What `advisor.assigned` and `advisor.released` mean together: a term covers its days from `term_start`
to `term_end`, both included; a release's effective date is the last day served, so a term ends at the
earlier of its end and its release. Terms belong to the village code they name: a merge (`region.retired`)
moves records to the successor, never an assignment, so an advisor is assigned to the successor only by a
term of the successor's own. Reassignment to the same village is another term; any term covering the day
is enough.

A team (`team.assigned`, `team.released`) has terms of the same meaning; which advisors are its members on a
day is `members_on`, from its registrations (`team.registered`) in the registry's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class AssignmentTerm:
    term_start: date
    term_end: date
    released_on: date | None

    @property
    def last_day_served(self) -> date:
        return min(self.term_end, self.released_on) if self.released_on is not None else self.term_end

    def covers(self, day: date) -> bool:
        return self.term_start <= day <= self.last_day_served

    def overlaps(self, first: date, last: date) -> bool:
        """Whether the term covers any day from `first` to `last` (both included)."""
        return self.term_start <= last and first <= self.last_day_served


def assigned_on(terms: Iterable[AssignmentTerm], day: date) -> bool:
    """Whether any of an advisor's terms in a village covers the day."""
    return any(term.covers(day) for term in terms)


def assigned_between(terms: Iterable[AssignmentTerm], first: date, last: date) -> bool:
    return any(term.overlaps(first, last) for term in terms)


def last_day_served_sql(alias: str) -> str:
    """`AssignmentTerm.last_day_served` over an `assignments` row (columns term_start, term_end,
    released_on) named `alias`."""
    return f"least({alias}.term_end, coalesce({alias}.released_on, {alias}.term_end))"


def assigned_on_sql(alias: str, day: str) -> str:
    """`AssignmentTerm.covers` as a SQL condition; `day` is a parameter placeholder such as `$2`."""
    return f"({alias}.term_start <= {day} AND {day} <= {last_day_served_sql(alias)})"


def assigned_between_sql(alias: str, first: str, last: str) -> str:
    """`AssignmentTerm.overlaps` as a SQL condition; `first` and `last` are parameter placeholders."""
    return f"({alias}.term_start <= {last} AND {first} <= {last_day_served_sql(alias)})"


@dataclass(frozen=True)
class TeamMembership:
    """One `team.registered`: its members from `effective_from` on (None: from the start)."""

    effective_from: date | None
    members: tuple[str, ...]


def members_on(registrations: Sequence[TeamMembership], day: date) -> tuple[str, ...]:
    """A team's members on a day: those of the registration in force, the one with the latest
    `effective_from` not after the day (a registration without one is in force from the start; of two
    from the same day, the later in the registry's order). Nobody before the first takes effect."""
    in_force = [
        (index, registration)
        for index, registration in enumerate(registrations)
        if registration.effective_from is None or registration.effective_from <= day
    ]
    if not in_force:
        return ()
    _, found = max(in_force, key=lambda pair: (pair[1].effective_from or date.min, pair[0]))
    return found.members


def member_on(registrations: Sequence[TeamMembership], advisor_id: str, day: date) -> bool:
    return advisor_id in members_on(registrations, day)


def member_terms(
    registrations: Sequence[TeamMembership], advisor_id: str, team_term: AssignmentTerm
) -> list[AssignmentTerm]:
    """The days of a team's term on which the advisor was one of its members, as terms of their own (for a
    reader that asks whether an advisor served a village on a day: a member serves it with the team)."""
    first, last = team_term.term_start, team_term.last_day_served
    changes = sorted(
        {first}
        | {r.effective_from for r in registrations if r.effective_from and first < r.effective_from <= last}
    )
    found: list[AssignmentTerm] = []
    for index, start in enumerate(changes):
        end = changes[index + 1] - timedelta(days=1) if index + 1 < len(changes) else last
        if not member_on(registrations, advisor_id, start):
            continue
        if found and found[-1].term_end + timedelta(days=1) == start:
            found[-1] = AssignmentTerm(found[-1].term_start, end, None)
        else:
            found.append(AssignmentTerm(start, end, None))
    return found
