"""Small tables as files a bureau opens: CSV (UTF-8 with a BOM, for Chinese in spreadsheets) or .xlsx.

Every cell of every export passes `spreadsheet_cell`: text a spreadsheet program would run as a formula
(`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`, so an advisor named `=HYPERLINK(...)` is shown,
never run; .xlsx cells are then always text, except numbers (a `Decimal` is money: a number cell shown
with two places; the CSV writes it as its exact text).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response
from openpyxl import Workbook

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NOT_PLAIN_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


class TableFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


def spreadsheet_cell(value: Any) -> Any:
    """The value as a cell: text that would start a formula is prefixed with `'`; others are unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_row(values: Iterable[Any]) -> list[Any]:
    return [spreadsheet_cell(value) for value in values]


def csv_line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(spreadsheet_row(values))
    return buffer.getvalue()


def attachment(filename: str, extension: str) -> dict[str, str]:
    """Content-Disposition for a download: an ASCII `filename` (other characters as `_`) and the real name
    as RFC 5987 `filename*`, so a code like 张三 or a CR/LF can neither break the header nor the answer."""
    name = f"{filename}.{extension}"
    plain = NOT_PLAIN_FILENAME.sub("_", name)
    return {
        "Content-Disposition": f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
    }


def table_response(
    rows: Sequence[Sequence[Any]], filename: str, file_format: TableFormat, sheet_title: str
) -> Response:
    """The rows (header first) as a CSV or .xlsx download named `filename.<format>`."""
    disposition = attachment(filename, file_format.value)
    if file_format is TableFormat.csv:
        body = "".join(csv_line(row) for row in rows)
        return Response("\ufeff" + body, media_type="text/csv; charset=utf-8", headers=disposition)
    if file_format is not TableFormat.xlsx:
        raise ValueError(f"{file_format} is not a file format")
    workbook = Workbook()
    sheet = workbook.create_sheet(sheet_title, 0)
    workbook.remove(workbook.worksheets[1])
    for row in rows:
        sheet.append(spreadsheet_row(row))
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, Decimal):
                cell.number_format = "0.00"  # money: a number the office can sum, shown with its two places
    saved = io.BytesIO()
    workbook.save(saved)
    return Response(saved.getvalue(), media_type=XLSX_MEDIA_TYPE, headers=disposition)
