"""Who may do what on the broker: one Kafka user per service, and read-only users for integrating systems.

The one table of principals and their ACLs. The devstack creates its users and ACLs from it
(`devstack/stack.py`), and a test holds the cluster's KafkaUsers (`deploy/k8s/kafka-users.yaml`) equal
to it. Only intake writes the input topics, only the assessment writes `assessment`; each consumer reads
its topics with its own consumer group and writes the dead-letter twins of what it reads. Topics are
created by an administrator (a super user), never by a service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contracts.topics import ASSESSMENT, REGISTRY, VILLAGE_SERVICES, dead_letter_topic

ResourceType = Literal["topic", "group"]
PatternType = Literal["literal", "prefix"]
Operation = Literal["Read", "Write", "Describe"]


@dataclass(frozen=True)
class Acl:
    """One allow rule, spelled as Strimzi's KafkaUser spells it (and as AclCommand names it)."""

    resource_type: ResourceType
    name: str
    pattern: PatternType
    operations: tuple[Operation, ...]


@dataclass(frozen=True)
class KafkaPrincipal:
    """A Kafka user (`User:<name>`), what it writes, reads, and which consumer groups it may use."""

    name: str
    purpose: str
    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    group_prefix: str | None = None
    integration: bool = False

    @property
    def acls(self) -> tuple[Acl, ...]:
        rules = [Acl("topic", topic, "literal", ("Write", "Describe")) for topic in self.writes]
        rules += [Acl("topic", topic, "literal", ("Read", "Describe")) for topic in self.reads]
        rules += [Acl("group", group, "literal", ("Read",)) for group in self.groups]
        if self.group_prefix is not None:
            rules.append(Acl("group", self.group_prefix, "prefix", ("Read",)))
        return tuple(rules)


def _dead_letters(*topics: str) -> tuple[str, ...]:
    return tuple(dead_letter_topic(topic) for topic in topics)


PRINCIPALS: tuple[KafkaPrincipal, ...] = (
    KafkaPrincipal(
        "intake",
        "records what advisors did and the registry, after validating them",
        writes=(VILLAGE_SERVICES, REGISTRY),
    ),
    KafkaPrincipal(
        "ledger",
        "the ledger's projection (consumer group `ledger`)",
        reads=(VILLAGE_SERVICES, REGISTRY),
        writes=_dead_letters(VILLAGE_SERVICES, REGISTRY),
        groups=("ledger",),
    ),
    KafkaPrincipal(
        "assessment",
        "the assessment's projection (group `assessment`) and its closer, the one writer of `assessment`",
        reads=(VILLAGE_SERVICES, REGISTRY, ASSESSMENT),
        writes=(ASSESSMENT, *_dead_letters(VILLAGE_SERVICES, REGISTRY, ASSESSMENT)),
        groups=("assessment",),
    ),
    KafkaPrincipal(
        "dashboard",
        "the dashboard's projection (consumer group `dashboard`)",
        reads=(VILLAGE_SERVICES, REGISTRY, ASSESSMENT),
        writes=_dead_letters(VILLAGE_SERVICES, REGISTRY, ASSESSMENT),
        groups=("dashboard",),
    ),
    KafkaPrincipal(
        "integration-reader",
        "an example integrating system: reads the assessment's conclusions (no residents' data), "
        "with consumer groups named `integration-reader*`",
        reads=(ASSESSMENT,),
        group_prefix="integration-reader",
        integration=True,
    ),
    KafkaPrincipal(
        "integration-grid",
        "the worked example of docs/integrating.md (the grid management system; examples/go, examples/js): "
        "reads the service records (personal fields sealed), with consumer groups named `integration-grid*`",
        reads=(VILLAGE_SERVICES,),
        group_prefix="integration-grid",
        integration=True,
    ),
)
PRINCIPAL_BY_NAME: dict[str, KafkaPrincipal] = {principal.name: principal for principal in PRINCIPALS}
SERVICE_PRINCIPALS: tuple[str, ...] = tuple(p.name for p in PRINCIPALS if not p.integration)
