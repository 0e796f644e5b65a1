"""Year-end approval (数据审批), pure: the county bureau reviews its advisors' computed grades, may adjust one
with a written reason and submits; the prefecture bureau accepts (the grades are locked and payable) or
returns with a reason. A grade computed after the lock (a late record) is a proposed revision: it is paid
only once a new submission with it has been accepted.

One table of transitions serves the HTTP API (to refuse with the rule) and the projection (which applies
the steps in the order of the county's partition and ignores one that does not fit, e.g. the loser of two
officials acting at once)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from contracts.approval import ApprovalStatus, Step, refusal
from contracts.events import Grade, SubmittedGrade
from services.assessment.rules.hours import CENT, Term
from services.assessment.rules.scoring import term_share

STATUS_NAMES = {
    ApprovalStatus.not_started: "未提交",
    ApprovalStatus.submitted: "已提交待审",
    ApprovalStatus.returned: "已退回",
    ApprovalStatus.accepted: "已通过(锁定)",
}


class Refused(Exception):
    """A step that does not fit where the approval stands; the message is the rule, for people."""


@dataclass(frozen=True)
class ApprovalState:
    """Where one county's year stands. `submission` is the number of the latest submission (0: none);
    `locked` the grades of the latest accepted one (what is payable), kept through re-submissions."""

    status: ApprovalStatus = ApprovalStatus.not_started
    submission: int = 0
    locked_submission: int | None = None
    locked: tuple[SubmittedGrade, ...] = ()
    pending: tuple[SubmittedGrade, ...] = ()  # the submission waiting for the prefecture's decision
    acted_by: str | None = None
    acted_at: datetime | None = None
    reason: str | None = None
    accepted_by: str | None = None
    accepted_at: datetime | None = None


@dataclass(frozen=True)
class ComputedGrade:
    """The latest revision of a grade the closer computed (`assessment.graded`)."""

    advisor_id: str
    village_code: str
    revision: int
    grade: Grade
    subsidy_ratio: float
    subsidy_yuan: Decimal


@dataclass(frozen=True)
class Adjustment:
    """An `approval.grade_adjusted` as applied."""

    event_id: Any
    advisor_id: str
    village_code: str
    based_on_revision: int
    grade: Grade
    subsidy_ratio: float
    subsidy_yuan: Decimal
    reason: str
    acted_by: str
    acted_at: datetime


def check(state: ApprovalState, step: Step, submission: int | None = None) -> None:
    """Raises Refused unless the step may be taken now (the rule is `contracts.approval.refusal`)."""
    reason = refusal(state.status, state.submission, step, submission)
    if reason is not None:
        raise Refused(reason)


def apply_step(
    state: ApprovalState,
    step: Step,
    *,
    submission: int,
    acted_by: str,
    acted_at: datetime,
    reason: str | None = None,
    grades: Sequence[SubmittedGrade] = (),
) -> ApprovalState:
    """The state after a submission, a return or an acceptance (adjustments do not move it). Raises
    Refused for a step that does not fit, including a submission whose number is not the next one."""
    check(state, step, submission)
    if step is Step.submit:
        return replace(
            state,
            status=ApprovalStatus.submitted,
            submission=submission,
            acted_by=acted_by,
            acted_at=acted_at,
            reason=None,
            pending=tuple(grades),
        )
    if step is Step.return_:
        return replace(
            state,
            status=ApprovalStatus.returned,
            acted_by=acted_by,
            acted_at=acted_at,
            reason=reason,
            pending=(),
        )
    if step is Step.accept:
        return replace(
            state,
            status=ApprovalStatus.accepted,
            locked_submission=submission,
            locked=state.pending,
            acted_by=acted_by,
            acted_at=acted_at,
            reason=None,
            accepted_by=acted_by,
            accepted_at=acted_at,
            pending=(),
        )
    raise Refused(f"{step} does not move the approval")


def effective_grades(
    computed: Iterable[ComputedGrade], adjustments: Iterable[Adjustment]
) -> list[SubmittedGrade]:
    """What the county would submit now: each pair's latest computed grade, or the county's latest
    adjustment of exactly that revision (an adjustment of an older revision no longer applies: new facts
    arrived since, and the county decides again)."""
    latest: dict[tuple[str, str], Adjustment] = {}
    for adjustment in sorted(adjustments, key=lambda found: found.acted_at):
        latest[(adjustment.advisor_id, adjustment.village_code)] = adjustment
    grades = []
    for found in sorted(computed, key=lambda grade: (grade.village_code, grade.advisor_id)):
        adjusted = latest.get((found.advisor_id, found.village_code))
        if adjusted is not None and adjusted.based_on_revision == found.revision:
            grades.append(
                SubmittedGrade(
                    advisor_id=found.advisor_id,
                    village_code=found.village_code,
                    revision=found.revision,
                    adjustment_id=adjusted.event_id,
                    grade=adjusted.grade,
                    subsidy_ratio=adjusted.subsidy_ratio,
                    subsidy_yuan=adjusted.subsidy_yuan,
                )
            )
        else:
            grades.append(
                SubmittedGrade(
                    advisor_id=found.advisor_id,
                    village_code=found.village_code,
                    revision=found.revision,
                    grade=found.grade,
                    subsidy_ratio=found.subsidy_ratio,
                    subsidy_yuan=found.subsidy_yuan,
                )
            )
    return grades


def proposed_revisions(
    current: Sequence[SubmittedGrade], locked: Sequence[SubmittedGrade]
) -> list[SubmittedGrade]:
    """The grades that differ from what was locked (or were not in it): each is paid only after a new
    submission with it is accepted."""
    held = {(grade.advisor_id, grade.village_code): grade for grade in locked}
    return [grade for grade in current if held.get((grade.advisor_id, grade.village_code)) != grade]


def total_yuan(grades: Iterable[SubmittedGrade]) -> Decimal:
    return sum((grade.subsidy_yuan for grade in grades), Decimal("0.00")).quantize(CENT)


def months_in_term(year: int, terms: Iterable[Term]) -> int:
    """Calendar months of the year in which any of the terms covers at least one day."""
    months: set[int] = set()
    for term in terms:
        first = max(term.term_start, date(year, 1, 1))
        last = min(term.last_day_served, date(year, 12, 31))
        if last < first:
            continue
        months.update(range(first.month, last.month + 1))
    return len(months)


def annual_amount(year: int, terms: Sequence[Term]) -> Decimal:
    """The annual subsidy of the term in force at the end of the year's service (the latest term)."""
    serving = [term for term in terms if term_share(year, term.term_start, term.last_day_served) > 0]
    if not serving:
        return Decimal("0.00")
    return max(serving, key=lambda term: term.term_start).annual_subsidy_yuan


