"""Small tables as files a bureau opens: CSV (UTF-8 with a BOM, for Chinese in spreadsheets) or .xlsx."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from fastapi.responses import Response
from openpyxl import Workbook

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class TableFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


def table_response(
    rows: Sequence[Sequence[Any]], filename: str, file_format: TableFormat, sheet_title: str
) -> Response:
    """The rows (header first) as a CSV or .xlsx download named `filename.<format>`."""
    disposition = {"Content-Disposition": f'attachment; filename="{filename}.{file_format.value}"'}
    if file_format is TableFormat.csv:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return Response(
            "\ufeff" + buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=disposition
        )
    if file_format is not TableFormat.xlsx:
        raise ValueError(f"{file_format} is not a file format")
    workbook = Workbook()
    sheet = workbook.create_sheet(sheet_title, 0)
    workbook.remove(workbook.worksheets[1])
    for row in rows:
        sheet.append(list(row))
    saved = io.BytesIO()
    workbook.save(saved)
    return Response(saved.getvalue(), media_type=XLSX_MEDIA_TYPE, headers=disposition)
