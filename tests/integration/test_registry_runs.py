"""The registry applied in runs (issue 17): a stretch of region registrations, advisor registrations and
assignments goes to PostgreSQL as a statement per type, not a round trip per event. Whatever the batching,
every projection's tables are byte-identical to the events applied one at a time, among re-registrations,
refused registrations, repeated assignments, releases and retirements."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from contracts.events import (
    AdvisorAssigned,
    AdvisorKind,
    AdvisorRegistered,
    AdvisorReleased,
    EventPayload,
    PublicContact,
    RegionLevel,
    RegionRegistered,
    RegionRetired,
    ReleaseReason,
    RetireReason,
)
from plumbing.projection import ConsumedEvent, Projection
from services.assessment.projection import assessment_projection
from services.dashboard.projection import dashboard_projection
from services.ledger.projection import ledger_projection
from tests.integration.test_dashboard_batches import cut, tables_after
from tests.support.places import fresh_county
from tests.support.registry import registry_stream

NOW = datetime(2026, 11, 23, tzinfo=UTC)
PROJECTIONS: dict[str, Callable[[], Projection]] = {
    "ledger": lambda: ledger_projection(b"k" * 32),
    "assessment": assessment_projection,
    "dashboard": dashboard_projection,
}


def registry(seed: int) -> list[ConsumedEvent]:
    """A county's regions, advisors and terms as the registry sends them: stretches of one kind and
    stretches of all kinds mixed, every key coming back (names, owners, phones, term ends, subsidies
    changed), registrations from regions that do not own the advisor, releases and retirements between."""
    rng = random.Random(seed)
    county = fresh_county()
    townships = [f"{county}00{n}" for n in (1, 2, 3)]
    villages = [f"{township}2{n:02d}" for township in townships for n in range(1, 5)]
    # new advisors keep coming (an advisor's first registrations and the ones its owner then refuses fall in
    # one run), and owners are mostly townships (ownership only moves up: the county's is final)
    advisors = [f"lawyer-r{seed}{n:02d}" for n in range(40)]
    owners = [county, *townships, *townships, None]
    payloads: list[EventPayload] = [
        RegionRegistered(code=county, name="县", level=RegionLevel.county, parent_code=county[:4]),
        *[
            RegionRegistered(code=t, name=f"镇{t[-1]}", level=RegionLevel.township, parent_code=county)
            for t in townships
        ],
    ]

    def region(version: int) -> RegionRegistered:
        village = rng.choice(villages)
        return RegionRegistered(
            code=village,
            name=f"村{village[-2:]}-{version}",
            level=RegionLevel.village,
            parent_code=village[:9],
        )

    def card(version: int) -> AdvisorRegistered:
        contact = PublicContact(phone=f"0632-{version:07d}", consented_on=date(2026, 1, 1 + version % 28))
        return AdvisorRegistered(
            advisor_id=rng.choice(advisors[: 2 + version // 1000]),
            name=f"顾问{version}",
            kind=rng.choice(list(AdvisorKind)),
            organisation=f"律所{version % 3}",
            licence_no=f"L{version}",
            phone=rng.choice([None, f"1380000{version:04d}"]),
            region_code=rng.choice(owners),
            public_contact=rng.choice([None, contact]),
        )

    def term(version: int) -> AdvisorAssigned:
        start = date(2026, rng.choice([1, 7]), 1)
        return AdvisorAssigned(
            advisor_id=rng.choice(advisors),
            village_code=rng.choice(villages),
            term_start=start,
            term_end=date(2026 + rng.randint(0, 2), 12, 31),
            annual_subsidy_yuan=Decimal(rng.choice(["3000.00", "3600.50", "4800.00"])) + version % 2,
        )

    makers = [region, card, term]
    # a village retired before it is first registered: one event at a time it ends unretired
    payloads.append(
        RegionRetired(code=villages[-1], effective_date=date(2026, 6, 1), reason=RetireReason.abolished)
    )
    for version in range(260):
        registered = {p.code for p in payloads if isinstance(p, RegionRegistered) and p.code in villages}
        roll = rng.random()
        if roll < 0.04:
            payloads.append(
                AdvisorReleased(
                    advisor_id=rng.choice(advisors),
                    village_code=rng.choice(villages),
                    effective_date=date(2026, rng.randint(2, 12), 1),
                    reason=ReleaseReason.replaced,
                )
            )
        elif roll < 0.06:
            # a village registered or not yet: a retirement that comes before the village's registration
            # leaves it unretired, one event at a time, and so must any batching of the two
            others = villages[:-1]  # the last is the one retired before its registration, only then
            known = sorted(registered.intersection(others))
            village = rng.choice(known) if known and rng.random() < 0.5 else rng.choice(others)
            payloads.append(
                RegionRetired(code=village, effective_date=date(2026, 6, 1), reason=RetireReason.abolished)
            )
        elif roll < 0.5:
            # a stretch of one kind, as a rebuild's registry mostly is
            maker = rng.choice(makers)
            payloads.extend(maker(version * 100 + n) for n in range(rng.randint(2, 12)))
        else:
            payloads.append(rng.choice(makers)(version * 100))
    return registry_stream(payloads, rng, NOW)


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
async def test_the_registry_in_runs_leaves_what_it_leaves_one_event_at_a_time(
    admin_pool: asyncpg.Pool, tag: str, name: str
) -> None:
    events = registry(seed=5)
    one_by_one = await tables_after(
        admin_pool, f"runs_{tag}_single", [[item] for item in events], PROJECTIONS[name]()
    )
    assert any(one_by_one.values()), "the registry leaves rows"
    rng = random.Random(9)
    splits = {"whole": [events], **{f"cut {n}": cut(events, rng, n) for n in (3, 17)}}
    for split, batches in splits.items():
        found = await tables_after(
            admin_pool, f"runs_{tag}_{split.replace(' ', '_')}", batches, PROJECTIONS[name]()
        )
        assert found.keys() == one_by_one.keys(), split
        for table in one_by_one:
            assert found[table] == one_by_one[table], (
                f"{name}.{table} differs when the registry comes {split}"
            )


async def test_the_stream_has_what_the_runs_must_get_right(admin_pool: asyncpg.Pool, tag: str) -> None:
    """The stream is not trivial: in one batch, keys come back within a run, and a registration is refused
    after an earlier one in the same run gave the advisor an owner."""
    events = registry(seed=5)
    kinds = [type(item.event.data) for item in events]
    longest: dict[type, int] = {}
    length = 0
    for index, kind in enumerate(kinds):
        length = length + 1 if index and kinds[index - 1] is kind else 1
        longest[kind] = max(longest.get(kind, 0), length)
    assert longest[RegionRegistered] >= 5
    assert longest[AdvisorRegistered] >= 5
    assert longest[AdvisorAssigned] >= 5
    registered_before: set[str] = set()
    retired_first = set()
    for item in events:
        data = item.event.data
        if isinstance(data, RegionRetired) and data.code not in registered_before:
            retired_first.add(data.code)
        elif isinstance(data, RegionRegistered):
            registered_before.add(data.code)
    assert retired_first & registered_before, "a village retired before its registration, registered later"
    whole = await tables_after(admin_pool, f"runs_{tag}_refused", [events], PROJECTIONS["ledger"]())
    registrations = [item.event.data for item in events if isinstance(item.event.data, AdvisorRegistered)]
    owners: dict[str, str | None] = {}
    refused = 0
    for data in registrations:
        if data.advisor_id in owners and (
            owners[data.advisor_id] is not None
            and (data.region_code is None or not owners[data.advisor_id].startswith(data.region_code))  # type: ignore[union-attr]
        ):
            refused += 1
            continue
        owners[data.advisor_id] = data.region_code or owners.get(data.advisor_id)
    assert refused >= 3, "some registrations come from regions that do not own the advisor"
    for advisor, owner in owners.items():
        assert f"({advisor}," in whole["advisors"]
        if owner is not None:
            assert any(
                line.startswith(f"({advisor},") and line.rstrip(")").endswith(f",{owner}")
                for line in whole["advisors"].splitlines()
            ), (advisor, owner)
