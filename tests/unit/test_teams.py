"""Teams (团队化服务, issue 18): the contracts, who is a member on a day, a team's month under each hours
basis (越秀's 社区律师团队化 pools the members' time; per person each member answers for the norm), and the
team's year."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from contracts.assignment import AssignmentTerm, TeamMembership, member_terms, members_on
from contracts.envelope import ContractViolation, parse_payload
from contracts.events import (
    DEFAULT_ZONE,
    Grade,
    HoursBasis,
    PolicyRules,
    TeamAssigned,
    TeamRegistered,
    TeamReleased,
    VisitLogged,
)
from contracts.examples import example_fields
from services.assessment.rules import Activity, MonthStatus, PublishedPolicy, Term, Visit
from services.assessment.rules.teams import (
    TeamActivity,
    TeamMonth,
    members_records,
    month_members,
    team_month,
    team_snapshot,
)
from services.intake.routes.common import region_may_change

VILLAGE = "370402105201"
A, B, C = "lawyer-a", "lawyer-b", "lawyer-c"


def at(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=DEFAULT_ZONE)


def policy(basis: HoursBasis | None) -> list[PublishedPolicy]:
    rules = PolicyRules() if basis is None else PolicyRules(hours_basis=basis)
    return [PublishedPolicy("37", date(2026, 1, 1), uuid.uuid4(), rules)]


def on_site(advisor: str, day: str, start: str, end: str) -> TeamActivity:
    visit = Visit(at(day, start), at(day, end))
    return TeamActivity(
        advisor,
        Activity("visit.logged", visit.started_at, visit.started_at, visit, 0, False, False, None, False),
    )


YEAR_TERM = [Term(date(2026, 1, 1), date(2026, 12, 31), None, Decimal("6000.00"))]
TWO = [TeamMembership(None, (A, B))]


def invalid(event_type: str, **changes: Any) -> list[str]:
    fields = {**example_fields(event_type), **changes}
    with pytest.raises(ContractViolation) as refused:
        parse_payload(event_type, fields, prefix="")
    return [f"{error.field}:{error.rule}" for error in refused.value.errors]


def test_a_team_lists_each_member_once_and_its_leader_among_them() -> None:
    assert invalid("team.registered", members=[A, B, A]) == ["members:unique_members"]
    assert invalid("team.registered", members=[A], leader_id=B) == ["leader_id:leader_is_member"]
    assert invalid("team.registered", members=[]) == ["members:too_short"]


def test_a_team_term_follows_the_advisor_terms_rules() -> None:
    assert invalid("team.assigned", term_start="2026-06-01", term_end="2026-05-31") == [
        "term_end:value_error"
    ]
    assert invalid("team.assigned", term_start="1999-01-01") == ["term_start:term_years"]


def test_older_policies_and_records_still_read_and_mean_what_they_meant() -> None:
    published = parse_payload("policy.published", example_fields("policy.published"), prefix="")
    assert published.rules.hours_basis is HoursBasis.per_person  # type: ignore[attr-defined]
    visit = parse_payload("visit.logged", example_fields("visit.logged"), prefix="")
    assert isinstance(visit, VisitLogged)
    assert visit.team_id is None
    served = parse_payload(
        "visit.logged", {**example_fields("visit.logged"), "team_id": "team-0001"}, prefix=""
    )
    assert served.team_id == "team-0001"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("registrations", "day", "members"),
    [
        ([TeamMembership(None, (A, B))], date(2020, 1, 1), (A, B)),
        ([TeamMembership(date(2026, 3, 1), (A, B))], date(2026, 2, 28), ()),
        ([TeamMembership(None, (A, B)), TeamMembership(date(2026, 7, 1), (A, C))], date(2026, 6, 30), (A, B)),
        ([TeamMembership(None, (A, B)), TeamMembership(date(2026, 7, 1), (A, C))], date(2026, 7, 1), (A, C)),
        # a correction of the same day: the later registration wins
        (
            [TeamMembership(date(2026, 7, 1), (A,)), TeamMembership(date(2026, 7, 1), (A, C))],
            date(2026, 8, 1),
            (A, C),
        ),
        # registered again without a date: from the start, unless a dated one has taken over since
        ([TeamMembership(date(2026, 7, 1), (A, C)), TeamMembership(None, (B,))], date(2026, 8, 1), (A, C)),
        ([TeamMembership(date(2026, 7, 1), (A, C)), TeamMembership(None, (B,))], date(2026, 6, 1), (B,)),
    ],
)
def test_members_on_a_day_are_those_of_the_registration_in_force(
    registrations: list[TeamMembership], day: date, members: tuple[str, ...]
) -> None:
    assert members_on(registrations, day) == members


def test_a_record_of_an_advisor_not_in_the_team_that_day_counts_for_no_team() -> None:
    registrations = [TeamMembership(None, (A, B)), TeamMembership(date(2026, 3, 15), (A, C))]
    records = [
        on_site(B, "2026-03-10", "09:00", "12:00"),  # B was a member on the 10th
        on_site(B, "2026-03-20", "09:00", "12:00"),  # not any more
        on_site(C, "2026-03-10", "09:00", "12:00"),  # not yet
        on_site(C, "2026-03-20", "09:00", "12:00"),
    ]
    counted = members_records(registrations, records)
    assert {member: len(items) for member, items in counted.items()} == {B: 1, C: 1}
    assert month_members(registrations, 2026, 3, at("2026-04-20", "12:00")) == [A, C]
    assert month_members(registrations, 2026, 3, at("2026-03-12", "12:00")) == [A, B]


def march(basis: HoursBasis | None, records: list[TeamActivity], now: str = "2026-04-20") -> TeamMonth:
    moment = at(now, "12:00")
    return team_month(
        moment,
        2026,
        3,
        VILLAGE,
        [],
        policy(basis),
        YEAR_TERM,
        members_records(TWO, records),
        month_members(TWO, 2026, 3, moment),
    )


FIVE_HOURS_EACH = [on_site(A, "2026-03-10", "08:00", "13:00"), on_site(B, "2026-03-17", "13:00", "18:00")]


def test_per_team_the_members_minutes_together_meet_the_village_norm() -> None:
    found = march(HoursBasis.per_team, FIVE_HOURS_EACH)
    assert (found.team.minutes.on_site, found.team.minutes.required, found.met) == (600, 480, True)
    assert found.status is MonthStatus.met
    assert {member: m.minutes.on_site for member, m in found.members.items()} == {A: 300, B: 300}


def test_per_person_each_member_answers_for_the_norm_and_it_is_the_default() -> None:
    for basis in (HoursBasis.per_person, None):
        found = march(basis, FIVE_HOURS_EACH)
        assert found.basis is HoursBasis.per_person
        assert (found.team.minutes.on_site, found.met, found.status) == (600, False, MonthStatus.missed)
    eight_hours_each = [
        on_site(A, "2026-03-10", "08:00", "16:00"),
        on_site(B, "2026-03-17", "09:00", "17:00"),
    ]
    assert march(HoursBasis.per_person, eight_hours_each).met


def test_per_person_a_member_who_recorded_nothing_misses_the_month_for_the_team() -> None:
    only_a = [on_site(A, "2026-03-10", "08:00", "18:00")]
    found = march(HoursBasis.per_person, only_a)
    assert found.members[B].minutes.on_site == 0
    assert (found.met, found.status) == (False, MonthStatus.missed)
    assert march(HoursBasis.per_team, only_a).met


def test_per_person_the_team_is_as_far_behind_as_its_furthest_member() -> None:
    found = march(HoursBasis.per_person, [on_site(A, "2026-03-10", "08:00", "17:00")], now="2026-03-25")
    assert (found.members[A].status, found.members[B].status) == (MonthStatus.met, MonthStatus.at_risk)
    assert found.status is MonthStatus.at_risk


def test_the_team_year_counts_months_by_its_basis() -> None:
    records = [
        record
        for month in ("01", "02", "03")
        for record in (
            on_site(A, f"2026-{month}-10", "08:00", "13:00"),
            on_site(B, f"2026-{month}-17", "13:00", "18:00"),
        )
    ]
    now = at("2026-04-02", "12:00")
    pooled = team_snapshot(now, VILLAGE, [], policy(HoursBasis.per_team), YEAR_TERM, TWO, records, False)
    alone = team_snapshot(now, VILLAGE, [], policy(HoursBasis.per_person), YEAR_TERM, TWO, records, False)
    assert (pooled.trailing_12_months_met, alone.trailing_12_months_met) == (3, 0)
    assert pooled.year_score > alone.year_score
    violated = team_snapshot(now, VILLAGE, [], policy(HoursBasis.per_team), YEAR_TERM, TWO, records, True)
    assert violated.provisional_grade is Grade.violation


def test_the_assessment_and_the_dashboard_project_the_team_registry() -> None:
    from services.assessment.projection import handlers as assessment
    from services.dashboard.projection import handlers as dashboard

    teams = {TeamRegistered, TeamAssigned, TeamReleased}
    assert teams <= assessment.handled()
    assert teams <= dashboard.handled()


@pytest.mark.parametrize(
    ("registrations", "advisor", "served"),
    [
        ([TeamMembership(None, (A, B))], B, [(date(2026, 1, 1), date(2026, 12, 31))]),
        ([TeamMembership(None, (A, B))], C, []),
        (
            [TeamMembership(None, (A, B)), TeamMembership(date(2026, 7, 1), (A, C))],
            B,
            [(date(2026, 1, 1), date(2026, 6, 30))],
        ),
        (
            [TeamMembership(None, (A, B)), TeamMembership(date(2026, 7, 1), (A, C))],
            C,
            [(date(2026, 7, 1), date(2026, 12, 31))],
        ),
        (
            [
                TeamMembership(None, (A, B)),
                TeamMembership(date(2026, 4, 1), (A,)),
                TeamMembership(date(2026, 9, 1), (A, B)),
            ],
            A,
            [(date(2026, 1, 1), date(2026, 12, 31))],
        ),
        (
            [
                TeamMembership(None, (A, B)),
                TeamMembership(date(2026, 4, 1), (A,)),
                TeamMembership(date(2026, 9, 1), (A, B)),
            ],
            B,
            [(date(2026, 1, 1), date(2026, 3, 31)), (date(2026, 9, 1), date(2026, 12, 31))],
        ),
    ],
)
def test_a_member_serves_the_village_on_the_days_of_the_team_term_they_were_a_member(
    registrations: list[TeamMembership], advisor: str, served: list[tuple[date, date]]
) -> None:
    term = AssignmentTerm(date(2026, 1, 1), date(2026, 12, 31), None)
    assert [(t.term_start, t.term_end) for t in member_terms(registrations, advisor, term)] == served


def test_a_registration_changes_what_its_region_or_one_above_owns_only() -> None:
    """Teams are owned like advisors: the county that registered the team, or a region above it."""
    assert region_may_change("370402", "370402")
    assert region_may_change("370402", "3704")
    assert region_may_change("370402", "37")
    assert not region_may_change("370402", "370403")
    assert not region_may_change("370402", "370402001")  # a township below does not own the county's team
    assert not region_may_change("370402", None)
