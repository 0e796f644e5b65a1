"""The bulk import of history (old ledgers), as pure functions: a ledger file (the layout the ledger
exports, `contracts.ledger_layout`) → the events to publish, or every row's problems.

A row keeps its record id (re-importing is harmless: the same id and content is a duplicate), its
recorder and its original `recorded_at` (timeliness is judged on it; a row without one is left out of the
timeliness score), and is marked `imported`. The 400-day age limit of intake does not apply. Who may
import: a county bureau or above, every village within its region.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import IO, Any

import orjson
from openpyxl import load_workbook

from contracts import ledger_layout as layout
from contracts.envelope import ContractViolation, Event, FieldError, parse_payload
from contracts.events import (
    DEFAULT_ZONE,
    PAYLOAD_BY_TYPE,
    SEALED_PERSONAL_FIELD,
    SERVICE_RECORD_NAMES,
    EventPayload,
    ServiceRecord,
    VisitLogged,
    personal_field_names,
)
from plumbing.auth import REGISTRY_ROLES, Principal
from plumbing.tables import FORMULA_STARTS

SOURCE = "/villagecounsel/intake/import"
# Ids of rows that have none (a ledger kept by hand): derived from the row's content, so that importing
# the same file again gives the same ids and is harmless.
ROW_ID_NAMESPACE = uuid.UUID("5f0d7c1e-2b8a-4c47-9a51-3d2b7e6c9f10")
TYPE_BY_NAME = {name: event_type for event_type, name in SERVICE_RECORD_NAMES.items()}
COMMON_FIELDS = ("advisor_id", "village_code", "occurred_at", "recorded_by")
ADVISOR_IN_BRACKETS = re.compile(r"\(([A-Za-z0-9][A-Za-z0-9._-]{0,63})\)\s*$")
XLSX_MAGIC = b"PK\x03\x04"
# Columns a file must have (each group: one of them); the others are for people and not read.
REQUIRED_COLUMNS: tuple[tuple[str, ...], ...] = (
    (layout.VILLAGE_CODE,),
    (layout.EVENT_TYPE, layout.KIND_NAME),
    (layout.ADVISOR,),
    (layout.OCCURRED_EXACT, layout.OCCURRED),
    (layout.RECORDED_BY,),
    (layout.RECORD_JSON,),
)


class FileFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


@dataclass(frozen=True)
class RowError:
    """One broken rule of one row: where (sheet, row of the file as a spreadsheet shows it), which column
    or field, which rule, and what it says. Values of personal fields are never repeated here."""

    sheet: str
    row: int
    field: str
    rule: str
    message: str
    value: Any = None

    def as_json(self) -> dict[str, Any]:
        found = {"sheet": self.sheet, "row": self.row, "field": self.field, "rule": self.rule}
        found["message"] = self.message
        if self.value is not None:
            found["value"] = self.value
        return found

    def __str__(self) -> str:
        where = f"{self.sheet} row {self.row}" if self.sheet else f"row {self.row}"
        return f"{where}: {self.field}: {self.rule} ({self.message})"


@dataclass(frozen=True)
class ImportRow:
    sheet: str
    row: int
    event: Event
    has_personal: bool


@dataclass
class ImportCheck:
    """What a pass over the file found: the rows that would be published and every problem."""

    rows: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    errors: list[RowError] = field(default_factory=list)
    personal_ids: dict[uuid.UUID, tuple[str, int]] = field(default_factory=dict)

    @property
    def forbidden(self) -> bool:
        """Whether an error is about who may import (403) rather than what the file says (422)."""
        return any(error.rule in FORBIDDING_RULES for error in self.errors)


FORBIDDING_RULES = frozenset({"within_region", "county_level_or_above"})


def import_refusal(principal: Principal) -> RowError | None:
    """Only a county bureau or above imports history (it keeps the ledgers and answers for them)."""
    if principal.role in REGISTRY_ROLES:
        return None
    return RowError(
        "",
        0,
        "role",
        "county_level_or_above",
        f"importing history needs a county bureau or above, not {principal.role}",
    )


def detect_format(head: bytes, name: str = "") -> FileFormat:
    """.xlsx is a zip (starts PK\\x03\\x04); anything else is read as CSV."""
    if head.startswith(XLSX_MAGIC) or name.lower().endswith(".xlsx"):
        return FileFormat.xlsx
    return FileFormat.csv


# -- reading the table -----------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    """A cell as text, as the ledger wrote it: the `'` the export put before formula-like text removed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def table_rows(file: IO[bytes], file_format: FileFormat) -> Iterator[tuple[str, int, list[str]]]:
    """(sheet, row number, cells) of every row: the sheet's name for .xlsx, "" for CSV; rows numbered from 1
    as a spreadsheet program shows them (a CSV row is its first line)."""
    if file_format is FileFormat.xlsx:
        workbook = load_workbook(file, read_only=True, data_only=True)
        try:
            for sheet in workbook.worksheets:
                for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                    yield sheet.title, number, [_cell_text(value) for value in values]
        finally:
            workbook.close()
        return
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        line = 1
        for cells in reader:
            yield "", line, [_cell_text(cell) for cell in cells]
            line = reader.line_num + 1
    finally:
        text.detach()  # the caller's file stays the caller's to close


