"""Intake's own Prometheus metrics (requests and latency come from plumbing.http)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECORDS = Counter(
    "vc_intake_records_total",
    "Records by kind, outcome (accepted, rejected, unavailable) and the rule or reason when refused",
    ["kind", "outcome", "reason"],
)
PUBLISH_SECONDS = Histogram(
    "vc_intake_publish_seconds",
    "From sending to Kafka's acknowledgement, per request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "vc_intake_batch_records",
    "Records per batch request",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000),
)
PRODUCER_STARTS = Counter(
    "vc_intake_producer_starts_total",
    "Kafka producers intake started (at start-up and to replace a broken one), by outcome (started, failed)",
    ["outcome"],
)
