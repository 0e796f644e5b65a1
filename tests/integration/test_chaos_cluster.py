"""The acknowledged-write audit's short round on three brokers (`python -m devstack.chaos --short-cluster`,
a cluster of its own on ports apart from the other chaos stacks, run beside the single broker's round by
tests/support/chaos_rounds.py): replication 3, `min.insync.replicas` 2, producers with acks=all, Kafka's
replication system tests as the anchor. Two kill -9 of the broker leading the partition the load writes
to (each started again once another broker leads) and a controlled shutdown of each broker in turn, under
a small load through intake: nothing intake acknowledged is lost, doubled, dead-lettered or stranded in
any projection, no 5xx but 503 with Retry-After, each kill hands the partition to another broker, and the
services recover. The soak (`bin/chaos --soak`) runs more kills, longer loads and network faults between
the services and the leader."""

from __future__ import annotations

from devstack.chaos import CLUSTER_SHORT_ROUND
from tests.support.chaos_rounds import Round


def test_leader_kills_and_controlled_shutdowns_of_three_brokers_lose_double_and_strand_nothing(
    chaos_rounds: dict[str, Round],
) -> None:
    finished = chaos_rounds["cluster"]
    output = finished.output()
    table = finished.table()
    assert table, output
    assert finished.returncode is not None, "the round outlasted its limit"
    assert set(table) == set(CLUSTER_SHORT_ROUND), output
    for scenario, figures in table.items():
        assert int(figures["acknowledged"]) > 0, (scenario, output)
        assert int(figures["faults"]) >= 2, (scenario, output)
        wrong = {
            column: figures[column]
            for column in ("lost", "doubled", "dead-lettered", "stuck", "other 5xx", "given up", "never sent")
            if figures[column] != "0"
        }
        assert wrong == {}, (scenario, output)
        assert figures["checks"] == "ok", (scenario, figures["checks"], output)
        # Recovered at all; the 15 s target is the soak's (a short round's timing on a shared machine is not
        # a stable test).
        assert figures["recovery (s)"] != "not within 90", (scenario, output)
