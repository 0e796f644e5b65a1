"""The topics: names, partition counts and retention, declared once. Kafka is the event store."""

from __future__ import annotations

from dataclasses import dataclass, field

VILLAGE_SERVICES = "village-services"
REGISTRY = "registry"
ASSESSMENT = "assessment"

INPUT_TOPICS = (VILLAGE_SERVICES, REGISTRY)  # what intake writes; everything else is concluded from them

DLQ_SUFFIX = ".dlq"

# Topics keep everything forever: every projection can be rebuilt from offset 0.
KEEP_FOREVER: dict[str, str] = {
    "cleanup.policy": "delete",
    "retention.ms": "-1",
    "retention.bytes": "-1",
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    description: str
    configs: dict[str, str] = field(default_factory=lambda: dict(KEEP_FOREVER))


def dead_letter_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


_MAIN = (
    TopicSpec(
        VILLAGE_SERVICES,
        partitions=12,
        key="village code (12 digits): per-village order",
        description="What advisors did in villages: consultations, mediations, lectures, legal aid, "
        "visits, documents, risk reports, feedback and voids.",
    ),
    TopicSpec(
        REGISTRY,
        partitions=1,
        key="village code, advisor id or region code",
        description="Advisors, assignments, violations, regions and policies. One partition: the "
        "registry is small and every consumer reads it in one total order.",
    ),
    TopicSpec(
        ASSESSMENT,
        partitions=6,
        key="village code",
        description="What the assessment service concludes: month closes, alerts, year-end grades.",
    ),
)

TOPICS: tuple[TopicSpec, ...] = _MAIN + tuple(
    TopicSpec(
        dead_letter_topic(spec.name),
        partitions=1,
        key="the original record's key",
        description=f"Records of {spec.name} that a projection could not decode or apply, with the "
        "reason and origin (topic, partition, offset) in headers.",
    )
    for spec in _MAIN
)
TOPIC_BY_NAME: dict[str, TopicSpec] = {spec.name: spec for spec in TOPICS}


def with_dead_letters(topics: tuple[str, ...]) -> tuple[TopicSpec, ...]:
    """The specs of what a consumer of `topics` uses: the topics and their dead-letter twins."""
    return tuple(TOPIC_BY_NAME[name] for topic in topics for name in (topic, dead_letter_topic(topic)))
