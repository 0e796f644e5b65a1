"""How far a catch-up goes in each partition: the topics' end, or a rebuild's switch-over's offsets of the
serving schema, never beyond the end."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from plumbing.projection import catch_up_goal

P0 = TopicPartition("village-services", 0)
P1 = TopicPartition("village-services", 1)
ENDS = {P0: 120, P1: 40}


@pytest.mark.parametrize(
    ("until", "goal"),
    [
        (None, {P0: 120, P1: 40}),  # to the end
        ({P0: 100, P1: 40}, {P0: 100, P1: 40}),  # to the live consumers' offsets
        ({P0: 100}, {P0: 100, P1: 0}),  # a partition no live consumer has applied anything from
        ({P0: 100, P1: 900}, {P0: 100, P1: 40}),  # offsets into a topic since restored shorter
        ({}, {P0: 0, P1: 0}),  # a serving schema without offsets
    ],
)
def test_the_goal_is_the_end_or_the_offsets_given_never_beyond_the_end(
    until: dict[TopicPartition, int] | None, goal: dict[TopicPartition, int]
) -> None:
    assert catch_up_goal(ENDS, until) == goal
