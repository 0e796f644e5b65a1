"""Which rules apply to a village: the policy in force, the kind of village, its norms."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from contracts.events import (
    PolicyRules,
    VillageKind,
    VillageNorms,
)


@dataclass(frozen=True)
class PublishedPolicy:
    region_code: str
    effective_from: date
    event_id: UUID
    rules: PolicyRules


def policy_in_force(
    policies: Sequence[PublishedPolicy], village_code: str, day: date
) -> PublishedPolicy | None:
    """The most specific region's policy in force on the day; for one region, the latest in force."""
    candidates = [
        policy
        for policy in policies
        if village_code.startswith(policy.region_code) and policy.effective_from <= day
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda policy: (len(policy.region_code), policy.effective_from))


def code_kind(village_code: str) -> VillageKind:
    """By the statistical code: 001-199 居委会 and 400-499 类似居委会 are urban communities, 200-399 村委会
    and 500-599 类似村委会 villages."""
    part = int(village_code[9:12])
    return VillageKind.urban_community if part < 200 or 400 <= part < 500 else VillageKind.village


def village_kind(village_code: str, tags: Iterable[str]) -> VillageKind:
    """A county may mark a village remote; otherwise the code says which kind it is."""
    return VillageKind.remote if "remote" in set(tags) else code_kind(village_code)


def norms_for(rules: PolicyRules, village_code: str, tags: Iterable[str]) -> VillageNorms:
    kind = village_kind(village_code, tags)
    if kind in rules.norms_by_village_kind:
        return rules.norms_by_village_kind[kind]
    if kind is VillageKind.remote:
        return rules.norms_by_village_kind.get(code_kind(village_code), rules.norms)
    return rules.norms
