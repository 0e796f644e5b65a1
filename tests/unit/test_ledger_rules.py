"""The ledger's rules: numbering, chaining, tamper detection, voids, assignment days, personal data apart."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from contracts.envelope import payload_values
from contracts.events import DEFAULT_ZONE, RecordVoided
from services.ledger.exports import Totals, describe
from services.ledger.rules import (
    GENESIS,
    ChainedEntry,
    EntryContent,
    VillageHead,
    VoidStatus,
    VoidTarget,
    entry_hash,
    personal_digest,
    resolve_void,
    service_day,
    split_fields,
    verify_chain,
)
from tests.support.samples import sample_payload

VILLAGE = "370402105201"


def content(n: int) -> EntryContent:
    return EntryContent(
        event_id=uuid.UUID(int=n),
        village_code=VILLAGE,
        sequence=0,
        event_type="consultation.recorded",
        advisor_id="lawyer-0001",
        occurred_at=datetime(2026, 3, n, 9, tzinfo=UTC),
        recorded_at=datetime(2026, 3, n, 10, tzinfo=UTC),
        recorded_by="lawyer-0001",
        fields={"channel": "phone", "person_times": n},
        personal_digest=b"",
    )


def a_file(length: int) -> list[ChainedEntry]:
    head = VillageHead(VILLAGE)
    return [head.append(content(n)) for n in range(1, length + 1)]


def test_entries_are_numbered_from_one_without_gaps_and_chained() -> None:
    chained = a_file(5)
    assert [entry.content.sequence for entry in chained] == [1, 2, 3, 4, 5]
    assert chained[0].previous_hash == GENESIS
    for before, after in itertools.pairwise(chained):
        assert after.previous_hash == before.entry_hash
    assert verify_chain(VILLAGE, chained) is None


def test_a_head_continues_where_the_file_stands() -> None:
    first = a_file(3)
    head = VillageHead(VILLAGE, last_sequence=3, last_hash=first[-1].entry_hash)
    fourth = head.append(content(4))
    assert verify_chain(VILLAGE, [*first, fourth]) is None


@pytest.mark.parametrize(
    ("tamper", "at", "problem"),
    [
        (
            lambda chain: chain.__setitem__(
                2, replace(chain[2], content=replace(chain[2].content, fields={"channel": "x"}))
            ),
            3,
            "content",
        ),
        (lambda chain: chain.pop(1), 3, "expected entry number 2"),
        (
            lambda chain: chain.__setitem__(3, replace(chain[3], previous_hash=b"\x01" * 32)),
            4,
            "does not link",
        ),
        (
            lambda chain: chain.__setitem__(
                1, replace(chain[1], content=replace(chain[1].content, recorded_by="someone-else"))
            ),
            2,
            "content",
        ),
    ],
)
def test_verification_names_the_first_broken_link(tamper: object, at: int, problem: str) -> None:
    chained = a_file(6)
    assert callable(tamper)
    tamper(chained)
    broken = verify_chain(VILLAGE, chained)
    assert broken is not None
    assert broken.sequence == at
    assert problem in broken.problem


def test_the_hash_is_the_same_for_the_same_instant_in_any_zone() -> None:
    utc = replace(content(1), sequence=1)
    shanghai = replace(utc, occurred_at=utc.occurred_at.astimezone(DEFAULT_ZONE))
    assert shanghai.occurred_at.utcoffset() != utc.occurred_at.utcoffset()
    assert entry_hash(GENESIS, shanghai) == entry_hash(GENESIS, utc)


def test_the_hash_covers_personal_data_only_through_a_salted_digest() -> None:
    personal = {"requester": {"name": "张三", "phone": "13800000000"}}
    one = personal_digest(personal, b"salt-1")
    assert one != personal_digest(personal, b"salt-2")
    assert one == personal_digest(dict(personal), b"salt-1")
    assert personal_digest({}, b"salt-1") == b""
    with_digest = replace(content(1), personal_digest=one, sequence=1)
    assert entry_hash(GENESIS, with_digest) != entry_hash(GENESIS, replace(with_digest, personal_digest=b""))


def test_personal_fields_are_split_from_statistics_grade_fields() -> None:
    statistics, personal = split_fields(sample_payload("consultation.recorded"))
    assert set(personal) == {"requester", "summary"}
    assert statistics == {"channel": "on_site", "person_times": 3, "topic": "land", "duration_minutes": 40}
    statistics, personal = split_fields(sample_payload("mediation.recorded"))
    assert personal == {}
    assert statistics["parties"] == 2


def _void(by: str = "lawyer-0001", role: str | None = "advisor") -> RecordVoided:
    payload = sample_payload("record.voided")
    assert isinstance(payload, RecordVoided)
    return payload.model_copy(update={"recorded_by": by, "recorded_by_role": role})


@pytest.mark.parametrize(
    ("target", "void", "status"),
    [
        (VoidTarget(VILLAGE, "lawyer-0001", "lawyer-0001"), _void(), VoidStatus.applied),
        (VoidTarget(VILLAGE, "lawyer-0001", "lawyer-0001", voided=True), _void(), VoidStatus.already_voided),
        (None, _void(), VoidStatus.unknown_target),
        (VoidTarget("370402105202", "lawyer-0001", "lawyer-0001"), _void(), VoidStatus.unknown_target),
        # another advisor's record: refused (issue 12, finding 4)
        (VoidTarget(VILLAGE, "lawyer-0002", "lawyer-0002"), _void(), VoidStatus.not_permitted),
        # the township office supervising the village may void anyone's record there
        (
            VoidTarget(VILLAGE, "lawyer-0002", "lawyer-0002"),
            _void("office-370402105", "township_office"),
            VoidStatus.applied,
        ),
    ],
)
def test_a_void_applies_once_to_a_record_of_its_own_village_when_its_sender_may_void_it(
    target: VoidTarget | None, void: RecordVoided, status: VoidStatus
) -> None:
    assert resolve_void(target, void) is status


def test_the_service_day_is_the_day_in_asia_shanghai() -> None:
    assert service_day(datetime(2026, 3, 31, 17, 30, tzinfo=UTC)) == date(2026, 4, 1)


def entry(event_type: str, fields: dict[str, object], voided: bool = False) -> dict[str, object]:
    return {
        "event_type": event_type,
        "fields": fields,
        "voided_by_event_id": uuid.uuid4() if voided else None,
    }


def test_totals_count_valid_records_people_and_hours() -> None:
    totals = Totals()
    totals.add(entry("consultation.recorded", {"person_times": 3}))
    totals.add(entry("consultation.recorded", {"person_times": 2}))
    totals.add(entry("consultation.recorded", {"person_times": 9}, voided=True))
    totals.add(
        entry(
            "visit.logged",
            {"started_at": "2026-03-01T08:00:00+08:00", "ended_at": "2026-03-01T12:30:00+08:00"},
        )
    )
    totals.add(entry("record.voided", {}))
    rows = {row[0]: row for row in totals.rows()}
    assert rows["法律咨询"][1:] == ["法律咨询 2 件，5 人次", 2]
    assert rows["驻村服务"][1:] == ["驻村服务 1 次，共 4.5 小时", 1]
    assert rows["已作废记录"][2] == 1


def test_personal_details_are_masked_in_exports_unless_allowed() -> None:
    shown = {
        "event_type": "consultation.recorded",
        "fields": {"topic": "land"},
        "personal": {"summary": "宅基地"},
    }
    assert "宅基地" in describe(shown, show_personal=True)
    assert "宅基地" not in describe(shown, show_personal=False)
    assert "摘要：***" in describe(shown, show_personal=False)
    assert describe(shown, show_personal=True).startswith("主题：土地")


def test_split_fields_of_values_dumped_once_equals_its_own_dump() -> None:
    for kind in ("consultation.recorded", "visit.logged", "legal_aid.assisted", "record.voided"):
        payload = sample_payload(kind)
        assert split_fields(payload, payload_values(payload)) == split_fields(payload), kind


def test_an_entry_carrying_the_next_number_is_chained_as_one_numbered_by_the_head() -> None:
    numbered, unnumbered = VillageHead(VILLAGE), VillageHead(VILLAGE)
    for n in range(1, 4):
        first = numbered.append(dataclasses.replace(content(n), sequence=n))
        second = unnumbered.append(content(n))
        assert first == second
    assert numbered.last_hash == unnumbered.last_hash
    assert numbered.append(dataclasses.replace(content(9), sequence=7)).content.sequence == 4
