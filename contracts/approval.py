"""What the approval events mean (`approval.*` on the assessment topic): where a county's year-end approval
stands after each step. Every consumer applies the steps of a county in the order of its partition and
ignores a step that does not fit (e.g. the second of two officials deciding at once), so every consumer
agrees on where each county stands."""

from __future__ import annotations

from enum import StrEnum


class ApprovalStatus(StrEnum):
    not_started = "not_started"
    submitted = "submitted"
    returned = "returned"
    accepted = "accepted"


class Step(StrEnum):
    adjust = "adjust"  # approval.grade_adjusted
    submit = "submit"  # approval.submitted
    return_ = "return"  # approval.returned
    accept = "accept"  # approval.accepted


STEP_OF_TYPE = {
    "approval.grade_adjusted": Step.adjust,
    "approval.submitted": Step.submit,
    "approval.returned": Step.return_,
    "approval.accepted": Step.accept,
}


def refusal(status: ApprovalStatus, current: int, step: Step, submission: int | None = None) -> str | None:
    """Why the step does not fit where the approval stands (`current`: the latest submission's number, 0
    for none), or None when it does. `submission` is the number a submission or a decision carries."""
    if step in (Step.adjust, Step.submit) and status is ApprovalStatus.submitted:
        return (
            f"submission {current} is with the prefecture bureau: wait for it to be accepted or returned "
            "before adjusting or submitting again"
        )
    if step is Step.submit and submission is not None and submission != current + 1:
        return f"the next submission is number {current + 1}, not {submission}"
    if step in (Step.return_, Step.accept):
        if status is not ApprovalStatus.submitted:
            return f"there is no submission waiting for a decision (the approval is {status})"
        if submission is not None and submission != current:
            return f"submission {submission} is not the one waiting (that is {current})"
    return None


def after(status: ApprovalStatus, step: Step) -> ApprovalStatus:
    """The status after a step that fits."""
    return {
        Step.adjust: status,
        Step.submit: ApprovalStatus.submitted,
        Step.return_: ApprovalStatus.returned,
        Step.accept: ApprovalStatus.accepted,
    }[step]
