"""The import of history as tables of cases: the ledger's export read back, and every row's problems."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openpyxl import Workbook

from contracts import ledger_layout as layout
from contracts.envelope import content_fingerprint, parse_payload
from contracts.events import DEFAULT_ZONE, SERVICE_RECORD_NAMES, ScoreComponent
from contracts.examples import example_fields
from plumbing.auth import Principal, Role, mint_token
from plumbing.tables import csv_line
from services.assessment.rules import Activity, Term, timeliness_judged, year_grade
from services.intake.__main__ import main as intake_command
from services.intake.app import create_app as create_intake
from services.intake.backfill import ImportOutcome, summary_lines
from services.intake.imports import (
    FileFormat,
    ImportCheck,
    check_file,
    detect_format,
    import_rows,
    row_event,
    table_rows,
)
from services.intake.settings import IntakeSettings
from services.ledger.exports import HEADERS, Totals, XlsxWriter, entry_row
from services.ledger.rules import split_fields

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
SECRET = "imports-unit-secret-long-enough-for-hs256"
SKEW = timedelta(minutes=5)
COUNTY = Principal("county-370402", Role.county_bureau, "370402")
PROVINCE = Principal("province-37", Role.province_department, "37")
VILLAGE = "370402105201"
SERVICE_TYPES = list(SERVICE_RECORD_NAMES)


def ledger_entry(event_type: str, sequence: int = 1, **changes: Any) -> dict[str, Any]:
    """An entry as the ledger's queries give it to the export (fields and personal apart)."""
    values = {**example_fields(event_type), **changes}
    if event_type == "record.voided":
        values["target_event_id"] = str(uuid.UUID(int=7))
    payload = parse_payload(event_type, values, prefix="")
    fields, personal = split_fields(payload)
    return {
        "event_id": uuid.uuid4(),
        "village_code": payload.village_code,  # type: ignore[attr-defined]
        "sequence": sequence,
        "event_type": event_type,
        "advisor_id": payload.advisor_id,  # type: ignore[attr-defined]
        "occurred_at": payload.occurred_at.astimezone(UTC),  # type: ignore[attr-defined]
        "recorded_at": NOW - timedelta(days=900),
        "recorded_by": payload.recorded_by,  # type: ignore[attr-defined]
        "fields": fields,
        "personal": personal or None,
        "voided_by_event_id": None,
        "void_status": None,
        "erased_at": None,
    }


def export_csv(entries: list[dict[str, Any]], show_personal: bool = True) -> bytes:
    """What the ledger's CSV export writes for one village (title, headers, rows, totals, blank line)."""
    totals = Totals()
    lines = ["\ufeff", csv_line(["某村（370402105201）工作台账 最早 至 现在"]), csv_line(HEADERS)]
    for entry in entries:
        totals.add(entry)
        lines.append(csv_line(entry_row(entry, "顾问甲", False, show_personal)))
    lines += [csv_line(row) for row in totals.rows()] + ["\r\n"]
    return "".join(lines).encode()


def check(
    data: bytes, principal: Principal = COUNTY, file_format: FileFormat = FileFormat.csv
) -> ImportCheck:
    return check_file(io.BytesIO(data), file_format, principal, NOW, SKEW)


def events(data: bytes, file_format: FileFormat = FileFormat.csv) -> list[Any]:
    found = ImportCheck()
    rows = list(import_rows(table_rows(io.BytesIO(data), file_format), COUNTY, NOW, SKEW, found))
    assert found.errors == []
    return [row.event for row in rows]


def rules_of(found: ImportCheck) -> list[tuple[int, str, str]]:
    return [(error.row, error.field, error.rule) for error in found.errors]


@pytest.mark.parametrize("event_type", SERVICE_TYPES)
def test_every_kind_of_record_comes_back_from_the_ledgers_csv_as_it_was(event_type: str) -> None:
    """The ledger writes the layout, intake reads it: the two agree on every field of every kind."""
    entry = ledger_entry(event_type)
    [event] = events(export_csv([entry]))
    assert event.id == entry["event_id"]
    assert event.recorded_at == entry["recorded_at"]
    assert event.time == entry["occurred_at"]
    fields, personal = split_fields(event.data)
    assert fields == {**entry["fields"], "imported": True}
    assert (personal or None) == entry["personal"]
    assert event.data.recorded_by == entry["recorded_by"]
    assert event.data.occurred_at == entry["occurred_at"]