def grades_json(grades: Iterable[SubmittedGrade]) -> str:
    return orjson.dumps([grade.model_dump(mode="json") for grade in grades]).decode()


def grades_from_json(text: str | bytes) -> tuple[SubmittedGrade, ...]:
    return tuple(SubmittedGrade.model_validate(item) for item in orjson.loads(text))


GRADE_NAMES = {
    Grade.excellent: "优秀",
    Grade.good: "良好",
    Grade.qualified: "合格",
    Grade.unqualified: "不合格",
    Grade.violation: "违法违纪",
}
NOT_PAYABLE = "不可支付：成绩尚未经地市司法局审批通过"
PAYOUT_HEADER = [
    "法律顾问编号",
    "姓名",
    "执业机构",
    "服务村(社区)",
    "村(社区)代码",
    "年内服务月数",
    "年度补贴标准(元)",
    "考核等级",
    "补贴比例",
    "应付金额(元)",
    "审批状态",
    "审批人",
    "审批时间",
    "备注",
]


@dataclass(frozen=True)
class PayoutLine:
    """One row of the payout sheet: one advisor in one village (a grade is per village)."""

    advisor_id: str
    advisor_name: str
    organisation: str
    village_code: str
    village_name: str
    months_in_term: int
    annual_yuan: Decimal
    grade: Grade
    subsidy_ratio: float
    payable_yuan: Decimal | None  # None: not payable (not accepted)
    status: ApprovalStatus
    approved_by: str | None
    approved_at: datetime | None
    note: str


