"""A team in a village (团队化服务, issue 18): whose records count, a month under the policy's hours basis,
and the team's year, from the members' records.

越秀's 社区律师团队化 pools a team's strength for one community, 南沙 assigns one firm to a township: a
village served by a team meets its monthly on-site norm either by each member on their own (`per_person`,
the rule every advisor has always had, and the default) or by the members' minutes together (`per_team`).
Lectures, feedback and timely recording are the team's together under either basis; the team is graded and
paid as one, for its terms in the village.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from contracts.assignment import TeamMembership, member_on, members_on
from contracts.events import HoursBasis, PolicyRules
from services.assessment.rules.hours import MonthStatus, Term, local_day
from services.assessment.rules.policy import PublishedPolicy
from services.assessment.rules.standing import (
    Activity,
    MonthCompliance,
    Snapshot,
    month_compliance,
    snapshot,
)

# The worst status of the members is the team's under per_person: one member missing the month misses it.
WORST_FIRST = (MonthStatus.missed, MonthStatus.at_risk, MonthStatus.on_track, MonthStatus.met)


@dataclass(frozen=True)
class TeamActivity:
    """A record served as the team: the member who served and what it counts for."""

    advisor_id: str
    activity: Activity


def members_records(
    registrations: Sequence[TeamMembership], records: Iterable[TeamActivity]
) -> dict[str, list[Activity]]:
    """Each member's team records that count: those of a day the registration in force lists them (a
    record naming a team its advisor was not in that day counts for no team)."""
    found: dict[str, list[Activity]] = {}
    for record in records:
        if member_on(registrations, record.advisor_id, local_day(record.activity.occurred_at)):
            found.setdefault(record.advisor_id, []).append(record.activity)
    return found


@dataclass(frozen=True)
class TeamMonth:
    basis: HoursBasis
    team: MonthCompliance
    members: dict[str, MonthCompliance]
    met: bool
    status: MonthStatus


def team_month(
    now: datetime,
    year: int,
    month: int,
    village_code: str,
    tags: Sequence[str],
    policies: Sequence[PublishedPolicy],
    terms: Sequence[Term],
    by_member: Mapping[str, Sequence[Activity]],
    answerable: Sequence[str],
) -> TeamMonth:
    """The month of a team in a village: the members' minutes together and each member's, met by the basis
    of the policy in force (as `month_compliance` chooses it). Every record that counts adds to the team's
    minutes; per person, each `answerable` member (`month_members`) must meet the norm."""
    together = [item for items in by_member.values() for item in items]
    team = month_compliance(now, year, month, village_code, tags, policies, terms, together)
    members = {
        member: month_compliance(
            now, year, month, village_code, tags, policies, terms, by_member.get(member, ())
        )
        for member in sorted({*by_member, *answerable})
    }
    basis = (team.policy.rules if team.policy else PolicyRules()).hours_basis
    if basis is HoursBasis.per_team:
        return TeamMonth(basis, team, members, team.minutes.met, team.status)
    statuses = {members[member].status for member in answerable}
    status = next((status for status in WORST_FIRST if status in statuses), team.status)
    met = bool(answerable) and all(members[member].minutes.met for member in answerable)
    return TeamMonth(basis, team, members, met, status)


def month_members(registrations: Sequence[TeamMembership], year: int, month: int, now: datetime) -> list[str]:
    """Who is answerable for a month: the members in force on its last day, or today if that comes first."""
    following = date(year + (month == 12), month % 12 + 1, 1)
    last_day = date.fromordinal(following.toordinal() - 1)
    return sorted(members_on(registrations, min(local_day(now), last_day)))


def team_snapshot(
    now: datetime,
    village_code: str,
    tags: Sequence[str],
    policies: Sequence[PublishedPolicy],
    terms: Sequence[Term],
    registrations: Sequence[TeamMembership],
    records: Sequence[TeamActivity],
    violation_this_year: bool,
) -> Snapshot:
    """Where a team stands in a village at a moment: the advisor's snapshot over the members' records
    together, each month judged by the team's basis."""

    counted = members_records(registrations, records)

    def month_met(year: int, month: int) -> bool:
        answerable = month_members(registrations, year, month, now)
        return team_month(now, year, month, village_code, tags, policies, terms, counted, answerable).met

    together = [item for items in counted.values() for item in items]
    return snapshot(
        now, village_code, tags, policies, terms, together, violation_this_year, judge_month=month_met
    )
