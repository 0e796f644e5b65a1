"""Exports neutralise formula injection (issue 12, finding 6): a cell that starts with `=`, `+`, `-`, `@`,
tab or CR gets a leading `'`, in every CSV and .xlsx, and .xlsx values are text, never formulas. The files
are read back as a spreadsheet program would."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

import pytest
from openpyxl import load_workbook

from plumbing.tables import TableFormat, attachment, csv_line, spreadsheet_cell, table_response
from services.ledger.exports import XlsxWriter

HOSTILE = [
    '=HYPERLINK("http://evil.example","点我")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
]


def as_xml_keeps_it(text: str) -> str:
    """The neutralised text as read back from .xlsx (XML turns a CR into a line feed)."""
    return "'" + text.replace("\r", "\n")


@pytest.mark.parametrize("text", HOSTILE)
def test_a_cell_starting_like_a_formula_is_neutralised(text: str) -> None:
    assert spreadsheet_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["张三", "370402101201", 5, -5, 2.5, None, "a=b"])
def test_other_cells_are_left_as_they_are(value: Any) -> None:
    assert spreadsheet_cell(value) == value


def test_a_csv_table_reads_back_without_a_live_formula() -> None:
    answer = table_response([["法律顾问"], *[[text] for text in HOSTILE]], "t", TableFormat.csv, "表")
    rows = list(csv.reader(io.StringIO(answer.body.decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["'" + text for text in HOSTILE]


def test_an_xlsx_table_holds_text_not_formulas() -> None:
    answer = table_response([["法律顾问"], *[[text] for text in HOSTILE]], "t", TableFormat.xlsx, "表")
    sheet = load_workbook(io.BytesIO(answer.body)).active
    assert sheet is not None
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [cell.data_type for cell in cells] == ["s"] * len(HOSTILE)
    assert [cell.value for cell in cells] == [as_xml_keeps_it(text) for text in HOSTILE]


def test_the_ledgers_csv_lines_and_xlsx_sheets_are_neutralised() -> None:
    line = csv_line(["1", HOSTILE[0], 3])
    assert next(csv.reader(io.StringIO(line))) == ["1", "'" + HOSTILE[0], "3"]
    writer = XlsxWriter()
    sheet = writer.start_sheet("370402101201", "=村名（370402101201）")
    writer.append(sheet, [1, *HOSTILE])
    with writer.finish() as saved:
        book = load_workbook(saved)
    rows = list(book["370402101201"].iter_rows())
    assert rows[0][0].data_type == "s"
    assert rows[0][0].value == "'=村名（370402101201）"
    written = rows[2][1 : 1 + len(HOSTILE)]
    assert [cell.data_type for cell in written] == ["s"] * len(HOSTILE)
    assert [cell.value for cell in written] == [as_xml_keeps_it(text) for text in HOSTILE]


@pytest.mark.parametrize("name", ["ledger-advisor-张三", "ledger-a\r\nb", 'quote"name'])
def test_attachment_names_use_rfc_5987_and_stay_latin_1(name: str) -> None:
    header = attachment(name, "csv")["Content-Disposition"]
    header.encode("latin-1")
    assert "\r" not in header
    assert "\n" not in header
    assert f"filename*=UTF-8''{quote(name + '.csv', safe='')}" in header
