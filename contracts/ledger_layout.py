"""The layout of a ledger file (工作台账) as the ledger exports it and intake's import of history reads it.

One layout, declared once: the ledger writes it (`services/ledger/exports.py`), intake reads it back
(`services/intake/imports.py`), so that export → import into an empty system gives the same ledger.

A sheet (an .xlsx worksheet, or a section of a CSV file) is: a title row, the header row, one row per
entry in the village's order, an empty row or the `合计` row, then the totals. The first twelve columns
are for people; the last five carry what the first twelve round or translate (the village, the event
type, the exact times, every field of the record as JSON), so that nothing is lost on the way back.
"""

from __future__ import annotations

from typing import Final

SEQUENCE: Final = "序号"
OCCURRED: Final = "发生时间"
KIND_NAME: Final = "类别"
ADVISOR: Final = "法律顾问"
CONTENT: Final = "内容"
PEOPLE: Final = "人次/人数"
MINUTES: Final = "时长(分钟)"
RECORDED_BY: Final = "记录人"
RECORDED: Final = "记录时间"
STATUS: Final = "状态"
REMARKS: Final = "备注"
EVENT_ID: Final = "事件编号"
VILLAGE_CODE: Final = "村(社区)代码"
EVENT_TYPE: Final = "事件类型"
OCCURRED_EXACT: Final = "发生时间(ISO 8601)"
RECORDED_EXACT: Final = "记录时间(ISO 8601)"
RECORD_JSON: Final = "记录数据(JSON)"

# What a person reads (the order a justice office files), then what a machine needs to rebuild the entry.
PEOPLE_COLUMNS: Final = (
    SEQUENCE,
    OCCURRED,
    KIND_NAME,
    ADVISOR,
    CONTENT,
    PEOPLE,
    MINUTES,
    RECORDED_BY,
    RECORDED,
    STATUS,
    REMARKS,
    EVENT_ID,
)
MACHINE_COLUMNS: Final = (VILLAGE_CODE, EVENT_TYPE, OCCURRED_EXACT, RECORDED_EXACT, RECORD_JSON)
HEADERS: Final = (*PEOPLE_COLUMNS, *MACHINE_COLUMNS)

TOTALS_MARK: Final = "合计"  # first cell of the row that ends a sheet's entries
MASKED: Final = "***"  # what a reader not allowed to see personal data gets in its place
LOCAL_TIME_FORMAT: Final = "%Y-%m-%d %H:%M"  # 发生时间 and 记录时间, Beijing time, for people