def test_the_xlsx_export_reads_back_the_same_as_the_csv() -> None:
    entries = [ledger_entry(kind, number) for number, kind in enumerate(SERVICE_TYPES, start=1)]
    writer = XlsxWriter()
    sheet = writer.start_sheet(VILLAGE, "某村工作台账")
    totals = Totals()
    for entry in entries:
        totals.add(entry)
        writer.append(sheet, entry_row(entry, "顾问甲", False, True))
    writer.append(sheet, [])
    for row in totals.rows():
        writer.append(sheet, row)
    with writer.finish() as file:
        data = file.read()
    assert detect_format(data[:4]) is FileFormat.xlsx
    from_xlsx = events(data, FileFormat.xlsx)
    from_csv = events(export_csv(entries))
    assert [e.data for e in from_xlsx] == [e.data for e in from_csv]
    assert [(e.id, e.recorded_at) for e in from_xlsx] == [(e.id, e.recorded_at) for e in from_csv]
    assert len(from_xlsx) == len(SERVICE_TYPES)


def test_sections_of_many_villages_are_read_and_their_totals_are_not() -> None:
    first = export_csv([ledger_entry("lecture.held"), ledger_entry("visit.logged", 2)])
    second = export_csv([ledger_entry("mediation.recorded", village_code="370402105202")])
    found = check(first + second.removeprefix("\ufeff".encode()))
    assert found.errors == []
    assert found.rows == 3
    assert found.by_type == {"lecture.held": 1, "visit.logged": 1, "mediation.recorded": 1}


def test_history_older_than_the_age_limit_is_imported_with_its_own_dates() -> None:
    old = ledger_entry("consultation.recorded", occurred_at="2017-05-04T10:00:00+08:00")
    old["recorded_at"] = datetime(2017, 5, 6, 9, 0, tzinfo=UTC)
    [event] = events(export_csv([old]))
    assert event.data.occurred_at == datetime(2017, 5, 4, 10, 0, tzinfo=DEFAULT_ZONE)
    assert event.recorded_at == datetime(2017, 5, 6, 9, 0, tzinfo=UTC)
    assert event.data.imported is True


def test_text_the_export_guarded_against_formulas_comes_back_unguarded() -> None:
    entry = ledger_entry("lecture.held", title="-民法典-", recorded_by="=clerk")
    data = export_csv([entry])
    assert b"'=clerk" in data
    [event] = events(data)
    assert (event.data.title, event.data.recorded_by) == ("-民法典-", "=clerk")


@pytest.mark.parametrize("sent_at", ["2026-03-14T17:30:00+08:00", "2026-03-14T17:30:00"])
def test_an_imported_record_has_the_fingerprint_of_the_record_it_came_from(sent_at: str) -> None:
    """Importing records that are already here is harmless: the same id and fingerprint, a duplicate. The
    export writes Beijing time, as clients send it (with +08:00, or naive)."""
    entry = ledger_entry("mediation.recorded", occurred_at=sent_at)
    [event] = events(export_csv([entry]))
    sent = parse_payload(
        "mediation.recorded", {**example_fields("mediation.recorded"), "occurred_at": sent_at}
    )
    assert event.data.imported is True
    assert content_fingerprint(event) == content_fingerprint(
        type(event)(event.id, "/villagecounsel/intake", event.time, sent, event.recorded_at)
    )


def test_a_hand_kept_ledger_without_ids_exact_times_or_recorded_times_is_read_too() -> None:
    """Old ledgers typed in by a bureau: the Chinese kind, Beijing time to the minute, no id, no recorded
    time. The id is derived from the row (the same file gives the same ids); recorded_at stays unknown."""
    headers = [layout.OCCURRED, layout.KIND_NAME, layout.ADVISOR, layout.RECORDED_BY, layout.VILLAGE_CODE]
    headers.append(layout.RECORD_JSON)
    fields = {"title": "法律进村", "attendees": 30, "evening_or_holiday": False, "format": "on_site"}
    fields["large_event"] = False
    row = [
        "2018-06-01 19:30",
        "法治讲座",
        "李四(lawyer-0002)",
        "司法所",
        VILLAGE,
        orjson.dumps(fields).decode(),
    ]
    data = (csv_line(headers) + csv_line(row)).encode()
    [first] = events(data)
    [again] = events(data)
    assert first.id == again.id
    assert first.recorded_at is None
    assert first.data.occurred_at == datetime(2018, 6, 1, 19, 30, tzinfo=DEFAULT_ZONE)
    assert (first.type, first.data.advisor_id, first.data.recorded_by) == (
        "lecture.held",
        "lawyer-0002",
        "司法所",
    )


