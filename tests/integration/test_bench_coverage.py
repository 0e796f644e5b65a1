"""`python -m bench.coverage_reads` in its small form: the count village by village (before migration 016)
and the steps' read (after it) give the same 全覆盖率 at every level, on a national shape with retired
villages, released terms, teams and villages with nobody. Speed is the benchmark's, never asserted."""

from __future__ import annotations

import argparse

from bench.coverage_reads import measure
from tests.support.infrastructure import Infrastructure


async def test_the_steps_answer_what_the_count_village_by_village_answered(
    infrastructure: Infrastructure,
) -> None:
    result = await measure(
        argparse.Namespace(database=infrastructure.database_url, villages=3_000, reads=2, seed=3)
    )
    assert result["answers_differ"] == []
    country = result["steps"]["country"]["answer"]
    villages, covered = country
    assert 0 < covered < villages < 3_000, "some villages retired, some covered, some not"
    assert result["rows"]["coverage_steps"] > 0
    assert {level: value["answer"] for level, value in result["steps"].items()} == {
        level: value["answer"] for level, value in result["direct_count"].items()
    }