def entry_rows(
    rows: Iterable[tuple[str, int, list[str]]], errors: list[RowError]
) -> Iterator[tuple[str, int, dict[str, str]]]:
    """The entries of every sheet as {header: text}: the rows after a header row up to an empty row or the
    totals. A header row is one with the column `记录数据(JSON)`; its missing columns are errors."""
    headers: list[str] | None = None
    seen_header = False
    for sheet, number, cells in rows:
        stripped = [cell.strip() for cell in cells]
        if layout.RECORD_JSON in stripped:
            headers = stripped
            seen_header = True
            for group in REQUIRED_COLUMNS:
                if not any(name in headers for name in group):
                    errors.append(
                        RowError(sheet, number, " / ".join(group), "required_column", "the column is missing")
                    )
            continue
        if headers is None:
            continue
        if not any(stripped) or stripped[0] == layout.TOTALS_MARK:
            headers = None
            continue
        yield sheet, number, {name: cell for name, cell in zip(headers, cells, strict=False) if name}
    if not seen_header:
        errors.append(
            RowError(
                "",
                0,
                "file",
                "ledger_layout",
                f"no header row with the column {layout.RECORD_JSON}: export a ledger to see the layout",
            )
        )


# -- one row → one event ---------------------------------------------------------------------------------


def _moment(text: str, column: str, errors: list[FieldError]) -> datetime | None:
    """An ISO 8601 time, or the people's `YYYY-MM-DD HH:MM`; without a zone it is Beijing time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        errors.append(
            FieldError(column, "datetime", "an ISO 8601 time, e.g. 2019-03-20T09:30:00+08:00", text)
        )
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=DEFAULT_ZONE)


def _cell(cells: dict[str, str], *names: str) -> tuple[str, str]:
    """(column, text) of the first of the columns that has text; the first column when none has."""
    for name in names:
        text = cells.get(name, "").strip()
        if text:
            return name, text
    return names[0], ""


def _masked(value: Any) -> bool:
    if isinstance(value, str):
        return value == layout.MASKED
    if isinstance(value, dict):
        return any(_masked(item) for item in value.values())
    if isinstance(value, list):
        return any(_masked(item) for item in value)
    return False


def _row_id(text: str, cells: dict[str, str], errors: list[FieldError]) -> uuid.UUID | None:
    if not text:
        content = orjson.dumps({name: cells[name] for name in sorted(cells)})
        return uuid.uuid5(ROW_ID_NAMESPACE, content.decode())
    try:
        return uuid.UUID(text)
    except ValueError:
        errors.append(FieldError(layout.EVENT_ID, "uuid", "the record's id, a UUID (or empty)", text))
        return None


def _event_type(cells: dict[str, str], errors: list[FieldError]) -> str | None:
    column, text = _cell(cells, layout.EVENT_TYPE, layout.KIND_NAME)
    event_type = TYPE_BY_NAME.get(text, text) if column == layout.KIND_NAME else text
    payload_type = PAYLOAD_BY_TYPE.get(event_type)
    if payload_type is None or not issubclass(payload_type, ServiceRecord):
        errors.append(
            FieldError(
                column,
                "service_record_type",
                f"one of {', '.join(SERVICE_RECORD_NAMES)} (or its name in {layout.KIND_NAME})",
                text,
            )
        )
        return None
    return event_type


def _record_fields(text: str, errors: list[FieldError]) -> dict[str, Any] | None:
    try:
        found = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        found = None
    if not isinstance(found, dict):
        errors.append(FieldError(layout.RECORD_JSON, "json_object", "the record's fields as a JSON object"))
        return None
    for name in sorted(set(found) & {*COMMON_FIELDS, SEALED_PERSONAL_FIELD}):
        errors.append(
            FieldError(
                f"{layout.RECORD_JSON}.{name}",
                "own_column" if name in COMMON_FIELDS else "server_set",
                "given in its own column" if name in COMMON_FIELDS else "sealed by intake, never imported",
            )
        )
    return found


def _payload_errors(payload_type: type[EventPayload], violation: ContractViolation) -> list[FieldError]:
    """The contract's complaints, without repeating a personal field's value."""
    personal = personal_field_names(payload_type)
    found = []
    for error in violation.errors:
        top = error.field.split(".")[0]
        shown = error.value if top not in personal and isinstance(error.value, str | int | float) else None
        found.append(FieldError(error.field, error.rule, error.message, shown))
    return found


def row_event(
    cells: dict[str, str], principal: Principal, now: datetime, clock_skew: timedelta
) -> tuple[Event | None, list[FieldError]]:
    """The event a row stands for, or every problem of the row (its columns, its fields, its times and
    whether it lies within the importer's region)."""
    errors: list[FieldError] = []
    event_id = _row_id(cells.get(layout.EVENT_ID, "").strip(), cells, errors)
    event_type = _event_type(cells, errors)
    advisor_text = cells.get(layout.ADVISOR, "").strip()
    bracketed = ADVISOR_IN_BRACKETS.search(advisor_text)
    advisor_id = bracketed.group(1) if bracketed else advisor_text
    occurred_column, occurred_text = _cell(cells, layout.OCCURRED_EXACT, layout.OCCURRED)
    occurred_at = _moment(occurred_text, occurred_column, errors) if occurred_text else None
    if not occurred_text:
        errors.append(FieldError(occurred_column, "required", "when it happened"))
    recorded_column, recorded_text = _cell(cells, layout.RECORDED_EXACT, layout.RECORDED)
    recorded_at = _moment(recorded_text, recorded_column, errors) if recorded_text else None
    fields = _record_fields(cells.get(layout.RECORD_JSON, "").strip(), errors)
    if fields is not None and event_type is not None:
        personal = personal_field_names(PAYLOAD_BY_TYPE[event_type])
        for name in sorted(personal & set(fields)):
            if _masked(fields[name]):
                errors.append(
                    FieldError(
                        f"{layout.RECORD_JSON}.{name}",
                        "masked",
                        f"{layout.MASKED} is a masked value: import an export made by a role that sees "
                        "personal data (a county bureau), or leave the field out",
                    )
                )
    if errors or fields is None or event_type is None or event_id is None or occurred_at is None:
        return None, errors
    values = {
        **fields,
        "advisor_id": advisor_id,
        "village_code": cells.get(layout.VILLAGE_CODE, "").strip(),
        "occurred_at": occurred_at,
        "recorded_by": cells.get(layout.RECORDED_BY, "").strip(),
        "imported": True,
    }
    try:
        payload = parse_payload(event_type, values, prefix="", producing=True)
    except ContractViolation as violation:
        return None, _payload_errors(PAYLOAD_BY_TYPE[event_type], violation)
    if not isinstance(payload, ServiceRecord):  # _event_type admits service records only
        raise TypeError(event_type)
    latest = now + clock_skew
    for column, moment in (
        (occurred_column, payload.occurred_at),
        ("ended_at", payload.ended_at if isinstance(payload, VisitLogged) else None),
        (recorded_column, recorded_at),
    ):
        if moment is not None and moment > latest:
            errors.append(FieldError(column, "not_in_future", "is in the future", moment.isoformat()))
    if not principal.covers(payload.village_code):
        errors.append(
            FieldError(
                layout.VILLAGE_CODE,
                "within_region",
                f"outside the importer's region {principal.region_code}",
                payload.village_code,
            )
        )
    if errors:
        return None, errors
    event = Event(id=event_id, source=SOURCE, time=payload.occurred_at, data=payload, recorded_at=recorded_at)
    return event, []


def has_personal(event: Event) -> bool:
    data = event.data.model_dump(exclude_none=True)
    return any(name in data for name in personal_field_names(type(event.data)))


def import_rows(
    rows: Iterable[tuple[str, int, list[str]]],
    principal: Principal,
    now: datetime,
    clock_skew: timedelta,
    check: ImportCheck,
) -> Iterator[ImportRow]:
    """Every valid row's event, in the file's order; the problems (and counts) go into `check`."""
    seen: dict[uuid.UUID, tuple[str, int]] = {}
    for sheet, number, cells in entry_rows(rows, check.errors):
        check.rows += 1
        event, errors = row_event(cells, principal, now, clock_skew)
        check.errors.extend(
            RowError(sheet, number, error.field, error.rule, error.message, error.value) for error in errors
        )
        if event is None:
            continue
        first = seen.setdefault(event.id, (sheet, number))
        if first != (sheet, number):
            check.errors.append(
                RowError(
                    sheet,
                    number,
                    layout.EVENT_ID,
                    "unique_in_file",
                    f"the same id as {first[0] + ' ' if first[0] else ''}row {first[1]}",
                    str(event.id),
                )
            )
            continue
        check.by_type[event.type] += 1
        personal = has_personal(event)
        if personal:
            check.personal_ids[event.id] = (sheet, number)
        yield ImportRow(sheet, number, event, personal)


def check_file(
    file: IO[bytes], file_format: FileFormat, principal: Principal, now: datetime, clock_skew: timedelta
) -> ImportCheck:
    """A whole pass over the file: every problem of every row, nothing kept but the counts."""
    check = ImportCheck()
    refusal = import_refusal(principal)
    if refusal is not None:
        check.errors.append(refusal)
        return check
    try:
        for _ in import_rows(table_rows(file, file_format), principal, now, clock_skew, check):
            pass
    except Exception as error:  # noqa: BLE001 - a file no reader understands is the file's fault: a 422, never a 500
        check.errors.append(unreadable(file_format, error))
    return check


def unreadable(file_format: FileFormat, error: Exception) -> RowError:
    return RowError(
        "",
        0,
        "file",
        f"{file_format.value}_readable",
        f"the file cannot be read as {file_format.value} (UTF-8 CSV or .xlsx): {type(error).__name__}",
    )


def erased_errors(check: ImportCheck, erased: Iterable[uuid.UUID]) -> list[RowError]:
    """Rows bringing back personal data that was erased (PIPL Art. 47): it stays erased."""
    return [
        RowError(
            *check.personal_ids[key_id],
            layout.EVENT_ID,
            "personal_data_erased",
            "this record's personal data was erased; import it without its personal fields",
            str(key_id),
        )
        for key_id in sorted(erased, key=lambda key_id: check.personal_ids[key_id])
    ]


def batches(rows: Iterable[ImportRow], size: int) -> Iterator[list[ImportRow]]:
    batch: list[ImportRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
