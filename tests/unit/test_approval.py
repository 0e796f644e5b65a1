"""Year-end approval as a table of cases (issue 13): who may do what when, which grade is submitted, what is
payable, and the payout sheet's rows and total."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from contracts.approval import ApprovalStatus, Step
from contracts.events import Grade, SubmittedGrade
from services.assessment.rules import Term
from services.assessment.rules.approval import (
    NOT_PAYABLE,
    Adjustment,
    ApprovalState,
    ComputedGrade,
    PayoutFacts,
    Refused,
    annual_amount,
    apply_step,
    check,
    effective_grades,
    grades_from_json,
    grades_json,
    months_in_term,
    payout_lines,
    payout_table,
    proposed_revisions,
    total_yuan,
)

AT = datetime(2027, 1, 20, 9, 0, tzinfo=UTC)
VILLAGE = "370402101201"


def grade(
    advisor: str = "a1", revision: int = 1, which: Grade = Grade.good, yuan: str = "3000.00"
) -> SubmittedGrade:
    ratio = {Grade.good: 1.0, Grade.qualified: 0.7, Grade.unqualified: 0.5}.get(which, 1.0)
    return SubmittedGrade(
        advisor_id=advisor,
        village_code=VILLAGE,
        revision=revision,
        grade=which,
        subsidy_ratio=ratio,
        subsidy_yuan=Decimal(yuan),
    )


def step(state: ApprovalState, which: Step, submission: int, **extra: object) -> ApprovalState:
    return apply_step(state, which, submission=submission, acted_by="someone", acted_at=AT, **extra)  # type: ignore[arg-type]


NOT_STARTED = ApprovalState()
SUBMITTED = step(NOT_STARTED, Step.submit, 1, grades=[grade()])
RETURNED = step(SUBMITTED, Step.return_, 1, reason="核实讲座")
ACCEPTED = step(SUBMITTED, Step.accept, 1)


@pytest.mark.parametrize(
    ("state", "which", "submission", "allowed"),
    [
        (NOT_STARTED, Step.adjust, None, True),
        (NOT_STARTED, Step.submit, None, True),
        (NOT_STARTED, Step.accept, 1, False),
        (NOT_STARTED, Step.return_, 1, False),
        (SUBMITTED, Step.adjust, None, False),
        (SUBMITTED, Step.submit, None, False),
        (SUBMITTED, Step.accept, 1, True),
        (SUBMITTED, Step.accept, 2, False),
        (SUBMITTED, Step.return_, 1, True),
        (RETURNED, Step.adjust, None, True),
        (RETURNED, Step.submit, None, True),
        (RETURNED, Step.accept, 1, False),
        (ACCEPTED, Step.adjust, None, True),
        (ACCEPTED, Step.submit, None, True),
        (ACCEPTED, Step.accept, 1, False),
        (ACCEPTED, Step.return_, 1, False),
    ],
)
def test_which_step_fits_where_the_approval_stands(
    state: ApprovalState, which: Step, submission: int | None, allowed: bool
) -> None:
    if allowed:
        check(state, which, submission)
    else:
        with pytest.raises(Refused):
            check(state, which, submission)


def test_a_submission_must_be_the_next_number() -> None:
    with pytest.raises(Refused, match="next submission is number 2"):
        step(RETURNED, Step.submit, 3, grades=[grade()])
    assert step(RETURNED, Step.submit, 2, grades=[grade()]).submission == 2


def test_acceptance_locks_the_submitted_grades_and_a_re_submission_keeps_the_lock_until_accepted() -> None:
    assert ACCEPTED.status is ApprovalStatus.accepted
    assert ACCEPTED.locked == (grade(),)
    assert ACCEPTED.locked_submission == 1
    assert ACCEPTED.accepted_by == "someone"
    resubmitted = step(ACCEPTED, Step.submit, 2, grades=[grade(revision=2, yuan="2100.00")])
    assert resubmitted.locked == (grade(),)
    assert resubmitted.pending == (grade(revision=2, yuan="2100.00"),)
    returned = step(resubmitted, Step.return_, 2, reason="不同意")
    assert returned.locked == (grade(),)
    assert returned.locked_submission == 1
    assert returned.reason == "不同意"
    accepted = step(step(returned, Step.submit, 3, grades=[grade(revision=2)]), Step.accept, 3)
    assert accepted.locked == (grade(revision=2),)
    assert accepted.locked_submission == 3


def computed(advisor: str = "a1", revision: int = 1, which: Grade = Grade.excellent) -> ComputedGrade:
    return ComputedGrade(advisor, VILLAGE, revision, which, 1.0, Decimal("3000.00"))


def adjustment(revision: int, which: Grade, when: int = 1) -> Adjustment:
    return Adjustment(
        uuid.UUID(int=when),
        "a1",
        VILLAGE,
        revision,
        which,
        0.7,
        Decimal("2100.00"),
        "理由",
        "county",
        AT.replace(hour=when),
    )


def test_an_adjustment_of_the_latest_revision_is_submitted_with_its_id() -> None:
    [found] = effective_grades([computed(revision=2)], [adjustment(2, Grade.qualified)])
    assert (found.grade, found.subsidy_yuan, found.adjustment_id) == (
        Grade.qualified,
        Decimal("2100.00"),
        uuid.UUID(int=1),
    )


def test_the_latest_adjustment_wins_and_one_of_an_older_revision_no_longer_applies() -> None:
    later = [adjustment(1, Grade.qualified, when=1), adjustment(1, Grade.unqualified, when=2)]
    assert effective_grades([computed()], later)[0].grade is Grade.unqualified
    [found] = effective_grades([computed(revision=2)], [adjustment(1, Grade.qualified)])
    assert (found.grade, found.adjustment_id) == (Grade.excellent, None)


def test_proposed_revisions_are_the_grades_that_differ_from_the_lock() -> None:
    locked = [grade("a1"), grade("a2")]
    now = [grade("a1"), grade("a2", revision=2, which=Grade.qualified, yuan="2100.00"), grade("a3")]
    assert [item.advisor_id for item in proposed_revisions(now, locked)] == ["a2", "a3"]
    assert total_yuan(now) == Decimal("8100.00")


def test_submitted_grades_survive_their_json() -> None:
    items = (grade(), grade("a2", which=Grade.qualified, yuan="2100.00"))
    assert grades_from_json(grades_json(items)) == items


@pytest.mark.parametrize(
    ("terms", "months", "annual"),
    [
        ([Term(date(2026, 1, 1), date(2026, 12, 31), None, Decimal("3000.00"))], 12, "3000.00"),
        ([Term(date(2026, 3, 15), date(2027, 3, 14), None, Decimal("3600.00"))], 10, "3600.00"),
        ([Term(date(2025, 1, 1), date(2027, 12, 31), date(2026, 6, 30), Decimal("3000.00"))], 6, "3000.00"),
        (
            [
                Term(date(2026, 1, 1), date(2026, 4, 30), None, Decimal("3000.00")),
                Term(date(2026, 4, 1), date(2026, 12, 31), None, Decimal("4000.00")),
            ],
            12,
            "4000.00",
        ),
        ([Term(date(2027, 1, 1), date(2027, 12, 31), None, Decimal("3000.00"))], 0, "0.00"),
    ],
)
def test_months_in_term_and_the_annual_amount(terms: list[Term], months: int, annual: str) -> None:
    assert months_in_term(2026, terms) == months
    assert annual_amount(2026, terms) == Decimal(annual)


FACTS = PayoutFacts(
    terms={("a1", VILLAGE): [Term(date(2026, 1, 1), date(2026, 12, 31), None, Decimal("3000.00"))]},
    advisors={"a1": ("李律师", "山东某律师事务所")},
    places={VILLAGE: "东村"},
)


def test_only_accepted_grades_are_payable_and_the_sheet_says_so_for_the_rest() -> None:
    [line] = payout_lines(2026, SUBMITTED, [grade()], FACTS)
    assert line.payable_yuan is None
    assert line.note == NOT_PAYABLE
    assert line.status is ApprovalStatus.submitted
    [line] = payout_lines(2026, ACCEPTED, [grade()], FACTS)
    assert (line.payable_yuan, line.approved_by, line.note) == (Decimal("3000.00"), "someone", "")
    assert (line.advisor_name, line.organisation, line.village_name, line.months_in_term) == (
        "李律师",
        "山东某律师事务所",
        "东村",
        12,
    )


def test_a_grade_changed_after_the_lock_is_paid_at_the_locked_amount_and_named_as_proposed() -> None:
    [line] = payout_lines(2026, ACCEPTED, [grade(revision=2, which=Grade.qualified, yuan="2100.00")], FACTS)
    assert line.payable_yuan == Decimal("3000.00")
    assert "待审批修订：合格，2100.00 元（第 2 版）" in line.note
    lines = payout_lines(2026, ACCEPTED, [grade(), grade("a2")], FACTS)
    assert [(item.advisor_id, item.payable_yuan) for item in lines] == [
        ("a1", Decimal("3000.00")),
        ("a2", None),
    ]


def test_the_sheet_has_a_total_row_of_exact_decimals() -> None:
    state = step(NOT_STARTED, Step.submit, 1, grades=[grade(yuan="1000.10"), grade("a2", yuan="2000.20")])
    table = payout_table(
        payout_lines(
            2026,
            step(state, Step.accept, 1),
            [grade(yuan="1000.10"), grade("a2", yuan="2000.20"), grade("a3")],
            FACTS,
        )
    )
    assert table[0][9] == "应付金额(元)"
    assert [row[9] for row in table[1:-1]] == [Decimal("1000.10"), Decimal("2000.20"), ""]
    total = table[-1]
    assert total[0] == "合计"
    assert total[9] == Decimal("3000.30")
    assert isinstance(total[9], Decimal)
    assert total[13] == "1 项未经审批通过，不可支付"
