"""The Prometheus metrics the shared plumbing exports; services add their own beside them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "vc_http_requests_total", "HTTP requests by route and status", ["service", "route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "vc_http_request_seconds",
    "HTTP request latency",
    ["service", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_FLIGHT = Gauge("vc_http_in_flight_requests", "HTTP requests being served", ["service"])

EVENTS_APPLIED = Counter(
    "vc_projection_events_applied_total", "Events applied to a projection, by type", ["projection", "type"]
)
DUPLICATES_SKIPPED = Counter(
    "vc_projection_duplicates_total", "Events seen again with the same id and content", ["projection"]
)
CONFLICTS_SEEN = Counter(
    "vc_projection_conflicts_total", "Event ids seen again with different content", ["projection"]
)
DEAD_LETTERED = Counter(
    "vc_projection_dead_lettered_total",
    "Records sent to a dead-letter topic, by topic and rule",
    ["projection", "topic", "reason"],
)
BATCH_SIZE = Histogram(
    "vc_projection_batch_records",
    "Records per applied batch",
    ["projection"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
BATCH_SECONDS = Histogram(
    "vc_projection_batch_seconds",
    "Time to apply one batch in PostgreSQL, commit included",
    ["projection"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_PHASE_SECONDS = Histogram(
    "vc_projection_batch_phase_seconds",
    "Time of each phase of applying one batch: decode (every record against its contract), read (a pooled "
    "connection, the transaction begun, the shared lock a rebuild's switch-over takes, the offsets locked, "
    "the records' ids recorded and duplicates found, the next offsets written), apply (the projection's "
    "own statements, dead letters included), commit (the transaction committed), metrics (the runtime's "
    "own counting, logs and trace spans), kafka (the offsets committed to the consumer group, at most "
    "once per VC_KAFKA_COMMIT_INTERVAL_SECONDS)",
    ["projection", "phase"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RESYNCS = Counter(
    "vc_projection_resyncs_total", "Batches dropped because PostgreSQL's offsets disagreed", ["projection"]
)
LAG = Gauge(
    "vc_projection_lag_records", "Records behind the partition's end", ["projection", "topic", "partition"]
)
NEWEST_EVENT_TIME = Gauge(
    "vc_projection_newest_event_timestamp_seconds", "ce_time of the newest applied event", ["projection"]
)
LAST_PROGRESS = Gauge(
    "vc_projection_last_progress_timestamp_seconds",
    "When the projection last applied a batch or was caught up",
    ["projection"],
)
