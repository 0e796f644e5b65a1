"""Residents' ratings from the public notice (群众评价), without infrastructure: the rating's event and its
derived id (one per device, advisor and day), the refusals naming field and rule, the per-client rate and
CORS for the dashboard's origin on the ratings path only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from contracts.events import FeedbackSubmitted, Rater
from services.intake.app import create_app
from services.intake.ratings import MAX_COMMENT, PUBLIC_NOTICE, ClientBuckets, rating_event
from services.intake.rules import RecordRejected
from services.intake.settings import IntakeSettings

DEVICE = "5f0c4a52-3d1e-4b8f-9a47-0a1b2c3d4e5f"
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
RATING = {"device_id": DEVICE, "advisor_id": "lawyer-0001", "village_code": "370402001013", "score": 4}
DASHBOARD = "https://vc.example.gov.cn"


def test_a_rating_is_a_residents_feedback_for_the_day_recorded_by_the_public_notice() -> None:
    event = rating_event({**RATING, "comment": " 很耐心 "}, NOW, "/test")
    assert isinstance(event.data, FeedbackSubmitted)
    assert event.data.rater is Rater.resident
    assert event.data.score == 4
    assert event.data.comment == "很耐心"
    assert event.data.recorded_by == PUBLIC_NOTICE
    assert event.data.occurred_at.isoformat() == "2026-03-10T00:00:00+08:00"
    assert rating_event({**RATING, "comment": "  "}, NOW, "/test").data.comment is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"score": 2, "comment": "改主意了"}, True),  # the same device, advisor and day: the same event
        ({"device_id": str(uuid.uuid4())}, False),
        ({"advisor_id": "lawyer-0002"}, False),
    ],
)
def test_one_rating_per_device_per_advisor_per_day_is_one_id(change: dict[str, Any], same: bool) -> None:
    first = rating_event(RATING, NOW, "/test").id
    assert (rating_event({**RATING, **change}, NOW, "/test").id == first) is same


def test_the_day_is_shanghais() -> None:
    evening = datetime(2026, 3, 10, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    midnight = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)  # 00:00 the next day
    assert rating_event(RATING, evening, "/t").id == rating_event(RATING, NOW, "/t").id
    assert rating_event(RATING, midnight, "/t").id != rating_event(RATING, NOW, "/t").id


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"score": 0}, "score", "greater_than_equal"),
        ({"score": 6}, "score", "less_than_equal"),
        ({"score": "五"}, "score", "int_type"),
        ({"device_id": "my-phone"}, "device_id", "uuid"),
        ({"device_id": None}, "device_id", "uuid"),
        ({"village_code": "37040200101"}, "village_code", "string_pattern_mismatch"),
        ({"advisor_id": ""}, "advisor_id", "string_pattern_mismatch"),
        ({"comment": "很" * (MAX_COMMENT + 1)}, "comment", "string_too_long"),
        ({"comment": 5}, "comment", "string_type"),
        ({"name": "张三"}, "name", "extra_forbidden"),  # no personal data asked for, none taken
        ({"rater": "township_office"}, "rater", "extra_forbidden"),
    ],
)
def test_a_bad_rating_names_the_field_and_the_rule(change: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(RecordRejected) as refused:
        rating_event({**RATING, **change}, NOW, "/test")
    assert refused.value.status == 422
    assert [(error.field, error.rule) for error in refused.value.errors] == [(field, rule)]


def test_a_missing_device_id_is_named_and_a_long_comment_is_never_echoed() -> None:
    body = {key: value for key, value in RATING.items() if key != "device_id"}
    with pytest.raises(RecordRejected) as refused:
        rating_event({**body, "comment": "秘密" * MAX_COMMENT}, NOW, "/test")
    errors = {error.field: error for error in refused.value.errors}
    assert errors["device_id"].rule == "missing"
    assert errors["comment"].value == 2 * MAX_COMMENT
    assert "秘密" not in str(refused.value.errors)


def test_a_client_gets_its_burst_then_waits_for_the_rate() -> None:
    buckets = ClientBuckets(burst=3, per_minute=6)  # a token every 10 s
    assert [buckets.take("10.0.0.1", 0.0) for _ in range(3)] == [None, None, None]
    assert buckets.take("10.0.0.1", 0.0) == pytest.approx(10.0)
    assert buckets.take("10.0.0.2", 0.0) is None, "another client has its own bucket"
    assert buckets.take("10.0.0.1", 4.0) == pytest.approx(6.0)
    assert buckets.take("10.0.0.1", 10.0) is None
    assert buckets.take("10.0.0.1", 10.0) is not None


def test_the_buckets_forget_the_longest_idle_client_beyond_their_bound() -> None:
    buckets = ClientBuckets(burst=1, per_minute=1, max_clients=2)
    buckets.take("a", 0.0)
    buckets.take("b", 1.0)
    buckets.take("a", 2.0)  # refused, but "a" is now the most recent
    buckets.take("c", 3.0)  # "b" is forgotten
    assert buckets.take("a", 3.0) is not None
    assert buckets.take("b", 3.0) is None


def intake(**settings: Any) -> httpx.AsyncClient:
    app = create_app(IntakeSettings(public_page_origins=[DASHBOARD], **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake")


async def test_a_flood_of_ratings_from_one_client_is_refused_with_retry_after() -> None:
    async with intake(rating_burst=2, ratings_per_minute=1) as client:
        bad = {**RATING, "score": 9}  # refused before the key store or Kafka is needed
        answers = [await client.post("/v1/public/ratings", json=bad) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [422, 422, 429]
    [field] = answers[0].json()["error"]["fields"]
    assert (field["field"], field["rule"]) == ("score", "less_than_equal")
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60


async def test_only_the_dashboards_origin_may_post_ratings_from_a_browser_and_only_ratings() -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    async with intake() as client:
        allowed = await client.options("/v1/public/ratings", headers={**preflight, "Origin": DASHBOARD})
        other = await client.options(
            "/v1/public/ratings", headers={**preflight, "Origin": "https://evil.example"}
        )
        batch = await client.options("/v1/batch", headers={**preflight, "Origin": DASHBOARD})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == DASHBOARD
    assert "access-control-allow-credentials" not in allowed.headers
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in batch.headers
