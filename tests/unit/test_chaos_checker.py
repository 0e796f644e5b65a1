"""The acknowledged-write audit's checker (devstack/chaos.py, `outcome_of`): what it counts as lost,
doubled, dead-lettered, stuck and never sent from what the client saw and what Kafka and the projections
hold (issue 14). The audit itself runs in tests/integration/test_chaos*.py."""

from __future__ import annotations

import re
from pathlib import Path

from devstack.chaos import (
    SCENARIOS,
    SUITE_ROUND,
    TESTED_APART,
    Fault,
    Outcome,
    Projected,
    Tally,
    outcome_of,
    short_of_replicas,
)

PROJECTIONS = ("ledger", "assessment", "dashboard")
INTEGRATION = Path(__file__).resolve().parents[1] / "integration"


def client_saw(*ids: str, unanswered: tuple[str, ...] = ()) -> Tally:
    tally = Tally()
    for offset, record_id in enumerate(ids):
        tally.acknowledged[record_id] = (0, offset)
    tally.sent = {*ids, *unanswered}
    return tally


def projections(
    applied: dict[str, dict[str, int]], activity: int | None = None, village: float | None = None
) -> Projected:
    counted = len(applied.get("dashboard", {}))
    return Projected(
        applied={name: applied.get(name, {}) for name in PROJECTIONS},
        advisor_activity=counted if activity is None else activity,
        counted=counted,
        village_figure=float(counted) if village is None else village,
        village_counted=counted,
    )


def once(*ids: str) -> dict[str, dict[str, int]]:
    return {name: dict.fromkeys(ids, 1) for name in PROJECTIONS}


def figures(
    tally: Tally,
    in_kafka: dict[tuple[int, int], str],
    projected: Projected,
    *,
    dead_letters: frozenset[str] = frozenset(),
    caught_up: bool = True,
) -> Outcome:
    return outcome_of("s", tally, Fault(), in_kafka, set(dead_letters), projected, 2.0, caught_up)


def test_every_acknowledged_record_in_kafka_and_applied_once_everywhere_passes() -> None:
    found = figures(client_saw("a", "b"), {(0, 0): "a", (0, 1): "b"}, projections(once("a", "b")))
    assert (found.acknowledged, found.lost, found.doubled, found.stuck, found.never_sent) == (2, 0, 0, 0, 0)
    assert found.passed()


def test_a_record_not_at_its_offset_or_missing_from_one_projection_is_lost() -> None:
    applied = once("a", "b")
    del applied["dashboard"]["b"]
    found = figures(client_saw("a", "b"), {(0, 0): "x", (0, 1): "b"}, projections(applied))
    assert found.lost == 2
    assert found.missing_by_projection == (("dashboard", 1),)
    assert not found.passed()


def test_missing_when_the_projections_never_caught_up_is_stuck_not_lost() -> None:
    applied = once("a")
    found = figures(client_saw("a", "b"), {(0, 0): "a", (0, 1): "b"}, projections(applied), caught_up=False)
    assert (found.lost, found.stuck) == (0, 1)
    assert not found.passed()


def test_a_second_ledger_entry_or_a_figure_above_its_counted_records_is_doubled() -> None:
    applied = once("a", "b")
    applied["ledger"]["a"] = 2
    twice = figures(client_saw("a", "b"), {(0, 0): "a", (0, 1): "b"}, projections(applied))
    assert twice.doubled == 1
    counted_twice = figures(
        client_saw("a", "b"), {(0, 0): "a", (0, 1): "b"}, projections(once("a", "b"), activity=3, village=4.0)
    )
    assert counted_twice.doubled == 1 + 2
    assert not twice.passed()
    assert not counted_twice.passed()


def test_dead_lettered_acknowledged_records_fail_the_scenario() -> None:
    found = figures(
        client_saw("a"), {(0, 0): "a"}, projections(once("a")), dead_letters=frozenset({"a", "other"})
    )
    assert found.dead_lettered == 1
    assert not found.passed()


def test_a_record_answered_503_and_stored_after_all_is_reported_not_failed() -> None:
    found = figures(client_saw("a", unanswered=("late",)), {(0, 0): "a"}, projections(once("a", "late")))
    assert (found.stored_without_202, found.never_sent) == (1, 0)
    assert found.passed()


def test_a_record_applied_that_the_client_never_sent_fails_the_scenario() -> None:
    """Nothing unacknowledged may appear: before, an id under the scenario's advisor that no request
    carried went uncounted (the figures compared only what was sent)."""
    found = figures(client_saw("a"), {(0, 0): "a"}, projections(once("a", "phantom")))
    assert found.never_sent == 1
    assert found.lost == 0
    assert not found.passed()


def described(*partitions: tuple[int, list[int], list[int]], error_code: int = 0) -> dict[str, object]:
    return {
        "topic": "village-services",
        "error_code": error_code,
        "partitions": [
            {"partition": number, "leader": isr[0] if isr else -1, "replicas": replicas, "isr": isr}
            for number, replicas, isr in partitions
        ],
    }


def test_a_partition_is_short_while_a_replica_is_out_of_sync_whatever_the_order() -> None:
    """The cluster's scenarios wait on this before the next broker loss (Kafka's replication tests wait for a
    bounced broker to be back): a kill while a restarted broker is still catching up would leave one in-sync
    replica, below min.insync.replicas, and the writes refused would be the test's doing."""
    whole = described((0, [1, 2, 3], [3, 1, 2]), (1, [2, 3, 1], [2, 3, 1]))
    assert short_of_replicas([whole]) == []
    catching_up = described((0, [1, 2, 3], [2, 3]), (1, [2, 3, 1], [2, 3, 1]), (2, [3, 1, 2], [3]))
    assert short_of_replicas([catching_up]) == ["village-services-0", "village-services-2"]


def test_a_topic_that_could_not_be_described_counts_as_short() -> None:
    assert short_of_replicas([described(error_code=3)]) == ["village-services"]


def test_a_scenario_the_suites_round_leaves_out_is_injected_by_tests_that_exist() -> None:
    """The suite's short round skips a scenario only for tests of its own that inject its fault: a renamed
    or removed test brings the scenario back into question here, rather than leave the fault untested."""
    assert set(SUITE_ROUND) | set(TESTED_APART) == set(SCENARIOS)
    assert not set(SUITE_ROUND) & set(TESTED_APART)
    for scenario, tests in TESTED_APART.items():
        assert tests, scenario
        for test in tests:
            file, name = test.split("::")
            source = (INTEGRATION / file).read_text()
            assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), (scenario, test)
