"""Personal data sealed for the event store (crypto-shredding), and who may void a record: pure rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from contracts.envelope import ContractViolation, parse_payload, payload_json
from contracts.events import (
    PAYLOAD_BY_TYPE,
    PAYLOAD_TYPES,
    SEALED_PERSONAL_FIELD,
    ConsultationRecorded,
    PrincipalRole,
    RecordVoided,
    RiskReported,
    SealedPersonal,
    personal_field_names,
    void_permitted,
)
from plumbing.personal import (
    DEVELOPMENT_MASTER_KEY,
    Sealer,
    master_key_from_text,
    plain_personal,
    sealed_payload,
)
from plumbing.rebuild import expired_retired_schemas, retired_schema_name
from tests.support.samples import sample_payload

SEALER = Sealer(master_key_from_text(DEVELOPMENT_MASTER_KEY))


def test_a_sealed_payload_holds_no_personal_value_and_opens_with_its_key() -> None:
    payload = sample_payload("consultation.recorded")
    personal = plain_personal(payload)
    assert personal == {"summary": "承包地边界争议", "requester": {"name": "张三", "phone": "13800000000"}}
    key_id = uuid.uuid4()
    wrapped = SEALER.new_wrapped_key(key_id)
    sealed = sealed_payload(payload, SEALER.seal(key_id, wrapped, personal))
    wire = payload_json(sealed)
    for value in ("张三", "13800000000", "承包地"):
        assert value.encode() not in wire
        assert orjson.dumps(value)[1:-1] not in wire  # nor escaped
    again = parse_payload("consultation.recorded", wire, prefix="")
    assert isinstance(again, ConsultationRecorded)
    assert again.requester is None
    assert again.sealed_personal is not None
    assert SEALER.open(again.sealed_personal, wrapped) == personal


def test_a_destroyed_key_leaves_nothing_to_open() -> None:
    payload = sample_payload("consultation.recorded")
    key_id = uuid.uuid4()
    seal = SEALER.seal(key_id, SEALER.new_wrapped_key(key_id), plain_personal(payload))
    assert SEALER.open(seal, None) is None


def test_the_seal_is_deterministic_so_a_retry_is_a_duplicate_not_a_conflict() -> None:
    payload = sample_payload("consultation.recorded")
    key_id = uuid.uuid4()
    wrapped = SEALER.new_wrapped_key(key_id)
    first = SEALER.seal(key_id, wrapped, plain_personal(payload))
    assert SEALER.seal(key_id, wrapped, plain_personal(payload)) == first
    other_key = SEALER.new_wrapped_key(key_id)
    assert SEALER.seal(key_id, other_key, plain_personal(payload)) != first


def test_a_seal_made_for_one_record_does_not_open_with_another_records_key() -> None:
    payload = sample_payload("consultation.recorded")
    key_id, other = uuid.uuid4(), uuid.uuid4()
    seal = SEALER.seal(key_id, SEALER.new_wrapped_key(key_id), plain_personal(payload))
    moved = seal.model_copy(update={"key_id": other})
    with pytest.raises(ValueError, match="does not match"):
        SEALER.open(moved, SEALER.new_wrapped_key(other))


def test_a_master_key_must_be_32_bytes_of_base64() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        master_key_from_text("c2hvcnQ")


def test_plain_and_sealed_personal_fields_exclude_each_other_and_required_ones_stay_required() -> None:
    seal = SealedPersonal(key_id=uuid.uuid4(), nonce="A" * 16, ciphertext="AAAA")
    fields = sample_payload("risk.reported").model_dump(mode="json", exclude_none=True)
    with pytest.raises(ContractViolation) as both:
        parse_payload("risk.reported", {**fields, "sealed_personal": seal.model_dump(mode="json")}, prefix="")
    assert [(e.field, e.rule) for e in both.value.errors] == [("description", "sealed_or_plain")]
    without = {name: value for name, value in fields.items() if name != "description"}
    with pytest.raises(ContractViolation) as missing:
        parse_payload("risk.reported", without, prefix="")
    assert [(e.field, e.rule) for e in missing.value.errors] == [("description", "missing")]
    sealed = parse_payload(
        "risk.reported", {**without, "sealed_personal": seal.model_dump(mode="json")}, prefix=""
    )
    assert isinstance(sealed, RiskReported)
    assert sealed.description is None


def _void(by: str, role: PrincipalRole | None) -> RecordVoided:
    payload = sample_payload("record.voided")
    assert isinstance(payload, RecordVoided)
    return payload.model_copy(update={"recorded_by": by, "recorded_by_role": role})


@pytest.mark.parametrize(
    ("void", "target_advisor", "target_recorded_by", "permitted"),
    [
        (_void("lawyer-1", PrincipalRole.advisor), "lawyer-1", "lawyer-1", True),
        (_void("lawyer-1", PrincipalRole.advisor), "lawyer-2", "lawyer-2", False),
        # an advisor's record sent by the township office for them (an offline batch): still theirs
        (_void("lawyer-1", PrincipalRole.advisor), "lawyer-1", "office-370402105", True),
        (_void("office-370402105", PrincipalRole.township_office), "lawyer-2", "lawyer-2", True),
        (_void("county-370402", PrincipalRole.county_bureau), "lawyer-2", "lawyer-2", True),
        (_void("hotline-12348", PrincipalRole.integration), "lawyer-2", "lawyer-2", False),
        (_void("hotline-12348", PrincipalRole.integration), "lawyer-2", "hotline-12348", True),
        # history from before roles travelled replays as it was counted
        (_void("lawyer-1", None), "lawyer-2", "lawyer-2", True),
        (_void("lawyer-1", PrincipalRole.advisor), "lawyer-2", None, True),
    ],
)
def test_who_may_void_a_record(
    void: RecordVoided, target_advisor: str, target_recorded_by: str | None, permitted: bool
) -> None:
    assert void_permitted(void, target_advisor, target_recorded_by) is permitted


def test_retired_schemas_older_than_the_setting_are_the_ones_dropped() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    names = [
        retired_schema_name("ledger", now - timedelta(hours=73)),
        retired_schema_name("ledger", now - timedelta(hours=71)),
        retired_schema_name("ledger_x", now - timedelta(days=30)),  # another projection's
        "ledger_rebuild",
        "ledger",
    ]
    assert names[0] == "ledger_retired_20261126110000"
    assert expired_retired_schemas(names, "ledger", timedelta(hours=72), now) == [names[0]]


def test_every_event_type_with_personal_fields_can_carry_them_sealed() -> None:
    """Found when every kind went through intake: violation.recorded's description was sealed away with
    nowhere to go (the record then lacked a required field on the topic)."""
    for payload_type in PAYLOAD_TYPES:
        if personal_field_names(payload_type):
            assert SEALED_PERSONAL_FIELD in payload_type.model_fields, payload_type.event_type
    for event_type in PAYLOAD_BY_TYPE:
        payload = sample_payload(event_type)
        personal = plain_personal(payload)
        if not personal:
            continue
        key_id = uuid.uuid4()
        sealed = sealed_payload(payload, SEALER.seal(key_id, SEALER.new_wrapped_key(key_id), personal))
        again = parse_payload(event_type, payload_json(sealed), prefix="")
        assert plain_personal(again) == {}, event_type
