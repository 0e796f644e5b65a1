"""What a record adds to the statistics, and to which regions and periods."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from contracts.events import (
    Channel,
    DocumentKind,
    Grade,
    LegalAidKind,
    LegalTopic,
    MediationOutcome,
    Severity,
)
from services.dashboard.projection import MIGRATIONS
from services.dashboard.rules import (
    ACTIVE_ADVISORS,
    LEGACY_SUBSIDY_YUAN,
    METRICS,
    contributions,
    counting_village,
    deltas,
    grade_figures,
    merge_chain,
    month_closed_figures,
    periods,
    region_chain,
    rehoming,
    stored_deltas,
    stored_rows,
    work_report,
)
from tests.support.samples import sample_payload

VILLAGE = "370402105201"


def test_a_record_counts_in_its_village_and_every_region_above() -> None:
    assert region_chain(VILLAGE) == ["0", "37", "3704", "370402", "370402105", VILLAGE]


def test_periods_are_month_quarter_and_year_in_asia_shanghai() -> None:
    assert periods(datetime(2026, 3, 31, 17, 0, tzinfo=UTC)) == ["2026-04", "2026-Q2", "2026"]
    assert periods(datetime(2026, 3, 31, 15, 0, tzinfo=UTC)) == ["2026-03", "2026-Q1", "2026"]


def test_each_kind_of_record_adds_the_figures_the_seeds_report() -> None:
    assert contributions(sample_payload("consultation.recorded")) == {
        "consultations": 1,
        "consultation_person_times": 3,
        "consultations_topic_land": 1,
        "consultations_channel_on_site": 1,
    }
    assert contributions(sample_payload("mediation.recorded", major_or_difficult=True)) == {
        "mediations": 1,
        "mediations_resolved": 1,
        "mediations_major_or_difficult": 1,
        "mediations_major_or_backlog": 1,
    }
    assert contributions(sample_payload("lecture.held")) == {
        "lectures": 1,
        "lecture_attendees": 45,
        "lectures_evening_or_holiday": 1,
    }
    assert contributions(sample_payload("visit.logged")) == {"visits": 1, "on_site_minutes": 240}
    assert contributions(sample_payload("legal_aid.assisted")) == {"legal_aid_application_assisted": 1}
    assert contributions(sample_payload("document.reviewed")) == {"documents_village_rules": 1}
    assert contributions(sample_payload("risk.reported")) == {"risk_reports": 1, "risk_reports_medium": 1}
    assert contributions(sample_payload("feedback.submitted")) == {"feedback": 1, "feedback_score_sum": 5}
    assert contributions(sample_payload("record.voided")) == {}


def test_no_personal_field_becomes_a_figure() -> None:
    figures = contributions(sample_payload("consultation.recorded"))
    assert not any("张三" in metric or "1380" in metric or "summary" in metric for metric in figures)


def test_a_batch_sums_to_one_delta_per_row_and_a_void_cancels_its_record() -> None:
    when = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    added = {"consultations": 1, "consultation_person_times": 3}
    summed = deltas([(VILLAGE, periods(when), added, 1), ("370402105202", periods(when), added, 1)])
    assert summed[("370402105", "2026-Q1", "consultations")] == 2
    assert summed[(VILLAGE, "2026-03", "consultation_person_times")] == 3
    assert (
        len(summed) == (1 + 4 + 2) * 3 * 2
    )  # the country, 4 shared regions, 2 villages; 3 periods, 2 metrics
    assert summed[("0", "2026-03", "consultations")] == 2
    assert deltas([(VILLAGE, periods(when), added, 1), (VILLAGE, periods(when), added, -1)]) == {}
    assert set(deltas([(VILLAGE, ["2026"], {"graded": 1}, 1)])) == {
        (region, "2026", "graded") for region in region_chain(VILLAGE)
    }


def test_the_work_report_speaks_the_seeds_wording() -> None:
    """Zaozhuang 2017: 481 documents, 1,462 legal documents, 366 opinions, 15,646 consultations (人次),
    276 legal-aid applications, 168 cases, 770 disputes of which 87 major or petition backlog."""
    figures = {
        "documents_village_rules": 481,
        "documents_legal_document_drafted": 1462,
        "documents_legal_opinion": 300,
        "documents_contract_review": 66,
        "consultation_person_times": 15646,
        "legal_aid_application_assisted": 276,
        "legal_aid_case_represented": 168,
        "mediations": 770,
        "mediations_major_or_backlog": 87,
        "on_site_minutes": 90,
    }
    lines = {line["item"]: line for line in work_report(figures)}
    assert lines["村规民约等文件"]["text"] == "协助起草审订村规民约等文件481件"
    assert lines["法律意见"]["count"] == 366
    assert lines["法律咨询"]["text"] == "解答法律咨询15646人次"
    assert lines["其中重大疑难或信访积案"]["text"] == "其中重大疑难或信访积案87起"
    assert lines["法治讲座"]["count"] == 0
    assert lines["驻村服务时长(小时)"]["count"] == 1.5


def test_a_dispute_both_major_and_backlog_counts_once_among_them() -> None:
    both = contributions(sample_payload("mediation.recorded", major_or_difficult=True, petition_backlog=True))
    assert both["mediations_major_or_backlog"] == 1


def test_a_village_stores_months_and_the_regions_above_every_period() -> None:
    from services.dashboard.rules import months_of, stored_deltas

    when = datetime(2026, 5, 10, 2, 0, tzinfo=UTC)
    stored = stored_deltas(
        [(VILLAGE, periods(when), {"mediations": 1}, 1), (VILLAGE, ["2026"], {"graded": 1}, 1)]
    )
    assert stored == {
        (VILLAGE, "2026-05", "mediations", 12): 1,
        (VILLAGE, "2026-Q2", "mediations", 9): 1,
        (VILLAGE, "2026", "mediations", 9): 1,
        (VILLAGE, "2026", "graded", 12): 1,  # a year's grade has no month: kept at the village too
    }
    assert months_of("2026-Q2") == ["2026-04", "2026-05", "2026-06"]
    assert len(months_of("2026")) == 12
    assert months_of("2026-05") == []


def test_a_visit_crossing_midnight_into_a_month_puts_its_minutes_where_they_were_spent() -> None:
    """The assessment's split (contracts.service_time): the visit counts once, in the month it began;
    its minutes in each month for the part spent there."""
    from services.dashboard.rules import record_parts

    visit = sample_payload(
        "visit.logged",
        occurred_at="2025-06-30T23:00:00+08:00",
        started_at="2025-06-30T23:00:00+08:00",
        ended_at="2025-07-01T01:30:00+08:00",
    )
    summed = deltas([(VILLAGE, periods(when), figures, 1) for when, figures in record_parts(visit)])
    assert summed[(VILLAGE, "2025-06", "visits")] == 1
    assert summed[(VILLAGE, "2025-06", "on_site_minutes")] == 60
    assert summed[(VILLAGE, "2025-07", "on_site_minutes")] == 90
    assert (VILLAGE, "2025-07", "visits") not in summed
    assert summed[("37", "2025", "on_site_minutes")] == 150
    assert summed[("37", "2025-Q3", "on_site_minutes")] == 90
    consultation = sample_payload("consultation.recorded")
    assert record_parts(consultation) == [(consultation.occurred_at, contributions(consultation))]


def test_figures_are_shown_as_counts_hours_and_money_not_floats() -> None:
    """What PostgreSQL sums as float8 is shown as people read it: counts and minutes as integers, hours
    with one decimal, money as a decimal string in yuan with two places."""
    from services.dashboard.rules import grade_figures, shown_figures

    stored: dict[str, float] = {"consultations": 2869.0, "on_site_minutes": 1234.0, "visits": 3.0}
    for grade, subsidy in (("good", "3000.00"), ("qualified", "2100.10"), ("qualified", "0.20")):
        for metric, value in grade_figures(grade, Decimal(subsidy)).items():
            stored[metric] = stored.get(metric, 0) + value
    shown = shown_figures(stored)
    assert shown == {
        "consultations": 2869,
        "on_site_minutes": 1234,
        "on_site_hours": 20.6,
        "visits": 3,
        "graded": 3,
        "grades_good": 1,
        "grades_qualified": 2,
        "subsidy_yuan": "5100.30",
    }
    assert all(type(shown[metric]) is int for metric in ("consultations", "on_site_minutes", "graded"))


@pytest.mark.parametrize(
    ("year", "today", "months"),
    [
        (2025, date(2026, 11, 23), [f"2025-{month:02d}" for month in range(1, 13)]),
        (2026, date(2026, 11, 23), [f"2026-{month:02d}" for month in range(1, 12)]),
        (2026, date(2026, 1, 1), ["2026-01"]),
        (2027, date(2026, 11, 23), []),
    ],
)
def test_a_month_that_has_not_begun_is_absent_from_the_series(
    year: int, today: date, months: list[str]
) -> None:
    from services.dashboard.rules import begun_months

    assert begun_months(year, today) == months


FIRST, SECOND, THIRD, FOURTH = (f"37040210520{n}" for n in range(1, 5))


@pytest.mark.parametrize(
    ("village", "successors", "chain"),
    [
        (FIRST, {}, [FIRST]),
        (FIRST, {FIRST: SECOND}, [FIRST, SECOND]),
        (FIRST, {SECOND: THIRD}, [FIRST]),
        # merged into a village merged already: on to the end of the chain, whichever merge came first
        (FIRST, {FIRST: SECOND, SECOND: THIRD, THIRD: FOURTH}, [FIRST, SECOND, THIRD, FOURTH]),
        (SECOND, {FIRST: SECOND, SECOND: THIRD}, [SECOND, THIRD]),
        # a loop in the registry ends before it comes back
        (FIRST, {FIRST: SECOND, SECOND: FIRST}, [FIRST, SECOND]),
        (FIRST, {FIRST: SECOND, SECOND: THIRD, THIRD: SECOND}, [FIRST, SECOND, THIRD]),
        (FIRST, {FIRST: FIRST}, [FIRST]),
    ],
)
def test_a_merged_villages_records_count_at_the_end_of_its_chain_of_merges(
    village: str, successors: dict[str, str], chain: list[str]
) -> None:
    assert merge_chain(village, successors) == chain
    assert counting_village(village, successors) == chain[-1]


WHEN = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
ADDED = {"consultations": 1.0, "consultation_person_times": 3.0}


@pytest.mark.parametrize(
    ("activity", "voided", "figures", "activity_changes"),
    [
        (
            (WHEN, "lawyer-001"),
            False,
            [(FIRST, periods(WHEN), ADDED, -1), (THIRD, periods(WHEN), ADDED, 1)],
            [(FIRST, periods(WHEN), "lawyer-001", -1), (THIRD, periods(WHEN), "lawyer-001", 1)],
        ),
        (None, False, [(FIRST, periods(WHEN), ADDED, -1), (THIRD, periods(WHEN), ADDED, 1)], []),
        # a voided record moves (its row is re-homed) but its void took back what it added
        ((WHEN, "lawyer-001"), True, [], []),
        (None, True, [], []),
    ],
)
def test_a_record_moved_by_a_merge_takes_what_it_added_along_unless_voided(
    activity: tuple[datetime, str] | None,
    voided: bool,
    figures: list[object],
    activity_changes: list[object],
) -> None:
    assert rehoming(FIRST, THIRD, [(WHEN, ADDED)], activity, voided) == (figures, activity_changes)


def test_a_visits_minutes_move_from_each_month_they_were_spent_in() -> None:
    april = datetime(2026, 3, 31, 16, 0, tzinfo=UTC)
    parts = [(WHEN, {"visits": 1.0, "on_site_minutes": 60.0}), (april, {"on_site_minutes": 120.0})]
    figures, _ = rehoming(FIRST, SECOND, parts, None, False)
    assert deltas(figures) == {
        **{(FIRST, period, "visits"): -1 for period in periods(WHEN)},
        **{(SECOND, period, "visits"): 1 for period in periods(WHEN)},
        (FIRST, "2026-03", "on_site_minutes"): -60,
        (FIRST, "2026-04", "on_site_minutes"): -120,
        (SECOND, "2026-03", "on_site_minutes"): 60,
        (SECOND, "2026-04", "on_site_minutes"): 120,
        (FIRST, "2026-Q1", "on_site_minutes"): -60,
        (FIRST, "2026-Q2", "on_site_minutes"): -120,
        (SECOND, "2026-Q1", "on_site_minutes"): 60,
        (SECOND, "2026-Q2", "on_site_minutes"): 120,
        (FIRST, "2026", "on_site_minutes"): -180,
        (SECOND, "2026", "on_site_minutes"): 180,
    }


def test_a_record_staying_where_it_counts_changes_nothing() -> None:
    assert rehoming(FIRST, FIRST, [(WHEN, ADDED)], (WHEN, "lawyer-001"), False) == ([], [])


@pytest.mark.parametrize(
    ("kind", "field", "values"),
    [
        ("consultation.recorded", "topic", list(LegalTopic)),
        ("consultation.recorded", "channel", list(Channel)),
        ("mediation.recorded", "outcome", list(MediationOutcome)),
        ("mediation.recorded", "petition_backlog", [True, False]),
        ("lecture.held", "evening_or_holiday", [True, False]),
        ("legal_aid.assisted", "kind", list(LegalAidKind)),
        ("document.reviewed", "kind", list(DocumentKind)),
        ("risk.reported", "severity", list(Severity)),
        ("visit.logged", "village_code", [VILLAGE]),
        ("feedback.submitted", "village_code", [VILLAGE]),
    ],
)
def test_every_figure_a_record_adds_has_its_column(kind: str, field: str, values: list[object]) -> None:
    for value in values:
        assert set(contributions(sample_payload(kind, **{field: value}))) <= set(METRICS), (kind, value)


def test_every_figure_of_the_assessment_and_active_advisors_has_its_column() -> None:
    for grade in Grade:
        assert set(grade_figures(str(grade), Decimal("1000.00"))) <= set(METRICS), grade
    assert set(month_closed_figures(met=True)) <= set(METRICS)
    assert {ACTIVE_ADVISORS, LEGACY_SUBSIDY_YUAN} <= set(METRICS)
    assert len(set(METRICS)) == len(METRICS)


def test_the_migration_makes_a_column_per_metric_in_their_order() -> None:
    sql = (MIGRATIONS / "014_wide_figures.sql").read_text()
    table = sql[
        sql.index("CREATE TABLE figures (") : sql.index("PRIMARY KEY (region_code, period, kafka_partition)")
    ]
    assert re.findall(r"^\s+(\w+) double precision NOT NULL DEFAULT 0,$", table, re.MULTILINE) == list(
        METRICS
    )


def test_the_stored_rows_hold_the_stored_deltas_a_column_per_metric() -> None:
    march = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    consultation = {"consultations": 1, "consultation_person_times": 3}
    changes = [
        (VILLAGE, periods(march), consultation, 1),
        (VILLAGE, periods(march), {"visits": 1, "on_site_minutes": 90}, 1),
        ("370402105202", periods(march), consultation, 1),
        ("370402105202", periods(march), consultation, -1),  # voided in the batch: no row
        (VILLAGE, ["2026"], grade_figures("good", Decimal("1200.50")), 1),
    ]
    rows = stored_rows(changes)
    assert set(rows) == {
        (VILLAGE, "2026-03", 12),
        (VILLAGE, "2026-Q1", 9),
        (VILLAGE, "2026", 9),
        (VILLAGE, "2026", 12),
    }
    pivoted = {
        (village, period, deepest, metric): value
        for (village, period, deepest), values in rows.items()
        for metric, value in zip(METRICS, values, strict=True)
        if value
    }
    assert pivoted == {
        (village, period, deepest, metric): value
        for (village, period, metric, deepest), value in stored_deltas(changes).items()
    }
    assert pivoted[(VILLAGE, "2026", 12, "subsidy_fen")] == 120050