def _row(**changes: str) -> list[str]:
    entry = ledger_entry("consultation.recorded")
    cells = dict(zip(HEADERS, entry_row(entry, "顾问甲", False, True), strict=True))
    return [str(cell) for cell in {**cells, **changes}.values()]


def _file(*rows: list[str]) -> bytes:
    return (csv_line(HEADERS) + "".join(csv_line(row) for row in rows)).encode()


def _json(**changes: Any) -> str:
    fields = {
        k: v
        for k, v in example_fields("consultation.recorded").items()
        if k not in ("advisor_id", "village_code", "occurred_at", "recorded_by")
    }
    return orjson.dumps({**fields, **changes}).decode()


ROW_CASES: list[tuple[str, dict[str, str], tuple[str, str]]] = [
    ("id not a UUID", {layout.EVENT_ID: "17"}, (layout.EVENT_ID, "uuid")),
    ("unknown type", {layout.EVENT_TYPE: "advisor.registered"}, (layout.EVENT_TYPE, "service_record_type")),
    ("no JSON", {layout.RECORD_JSON: "咨询"}, (layout.RECORD_JSON, "json_object")),
    ("a time that is no time", {layout.OCCURRED_EXACT: "昨天"}, (layout.OCCURRED_EXACT, "datetime")),
    (
        "in the future",
        {layout.OCCURRED_EXACT: "2026-04-01T09:00:00+08:00"},
        (layout.OCCURRED_EXACT, "not_in_future"),
    ),
    (
        "recorded in the future",
        {layout.RECORDED_EXACT: "2027-01-01T09:00:00+08:00"},
        (layout.RECORDED_EXACT, "not_in_future"),
    ),
    ("outside the region", {layout.VILLAGE_CODE: "370403105201"}, (layout.VILLAGE_CODE, "within_region")),
    ("not a village code", {layout.VILLAGE_CODE: "3704"}, ("village_code", "string_pattern_mismatch")),
    ("person_times 0", {layout.RECORD_JSON: _json(person_times=0)}, ("person_times", "greater_than_equal")),
    (
        "masked personal data",
        {layout.RECORD_JSON: _json(requester={"name": "***", "phone": "***"})},
        (f"{layout.RECORD_JSON}.requester", "masked"),
    ),
    (
        "a common field in the JSON",
        {layout.RECORD_JSON: _json(advisor_id="x")},
        (f"{layout.RECORD_JSON}.advisor_id", "own_column"),
    ),
    (
        "a seal in the JSON",
        {layout.RECORD_JSON: _json(sealed_personal={"key_id": "x"})},
        (f"{layout.RECORD_JSON}.sealed_personal", "server_set"),
    ),
    ("an unknown field", {layout.RECORD_JSON: _json(colour="red")}, ("colour", "extra_forbidden")),
]


@pytest.mark.parametrize(("case", "changes", "expected"), ROW_CASES, ids=[case[0] for case in ROW_CASES])
def test_a_bad_row_is_named_by_row_field_and_rule(
    case: str, changes: dict[str, str], expected: tuple[str, str]
) -> None:
    found = check(_file(_row(), _row(**changes), _row()))
    assert found.rows == 3
    assert (3, *expected) in rules_of(found)  # the header is row 1, the bad row is the file's 3rd
    assert {error.row for error in found.errors} == {3}


def test_every_error_of_a_file_is_listed_not_only_the_first() -> None:
    found = check(_file(_row(**{layout.EVENT_ID: "x"}), _row(), _row(**{layout.RECORD_JSON: "[]"})))
    assert rules_of(found) == [(2, layout.EVENT_ID, "uuid"), (4, layout.RECORD_JSON, "json_object")]
    assert not found.forbidden


