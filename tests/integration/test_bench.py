"""The benchmark's small run (`python -m bench --quick`): every stage runs on a stack of its own and the
counts match. Speed is not asserted here; it lives in the benchmark's report."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import goals, write
from bench.run import quick_config, run


def test_the_small_benchmark_runs_every_stage_and_its_counts_match(tmp_path: Path) -> None:
    result = run(quick_config())

    counts = result["counts"]
    assert counts["ledger_entries"] == counts["records_sent"]
    assert counts["dashboard_consultations"] == counts["consultations_expected"] > 0
    assert (
        result["kafka_produce"]["records"]
        == result["load"]["registry_events"] + result["load"]["record_events"]
    )
    for name in ("ledger", "assessment", "dashboard"):
        assert result["projections_alone"][name]["events"] == result["kafka_produce"]["records"], name
        # Rebuilt again with the partitions split between two processes; the counts below are of this one.
        parallel = result["projections_parallel"][name]
        assert (parallel["workers"], parallel["events"]) == (2, result["kafka_produce"]["records"]), name
    # The consumer ceiling read every published record, and decoded each without refusing one.
    for how in ("read", "read_and_decode"):
        assert result["consumer_ceiling"][how]["events"] == result["kafka_produce"]["records"], how
    assert result["consumer_ceiling"]["read_and_decode"]["poison"] == 0
    batch = result["intake_batch"]
    assert batch["accepted"] == batch["records"]
    assert batch["rejected"] == 0
    assert result["intake_single"]["statuses"] == {"202": result["intake_single"]["count"]}
    assert result["intake_single"]["count"] == quick_config().single_requests
    assert result["intake_single"]["client"] in ("bench/loadgen (Go)", "httpx (Python)")
    assert result["intake_single_anchor"]["statuses"] == {"200": result["intake_single_anchor"]["count"]}
    steady = result["end_to_end_steady"]
    assert steady["errors"] == 0
    assert steady["probes"] > 0
    assert steady["to_ledger"]["count"] == steady["to_dashboard"]["count"] == steady["probes"]
    # The probes' own requests are reported beside what they measure, every one of them: a probe that was
    # seen asked for the village's count before, sent its record and asked each service at least once.
    assert (steady["probe_poll_ms"], steady["senders"]) == (10.0, 8)
    assert steady["probe_requests_per_probe"] >= 4
    for level in ("country", "province", "prefecture", "county", "township", "village"):
        assert result["queries"][level]["count"] == quick_config().query_repeat
        assert result["group_by_anchor"][level]["count"] > 0
    province = result["queries"]["province"]["sample"]["figures"]
    assert province["consultations"] == counts["consultations_expected"], "the load's year, before intake's"
    country = result["queries"]["country"]["sample"]
    assert country["figures"]["consultations"] == province["consultations"], "the country above the province"
    assert [child["code"] for child in country["children"]] == ["37"]
    assert set(result["memory_peak_mb"]) >= {
        "intake (serving)",
        "dashboard (rebuild)",
        "assessment closer (a pass)",
    }
    closer = result["closer_pass"]
    assert closer["pairs"] == result["load"]["assignments"]
    assert closer["outputs"] >= closer["pairs"] * 12, "every month of every pair closed"

    report = write(result, tmp_path)
    assert json.loads((tmp_path / "result.json").read_text())["counts"] == counts
    text = report.read_text()
    assert "| dashboard query, province |" in text
    assert "Consumer ceiling" in text
    assert (tmp_path / "queries.png").stat().st_size > 0
    assert all(goal.met is not None for goal in goals(result) if goal.stage.startswith("memory"))
