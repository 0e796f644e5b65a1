"""What the alerts and the Grafana dashboard read is what the running services export: after a record is
accepted, one is refused, one is answered 503 while Kafka is away and one is dead-lettered, every series
of the project that a rule or a panel reads has samples on the services' /metrics, with every label the
expression groups or matches by, and the label values it matches (`service="intake"`,
`outcome="unavailable"`). The unit test (tests/unit/test_deploy_monitoring.py) checks the names against
the declared collectors; a labelled metric that is declared but never emitted passed it (issue 15)."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterable

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from contracts.topics import VILLAGE_SERVICES
from plumbing.clock import ManualClock
from services.assessment.app import create_app as create_assessment
from services.assessment.settings import AssessmentSettings
from services.dashboard.app import create_app as create_dashboard
from services.dashboard.settings import DashboardSettings
from services.intake.app import create_app as create_intake
from services.ledger.app import create_app as create_ledger
from tests.integration.test_intake import COUNTY, NOW, intake_settings, record
from tests.integration.test_ledger import ledger_settings, projection_settings
from tests.support.infrastructure import Infrastructure
from tests.support.waiting import eventually
from tests.unit.test_deploy_monitoring import DASHBOARD, EXTERNAL, metric_names, rule_groups

PROJECTIONS = ("ledger", "assessment", "dashboard")
Series = dict[str, list[dict[str, str]]]  # series name → the label sets of its samples


def expressions() -> list[str]:
    found = [rule["expr"] for group in rule_groups() for rule in group["rules"]]
    found += [
        target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]
    ]
    return found


def label_names_grouped(expr: str) -> set[str]:
    """The labels an expression groups by (`by (a, b)`), but `le`, which only histograms' buckets have."""
    found: set[str] = set()
    for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
        found |= {name.strip() for name in group.split(",") if name.strip()}
    return found - {"le"}


def matchers(expr: str) -> list[tuple[str, str, str, str]]:
    """(metric, label, operator, value) of each label matcher in the expression."""
    found = []
    for metric, inside in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
        for label, operator, value in re.findall(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"', inside):
            found.append((metric, label, operator, value))
    return found


def scrape(text: str) -> Series:
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append(dict(sample.labels))
    return series


def problems_in(exprs: Iterable[str], series: Series) -> list[str]:
    problems = []
    for expr in exprs:
        ours = {name for name in metric_names(expr) if name not in EXTERNAL}
        for name in ours:
            if not series.get(name):
                problems.append(f"{name}: no sample on /metrics ({expr.strip()[:60]})")
                continue
            labels = set().union(*(set(labels) for labels in series[name]))
            missing = label_names_grouped(expr) - labels
            if missing:
                problems.append(f"{name}: no label {sorted(missing)} to group by")
        for metric, label, operator, value in matchers(expr):
            if metric not in ours or not series.get(metric):
                continue
            values = {labels.get(label) for labels in series[metric]}
            if operator == "=" and value not in values:
                problems.append(
                    f'{metric}: no sample with {label}="{value}" (has {sorted(map(str, values))})'
                )
            if operator == "=~" and not any(v is not None and re.fullmatch(value, v) for v in values):
                problems.append(f'{metric}: no sample with {label}=~"{value}"')
    return problems


def test_the_checker_finds_a_missing_series_label_and_value() -> None:
    series: Series = {"vc_x_total": [{"service": "intake"}], "vc_y": [{"projection": "ledger"}]}
    assert (
        problems_in(['sum(rate(vc_x_total{service="intake"}[5m]))', "sum by (projection) (vc_y)"], series)
        == []
    )
    found = problems_in(
        [
            "vc_missing_total",
            'sum by (topic) (vc_x_total{service="dashboard"})',
        ],
        series,
    )
    assert found == [
        "vc_missing_total: no sample on /metrics (vc_missing_total)",
        "vc_x_total: no label ['topic'] to group by",
        "vc_x_total: no sample with service=\"dashboard\" (has ['intake'])",
    ]


async def test_every_series_the_alerts_and_the_dashboard_read_is_exported_by_the_running_services(
    infrastructure: Infrastructure, topics: None, producer: AIOKafkaProducer
) -> None:
    clock = ManualClock(NOW)
    settings = intake_settings(
        infrastructure.kafka_settings("intake"), database_url=infrastructure.database_url
    )
    # Intake with Kafka away (nothing listens on port 9 of this machine): its records are answered 503.
    unreachable = intake_settings(
        {**infrastructure.kafka_settings("intake"), "kafka_bootstrap_servers": "127.0.0.1:9"},
        database_url=infrastructure.database_url,
        publish_timeout_seconds=1.0,
    )
    apps = {
        "intake": create_intake(settings, clock),
        "intake-away": create_intake(unreachable, clock),
        "ledger": create_ledger(ledger_settings(infrastructure), clock),
        "assessment": create_assessment(
            AssessmentSettings(**projection_settings(infrastructure, "assessment")), clock
        ),
        "dashboard": create_dashboard(
            DashboardSettings(**projection_settings(infrastructure, "dashboard")), clock
        ),
    }
    async with contextlib.AsyncExitStack() as running:
        clients = {}
        for name, app in apps.items():
            await running.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await running.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            )
        intake, away = clients["intake"], clients["intake-away"]
        accepted = record("consultation")
        assert (await intake.post("/v1/consultations", json=accepted, headers=COUNTY)).status_code == 202
        refused = await intake.post(
            "/v1/consultations", json={**record("consultation"), "person_times": -1}, headers=COUNTY
        )
        assert refused.status_code == 422, refused.text
        for _ in range(3):  # the first waits for a producer that cannot start, the next are held off
            assert (
                await away.post("/v1/consultations", json=record("consultation"), headers=COUNTY)
            ).status_code == 503
        # A record no contract reads: every projection dead-letters it.
        poison = str(uuid.uuid4())
        await producer.send_and_wait(
            VILLAGE_SERVICES, b"{not json", key=b"370402001201", headers=[("ce_id", poison.encode())]
        )

        async def exported() -> Series:
            found: Series = {}
            for name, client in clients.items():
                answer = await client.get("/metrics")
                assert answer.status_code == 200, name
                for series, labels in scrape(answer.text).items():
                    found.setdefault(series, []).extend(labels)
            return found

        def every_projection_dead_lettered(series: Series) -> bool:
            done = {
                labels.get("projection") for labels in series.get("vc_projection_dead_lettered_total", [])
            }
            return set(PROJECTIONS) <= done

        series = await eventually(
            exported,
            every_projection_dead_lettered,
            seconds=60,
            what="every projection dead-lettered the poison",
        )
    assert problems_in(expressions(), series) == []
    # A label's values are a bounded set: the reason a record was not stored is an error's name, never its
    # message (before, "... next attempt in 0.4 s" made a new series for every answer while held off).
    reasons = {
        labels["reason"]
        for labels in series["vc_intake_records_total"]
        if labels.get("outcome") == "unavailable"
    }
    assert reasons
    assert all(re.fullmatch(r"[A-Za-z]+", reason) for reason in reasons), reasons
    # Each projection's batches are timed phase by phase (the panel "Projection time by phase"): every phase
    # of every projection has samples once it applied a batch.
    phases = {
        (labels["projection"], labels["phase"]) for labels in series["vc_projection_batch_phase_seconds_sum"]
    }
    assert phases >= {
        (projection, phase)
        for projection in PROJECTIONS
        for phase in ("decode", "read", "apply", "commit", "metrics", "kafka")
    }, phases