def test_the_same_id_twice_in_a_file_is_an_error_naming_the_first_row() -> None:
    row = _row()
    found = check(_file(row, row))
    assert rules_of(found) == [(3, layout.EVENT_ID, "unique_in_file")]
    assert "row 2" in found.errors[0].message


def test_a_row_outside_the_region_makes_the_import_forbidden() -> None:
    found = check(_file(_row(**{layout.VILLAGE_CODE: "370403105201"})))
    assert found.forbidden
    assert check(_file(_row(**{layout.VILLAGE_CODE: "370403105201"})), PROVINCE).errors == []


@pytest.mark.parametrize("role", [Role.advisor, Role.township_office, Role.integration])
def test_only_a_county_bureau_or_above_imports(role: Role) -> None:
    found = check(_file(_row()), Principal("someone", role, "370402"))
    assert rules_of(found) == [(0, "role", "county_level_or_above")]
    assert found.forbidden


def test_a_file_without_the_layout_says_so() -> None:
    assert rules_of(check("序号,发生时间\r\n1,2020-01-01\r\n".encode())) == [(0, "file", "ledger_layout")]
    headers = [name for name in HEADERS if name != layout.RECORDED_BY]
    assert rules_of(check(csv_line(headers).encode())) == [(1, layout.RECORDED_BY, "required_column")]


def test_a_file_that_is_neither_csv_nor_xlsx_is_a_named_error_not_a_crash() -> None:
    assert rules_of(check(b"PK\x03\x04 not a zip", file_format=FileFormat.xlsx)) == [
        (0, "file", "xlsx_readable")
    ]
    assert rules_of(check(b"\xff\xfe\x00bad", file_format=FileFormat.csv)) == [(0, "file", "csv_readable")]


def test_errors_never_repeat_personal_values() -> None:
    bad_phone = _json(requester={"name": "王五", "phone": "call me"})
    found = check(_file(_row(**{layout.RECORD_JSON: bad_phone})))
    assert found.errors
    assert all("王五" not in str(e.as_json()) and "call me" not in str(e.as_json()) for e in found.errors)


def test_an_export_masked_for_its_reader_is_refused_and_says_which_export_to_use() -> None:
    data = export_csv([ledger_entry("consultation.recorded")], show_personal=False)
    found = check(data)
    assert [(e.field, e.rule) for e in found.errors] == [
        (f"{layout.RECORD_JSON}.requester", "masked"),
        (f"{layout.RECORD_JSON}.summary", "masked"),
    ]
    assert "county bureau" in found.errors[0].message


def test_row_event_marks_the_record_imported_and_keeps_the_recorder() -> None:
    cells = dict(zip(HEADERS, _row(), strict=True))
    event, errors = row_event(cells, COUNTY, NOW, SKEW)
    assert errors == []
    assert event is not None
    assert event.data.imported is True
    assert event.data.recorded_by == "lawyer-0001"
    assert event.source == "/villagecounsel/intake/import"


# -- the timeliness policy of the assessment for imported records ----------------------------------------

TERM = Term(date(2019, 1, 1), date(2019, 12, 31), None, Decimal("3000.00"))


def lecture(day: str, recorded_after: timedelta | None) -> Activity:
    at = datetime.fromisoformat(f"{day}T09:00").replace(tzinfo=DEFAULT_ZONE)
    recorded = at + recorded_after if recorded_after is not None else None
    return Activity("lecture.held", at, recorded, None, 0, False, False, None, False)


def test_timeliness_is_judged_on_the_original_recorded_date_or_left_out_when_unknown() -> None:
    assert timeliness_judged(datetime(2019, 3, 1, tzinfo=UTC))
    assert not timeliness_judged(None)
    on_time = lecture("2019-03-01", timedelta(days=1))
    late = lecture("2019-06-01", timedelta(days=60))
    unknown = [lecture("2019-09-01", None), lecture("2019-11-01", None)]
    grade = year_grade(2019, VILLAGE, [], [], [TERM], [on_time, late, *unknown], violation=False)
    assert grade.components[ScoreComponent.timely_recording] == 50.0  # 1 of the 2 with a date; 2 left out
    only_unknown = year_grade(2019, VILLAGE, [], [], [TERM], unknown, violation=False)
    assert ScoreComponent.timely_recording not in only_unknown.components


