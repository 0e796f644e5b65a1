"""The ledger's own Prometheus metrics (events applied, batches, lag come from the projection runtime)."""

from __future__ import annotations

from prometheus_client import Counter

VOIDS = Counter("vc_ledger_voids_total", "Voids appended, by what they did to their target", ["status"])
CONFLICTS = Counter("vc_ledger_conflicts_total", "Event ids seen again with other content (kept out)")
UNASSIGNED = Counter(
    "vc_ledger_unassigned_records_total",
    "Records whose advisor was not assigned to the village that day, when they were applied",
)
ERASURES = Counter("vc_ledger_erasures_total", "Erasures of personal data applied (personal.erased events)")
REFUSED_REGISTRATIONS = Counter(
    "vc_ledger_refused_registrations_total",
    "advisor.registered events from a region that does not own the advisor (changed nothing)",
)
