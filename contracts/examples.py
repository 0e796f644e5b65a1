"""An example of every event's payload: for the AsyncAPI and OpenAPI documents, and for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

EXAMPLE_VILLAGE = "370402105201"  # a village (村委会) in Zaozhuang's Shizhong district
EXAMPLE_ADVISOR = "lawyer-0001"
EXAMPLE_TEAM = "team-0001"
EXAMPLE_TIME = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def example_fields(
    event_type: str, advisor_id: str = EXAMPLE_ADVISOR, village_code: str = EXAMPLE_VILLAGE
) -> dict[str, Any]:
    """A valid payload of the type, as JSON-ready values."""
    common = {
        "advisor_id": advisor_id,
        "village_code": village_code,
        "occurred_at": EXAMPLE_TIME.isoformat(),
        "recorded_by": advisor_id,
    }
    samples: dict[str, dict[str, Any]] = {
        "consultation.recorded": {
            **common,
            "channel": "on_site",
            "person_times": 3,
            "topic": "land",
            "duration_minutes": 40,
            "summary": "承包地边界争议",
            "requester": {"name": "张三", "phone": "13800000000"},
        },
        "mediation.recorded": {
            **common,
            "dispute_type": "neighbour_property",
            "parties": 2,
            "outcome": "resolved",
            "major_or_difficult": False,
            "petition_backlog": False,
            "agreement_signed": True,
            "duration_minutes": 90,
        },
        "lecture.held": {
            **common,
            "title": "民法典进村",
            "attendees": 45,
            "evening_or_holiday": True,
            "format": "on_site",
            "large_event": False,
            "duration_minutes": 60,
        },
        "legal_aid.assisted": {
            **common,
            "kind": "application_assisted",
            "case_category": "labour",
            "applicants": 1,
        },
        "visit.logged": {
            **common,
            "started_at": EXAMPLE_TIME.isoformat(),
            "ended_at": (EXAMPLE_TIME + timedelta(hours=4)).isoformat(),
            "activities": ["consultation", "document_review"],
        },
        "document.reviewed": {**common, "kind": "village_rules", "title": "村规民约修订"},
        "risk.reported": {
            **common,
            "category": "large_petition_risk",
            "severity": "medium",
            "people_involved": 12,
            "description": "征地补偿分配不满",
            "reported_to": "township",
        },
        "feedback.submitted": {**common, "rater": "resident", "score": 5, "comment": "很及时"},
        "record.voided": {**common, "target_event_id": str(uuid.UUID(int=1)), "reason": "录入错误"},
        "personal.erased": {
            "target_event_id": str(uuid.UUID(int=1)),
            "village_code": village_code,
            "erased_at": EXAMPLE_TIME.isoformat(),
            "erased_by": "county-370402",
            "reason": "data_subject_request",
        },
        "advisor.registered": {
            "advisor_id": advisor_id,
            "name": "李律师",
            "kind": "lawyer",
            "organisation": "山东某律师事务所",
            "licence_no": "13704201810000001",
            "phone": "13900000000",
        },
        "advisor.assigned": {
            "advisor_id": advisor_id,
            "village_code": village_code,
            "term_start": "2026-01-01",
            "term_end": "2026-12-31",
            "annual_subsidy_yuan": "3000.00",
        },
        "advisor.released": {
            "advisor_id": advisor_id,
            "village_code": village_code,
            "effective_date": "2026-12-31",
            "reason": "term_ended",
        },
        "violation.recorded": {
            "advisor_id": advisor_id,
            "village_code": village_code,
            "date": "2026-03-02",
            "description": "虚报服务时长",
            "recorded_by": "county-bureau-370402",
        },
        "region.registered": {
            "code": village_code,
            "name": "东王庄村",
            "level": "village",
            "parent_code": village_code[:9],
        },
        "region.retired": {
            "code": village_code,
            "effective_date": "2026-07-01",
            "successor_code": village_code[:9] + "202",
            "reason": "merged",
        },
        "region.classified": {
            "code": village_code,
            "tags": ["remote", "mountain"],
            "effective_from": "2026-01-01",
            "recorded_by": "county-bureau-370402",
        },
        "policy.published": {
            "region_code": "37",
            "effective_from": "2026-01-01",
            "rules": {"lectures_required": 1, "lecture_period": "quarter"},
            "recorded_by": "province-department-37",
        },
        "team.registered": {
            "team_id": EXAMPLE_TEAM,
            "name": "枣庄某律师事务所第一法律顾问团队",
            "organisation": "山东某律师事务所",
            "members": [advisor_id, "lawyer-0002"],
            "leader_id": advisor_id,
            "effective_from": "2026-01-01",
        },
        "team.assigned": {
            "team_id": EXAMPLE_TEAM,
            "village_code": village_code,
            "term_start": "2026-01-01",
            "term_end": "2026-12-31",
            "annual_subsidy_yuan": "6000.00",
        },
        "team.released": {
            "team_id": EXAMPLE_TEAM,
            "village_code": village_code,
            "effective_date": "2026-12-31",
            "reason": "term_ended",
        },
        "compliance.month_closed": {
            "advisor_id": advisor_id,
            "village_code": village_code,
            "month": "2026-03",
            "on_site_minutes": 450,
            "credited_offsite_minutes": 30,
            "required_minutes": 480,
            "met": True,
        },
        "compliance.alert_raised": {
            "advisor_id": advisor_id,
            "village_code": village_code,
            "kind": "hours_at_risk",
            "as_of": "2026-03-20",
            "detail": "120 of 480 minutes by day 20",
        },
        "assessment.graded": {
            "advisor_id": advisor_id,
            "village_code": village_code,
            "year": 2026,
            "score": 72.5,
            "grade": "qualified",
            "subsidy_ratio": 0.7,
            "subsidy_yuan": "2100.00",
            "components": {"monthly_hours": 80, "lectures": 75, "feedback": 60},
            "policy": {
                "region_code": "37",
                "effective_from": "2026-01-01",
                "event_id": str(uuid.UUID(int=2)),
            },
        },
        "approval.grade_adjusted": {
            "county_code": village_code[:6],
            "year": 2025,
            "acted_by": "county-370402",
            "acted_at": EXAMPLE_TIME.isoformat(),
            "advisor_id": advisor_id,
            "village_code": village_code,
            "based_on_revision": 1,
            "grade": "good",
            "subsidy_ratio": 1.0,
            "subsidy_yuan": "3000.00",
            "reason": "十月驻村记录因系统故障补录，经核实应计入",
        },
        "approval.submitted": {
            "county_code": village_code[:6],
            "year": 2025,
            "acted_by": "county-370402",
            "acted_at": EXAMPLE_TIME.isoformat(),
            "submission": 1,
            "grades": [
                {
                    "advisor_id": advisor_id,
                    "village_code": village_code,
                    "revision": 1,
                    "grade": "qualified",
                    "subsidy_ratio": 0.7,
                    "subsidy_yuan": "2100.00",
                }
            ],
            "total_yuan": "2100.00",
        },
        "approval.returned": {
            "county_code": village_code[:6],
            "year": 2025,
            "acted_by": "prefecture-3704",
            "acted_at": EXAMPLE_TIME.isoformat(),
            "submission": 1,
            "reason": "请核实第三季度讲座记录",
        },
        "approval.accepted": {
            "county_code": village_code[:6],
            "year": 2025,
            "acted_by": "prefecture-3704",
            "acted_at": EXAMPLE_TIME.isoformat(),
            "submission": 1,
        },
    }
    return samples[event_type]
