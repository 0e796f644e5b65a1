"""Bad inputs the contracts refuse, at intake and in every consumer alike (issue 12, findings 5, 9, 10):
control characters in text, division codes in non-ASCII digits, numbers and flags sent as strings,
times sent as numbers, and assignment terms outside sane years."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from contracts.envelope import (
    ContractViolation,
    from_kafka_record,
    parse_payload,
    payload_json,
    to_kafka_record,
)
from contracts.events import AMOUNT_TEXT, PAYLOAD_BY_TYPE, RegionRegistered
from tests.support.samples import sample_event, sample_fields


def rules_of(violation: ContractViolation) -> set[tuple[str, str]]:
    return {(error.field, error.rule) for error in violation.errors}


@pytest.mark.parametrize(
    ("event_type", "field", "text"),
    [
        ("consultation.recorded", "summary", "before\x00after"),
        ("lecture.held", "title", "法治\x01讲座"),
        ("document.reviewed", "title", "tab\x1b[31m escape"),
        ("risk.reported", "description", "delete\x7f"),
        ("advisor.registered", "name", "张\x00三"),
        ("record.voided", "reason", "\x0c form feed"),
    ],
)
def test_control_characters_in_any_text_are_refused_naming_field_and_rule(
    event_type: str, field: str, text: str
) -> None:
    with pytest.raises(ContractViolation) as refused:
        parse_payload(event_type, {**sample_fields(event_type), field: text})
    assert (f"data.{field}", "no_control_characters") in rules_of(refused.value)


def test_lone_surrogates_are_refused_as_invalid_unicode() -> None:
    """JSON decoders (orjson at intake, pydantic's in consumers) refuse them before the models see them;
    a model given one directly refuses it too."""
    fields = {**sample_fields("advisor.registered"), "organisation": "lone \ud800 surrogate"}
    with pytest.raises(ContractViolation) as refused:
        parse_payload("advisor.registered", fields)
    assert ("data.organisation", "string_unicode") in rules_of(refused.value)


def test_control_characters_nested_in_a_requester_are_refused() -> None:
    fields = {**sample_fields("consultation.recorded"), "requester": {"name": "李\x00四"}}
    with pytest.raises(ContractViolation) as refused:
        parse_payload("consultation.recorded", fields)
    assert ("data.requester.name", "no_control_characters") in rules_of(refused.value)


@pytest.mark.parametrize("text", ["第一行\n第二行", "列\t列", "windows\r\nline"])
def test_tabs_and_line_breaks_stay_allowed_in_text(text: str) -> None:
    parse_payload("consultation.recorded", {**sample_fields("consultation.recorded"), "summary": text})


def test_a_forged_record_with_a_nul_is_refused_by_every_consumers_decoder() -> None:
    """Every projection decodes through from_kafka_record, so a NUL that reaches the topic goes to each
    consumer's DLQ instead of being counted by one and refused by another."""
    record = to_kafka_record(sample_event("consultation.recorded"))
    forged = orjson.loads(record.value)
    forged["summary"] = "forged\x00"
    with pytest.raises(ContractViolation) as refused:
        from_kafka_record(record.topic, record.key, orjson.dumps(forged), record.headers)
    assert ("data.summary", "no_control_characters") in rules_of(refused.value)


@pytest.mark.parametrize(
    ("event_type", "field", "code"),
    [
        (
            "consultation.recorded",
            "village_code",
            "\uff13\uff17\uff10\uff14\uff10\uff12\uff11\uff10\uff11\uff12\uff10\uff11",
        ),
        ("region.registered", "code", "\uff13\uff17"),
        ("policy.published", "region_code", "\u0663\u0667"),
    ],
)
def test_division_codes_are_ascii_digits(event_type: str, field: str, code: str) -> None:
    fields = {**sample_fields(event_type), field: code}
    if event_type == "region.registered":
        fields = {"code": code, "name": "山东省", "level": "province"}
    with pytest.raises(ContractViolation) as refused:
        parse_payload(event_type, fields)
    # The pattern ([0-9], as every JSON Schema validator reads it) refuses them before `ascii_digits` does.
    assert rules_of(refused.value) & {
        (f"data.{field}", "string_pattern_mismatch"),
        (f"data.{field}", "ascii_digits"),
    }


@pytest.mark.parametrize(
    ("event_type", "field", "value", "rule"),
    [
        ("consultation.recorded", "person_times", "3", "int_type"),
        ("consultation.recorded", "person_times", True, "int_type"),
        ("mediation.recorded", "agreement_signed", "true", "bool_type"),
        ("mediation.recorded", "agreement_signed", 1, "bool_type"),
        ("feedback.submitted", "score", "5", "int_type"),
        ("consultation.recorded", "occurred_at", 1774000000, "datetime_string"),
        ("consultation.recorded", "occurred_at", 1774000000.5, "datetime_string"),
        ("advisor.assigned", "term_start", 1767225600, "date_string"),
        ("advisor.assigned", "annual_subsidy_yuan", True, "decimal_type"),
    ],
)
def test_numbers_flags_and_times_are_not_coerced(
    event_type: str, field: str, value: object, rule: str
) -> None:
    with pytest.raises(ContractViolation) as refused:
        parse_payload(event_type, {**sample_fields(event_type), field: value})
    assert (f"data.{field}", rule) in rules_of(refused.value)


def test_strict_types_still_read_json_records_and_iso_times() -> None:
    for event_type in PAYLOAD_BY_TYPE:
        record = to_kafka_record(sample_event(event_type))
        assert from_kafka_record(record.topic, record.key, record.value, record.headers).type == event_type
    parsed = parse_payload(
        "consultation.recorded",
        {**sample_fields("consultation.recorded"), "occurred_at": "2026-03-20T09:30:00"},
    )
    assert parsed.occurred_at.utcoffset() is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("term_start", "term_end", "rule"),
    [
        ("0001-01-01", "2026-12-31", "term_years"),
        ("2026-01-01", "9999-12-31", "term_years"),
        ("2001-01-01", "2026-12-31", "term_length"),
    ],
)
def test_assignment_terms_stay_within_sane_years(term_start: str, term_end: str, rule: str) -> None:
    fields = {**sample_fields("advisor.assigned"), "term_start": term_start, "term_end": term_end}
    with pytest.raises(ContractViolation) as refused:
        parse_payload("advisor.assigned", fields)
    assert rule in {error.rule for error in refused.value.errors}


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"code": "0", "name": "全国", "level": "province"}, ("data.level", "value_error")),
        ({"code": "37", "name": "山东省", "level": "country"}, ("data.level", "value_error")),
        (
            {"code": "0", "name": "全国", "level": "country", "parent_code": "0"},
            ("data.parent_code", "string_pattern_mismatch"),
        ),
        (
            {"code": "37", "name": "山东省", "level": "province", "parent_code": "0"},
            ("data.parent_code", "string_pattern_mismatch"),
        ),
        ({"code": "1", "name": "全国", "level": "country"}, ("data.code", "string_pattern_mismatch")),
    ],
)
def test_the_country_is_code_0_above_the_provinces_and_nothing_else(
    fields: dict[str, Any], rule: tuple[str, str]
) -> None:
    with pytest.raises(ContractViolation) as refused:
        parse_payload("region.registered", fields)
    assert rule in rules_of(refused.value)