def test_csv_reading_numbers_rows_as_a_spreadsheet_does_even_with_line_breaks_in_cells() -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["a", "two\nlines"])
    writer.writerow(["b", "c"])
    rows = list(table_rows(io.BytesIO(buffer.getvalue().encode()), FileFormat.csv))
    assert [(number, cells[0]) for _, number, cells in rows] == [(1, "a"), (3, "b")]


def test_an_empty_workbook_sheet_is_no_header() -> None:
    workbook = Workbook()
    saved = io.BytesIO()
    workbook.save(saved)
    assert rules_of(check(saved.getvalue(), file_format=FileFormat.xlsx)) == [(0, "file", "ledger_layout")]


def test_the_command_needs_the_officials_token_and_an_existing_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VC_IMPORT_TOKEN", raising=False)
    ledger = tmp_path / "ledger.csv"
    ledger.write_bytes(_file(_row()))
    assert intake_command(["import", str(ledger)]) == 2
    assert "VC_IMPORT_TOKEN or --token-file" in capsys.readouterr().err
    monkeypatch.setenv("VC_IMPORT_TOKEN", "not-a-token")
    assert intake_command(["import", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert intake_command(["import", str(ledger), "--dry-run"]) == 2
    assert "the token is refused" in capsys.readouterr().err


def test_the_summary_says_what_happened_and_lists_the_errors() -> None:
    found = check(_file(_row(**{layout.EVENT_ID: "x"}), _row()))
    outcome = ImportOutcome(found, dry_run=True)
    assert outcome.status == "invalid"
    assert outcome.as_json()["errors"] == [
        {
            "sheet": "",
            "row": 2,
            "field": layout.EVENT_ID,
            "rule": "uuid",
            "message": found.errors[0].message,
            "value": "x",
        }
    ]
    lines = summary_lines(outcome)
    assert lines[0] == "invalid: 2 rows, 0 published"
    assert f"error row 2: {layout.EVENT_ID}: uuid" in lines[-1]
    valid = ImportOutcome(check(_file(_row())), dry_run=True)
    assert (valid.status, ImportOutcome(valid.check, dry_run=False).status) == ("valid", "imported")
    assert ImportOutcome(valid.check, dry_run=False, stopped="Kafka").status == "incomplete"


async def test_the_endpoint_answers_bad_files_and_callers_with_4xx_before_touching_kafka() -> None:
    """No broker and no database here: every refusal comes before either is needed."""
    settings = IntakeSettings(jwt_secret=SECRET, import_max_bytes=4096)
    app = create_intake(settings)
    transport = httpx.ASGITransport(app=app)

    def token(role: Role, region: str) -> dict[str, str]:
        signed = mint_token(settings, subject="s", role=role, region_code=region, now=datetime.now(UTC))
        return {"Authorization": f"Bearer {signed}"}

    county = token(Role.county_bureau, "370402")
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        township = await client.post(
            "/v1/imports", content=b"x", headers=token(Role.township_office, "370402105")
        )
        assert township.status_code == 403
        assert township.json()["error"]["fields"][0]["rule"] == "county_level_or_above"
        empty = await client.post("/v1/imports", content=b"", headers=county)
        assert (empty.status_code, empty.json()["error"]["fields"][0]["rule"]) == (422, "required")
        huge = await client.post("/v1/imports", content=b"x" * 5000, headers=county)
        assert huge.status_code == 413
        garbage = await client.post("/v1/imports", content=b"\x00\x01 no ledger", headers=county)
        assert garbage.status_code == 422
        assert [(f["row"], f["field"], f["rule"]) for f in garbage.json()["error"]["fields"]] == [
            (0, "file", "ledger_layout")
        ]
        broken_xlsx = await client.post(
            "/v1/imports", content=b"PK\x03\x04broken", headers=county, params={"dry_run": "true"}
        )
        assert broken_xlsx.status_code == 422
        assert broken_xlsx.json()["error"]["fields"][0]["rule"] == "xlsx_readable"
        assert broken_xlsx.json()["import"]["published"] == 0