@dataclass(frozen=True)
class PayoutFacts:
    """What the sheet needs of one county beyond its grades."""

    terms: dict[tuple[str, str], list[Term]]
    advisors: dict[str, tuple[str, str]]  # id -> (name, organisation)
    places: dict[str, str]  # code -> name


def payout_lines(
    year: int, state: ApprovalState, current: Sequence[SubmittedGrade], facts: PayoutFacts
) -> list[PayoutLine]:
    """Only accepted grades are payable, at their locked amount; a grade computed or adjusted since the
    lock is named in the note as a proposed revision, paid once a new submission with it is accepted."""
    locked = {(grade.advisor_id, grade.village_code): grade for grade in state.locked}
    now = {(grade.advisor_id, grade.village_code): grade for grade in current}
    lines = []
    for pair in sorted(set(locked) | set(now), key=lambda pair: (pair[1], pair[0])):
        advisor_id, village_code = pair
        held, proposed = locked.get(pair), now.get(pair)
        shown = held or proposed
        assert shown is not None  # noqa: S101 - the pair comes from one of the two
        terms = facts.terms.get(pair, [])
        name, organisation = facts.advisors.get(advisor_id, ("", ""))
        if held is not None:
            note = ""
            if proposed is not None and proposed != held:
                note = (
                    f"待审批修订：{GRADE_NAMES[proposed.grade]}，{proposed.subsidy_yuan} 元"
                    f"（第 {proposed.revision} 版）；批准前按锁定金额支付"
                )
            elif proposed is None:
                note = "锁定后该成绩已不在本年度计算结果中，请核实"
            status, by, at, payable = (
                ApprovalStatus.accepted,
                state.accepted_by,
                state.accepted_at,
                held.subsidy_yuan,
            )
        else:
            note, status, by, at, payable = NOT_PAYABLE, state.status, None, None, None
            if state.status is ApprovalStatus.accepted:
                status = ApprovalStatus.not_started
                note = NOT_PAYABLE + "（锁定后新增，待下次提交）"
        lines.append(
            PayoutLine(
                advisor_id=advisor_id,
                advisor_name=name,
                organisation=organisation,
                village_code=village_code,
                village_name=facts.places.get(village_code, ""),
                months_in_term=months_in_term(year, terms),
                annual_yuan=annual_amount(year, terms),
                grade=shown.grade,
                subsidy_ratio=shown.subsidy_ratio,
                payable_yuan=payable,
                status=status,
                approved_by=by,
                approved_at=at,
                note=note,
            )
        )
    return lines


def payout_table(lines: Sequence[PayoutLine]) -> list[list[Any]]:
    """The sheet a finance office pays from: money as exact decimal text, a total row at the bottom."""
    table: list[list[Any]] = [PAYOUT_HEADER]
    for line in lines:
        table.append(
            [
                line.advisor_id,
                line.advisor_name,
                line.organisation,
                line.village_name,
                line.village_code,
                line.months_in_term,
                line.annual_yuan,
                GRADE_NAMES[line.grade],
                f"{line.subsidy_ratio:.0%}",
                "" if line.payable_yuan is None else line.payable_yuan,
                STATUS_NAMES[line.status],
                line.approved_by or "",
                line.approved_at.isoformat(timespec="seconds") if line.approved_at else "",
                line.note,
            ]
        )
    payable = [line.payable_yuan for line in lines if line.payable_yuan is not None]
    total = sum(payable, Decimal("0.00")).quantize(CENT)
    unpaid = len(lines) - len(payable)
    table.append(
        [
            "合计",
            f"{len(lines)} 人次",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            total,
            f"{len(payable)} 项可支付",
            "",
            "",
            f"{unpaid} 项未经审批通过，不可支付" if unpaid else "",
        ]
    )
    return table