def test_the_country_registers_as_code_0_without_a_parent() -> None:
    country = parse_payload("region.registered", {"code": "0", "name": "全国", "level": "country"})
    assert isinstance(country, RegionRegistered)
    assert (country.code, country.level, country.parent_code) == ("0", "country", None)


@pytest.mark.parametrize(
    "text", ["3e3", "+3000", " 3000", "1_000", "-0", "3000.", "3000\n", "3000.00\x1f", "\x0b3000.00"]
)
def test_a_producer_takes_an_amount_as_text_only_in_the_published_schemas_form(text: str) -> None:
    """Found in review: `Decimal` reads "3e3" (and signs, underscores, padding), and intake published
    "3e3" as "3E+3", which the published schema's pattern refuses."""
    fields = {**sample_fields("advisor.assigned"), "annual_subsidy_yuan": text}
    with pytest.raises(ContractViolation) as refused:
        parse_payload("advisor.assigned", fields, prefix="", producing=True)
    assert ("annual_subsidy_yuan", "string_pattern_mismatch") in rules_of(refused.value)


@pytest.mark.parametrize("amount", ["3000", "3000.5", "3000.50", "0", "10000000", 3000, 3000.5, 0])
def test_what_a_producer_takes_it_publishes_in_the_published_schemas_form(amount: object) -> None:
    fields = {**sample_fields("advisor.assigned"), "annual_subsidy_yuan": amount}
    payload = parse_payload("advisor.assigned", fields, prefix="", producing=True)
    assert AMOUNT_TEXT.fullmatch(orjson.loads(payload_json(payload))["annual_subsidy_yuan"])


def test_a_consumer_still_reads_an_amount_published_before_the_producers_rule() -> None:
    """Replays must give what live consumption gave: a consumer keeps reading "3E+3" if it is in a topic."""
    record = to_kafka_record(sample_event("advisor.assigned"))
    published = {**orjson.loads(record.value), "annual_subsidy_yuan": "3E+3"}
    event = from_kafka_record(record.topic, record.key, orjson.dumps(published), record.headers)
    assert event.data.annual_subsidy_yuan == Decimal(3000)  # type: ignore[attr-defined]
