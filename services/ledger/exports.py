"""The ledger as a justice office files it: Chinese column headers, one sheet per village, totals at the
bottom. Rows are produced one at a time, so a county-year export never sits in memory whole."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import orjson
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from contracts.events import DEFAULT_ZONE, SERVICE_RECORD_NAMES
from contracts.ledger_layout import HEADERS as HEADERS_IN_LAYOUT
from contracts.ledger_layout import LOCAL_TIME_FORMAT, MASKED
from plumbing.tables import spreadsheet_cell, spreadsheet_row

HEADERS = list(HEADERS_IN_LAYOUT)
TYPE_NAMES = SERVICE_RECORD_NAMES
COUNT_FIELDS = ("person_times", "attendees", "parties", "applicants", "people_involved")
PEOPLE_UNIT = {
    "consultation.recorded": "人次",
    "lecture.held": "人参加",
    "mediation.recorded": "方当事人",
    "legal_aid.assisted": "名申请人",
}
FIELD_NAMES = {
    "topic": "主题",
    "channel": "渠道",
    "title": "题目",
    "format": "形式",
    "large_event": "大型法律服务活动",
    "evening_or_holiday": "晚间或节假日",
    "activities": "服务内容",
    "dispute_type": "纠纷类型",
    "outcome": "调解结果",
    "major_or_difficult": "重大疑难",
    "petition_backlog": "信访积案",
    "agreement_signed": "签订协议",
    "kind": "类别",
    "case_category": "案件类别",
    "category": "风险类别",
    "severity": "程度",
    "reported_to": "上报至",
    "rater": "评价人",
    "score": "评分",
    "target_event_id": "更正对象",
    "reason": "更正理由",
    "summary": "摘要",
    "requester": "咨询人",
    "name": "姓名",
    "phone": "电话",
    "description": "情况描述",
    "comment": "评语",
}
VALUE_NAMES = {
    "land": "土地",
    "marriage_family": "婚姻家庭",
    "labour": "劳动",
    "contract_debt": "合同债务",
    "neighbour_property": "相邻物业",
    "inheritance": "继承",
    "personal_injury": "人身损害",
    "administrative": "行政",
    "other": "其他",
    "on_site": "现场",
    "phone": "电话",
    "wechat": "微信",
    "online": "线上",
    "hotline_12348": "12348热线",
    "resolved": "调解成功",
    "partially_resolved": "部分解决",
    "unresolved": "未解决",
    "referred": "转交处理",
    "referral": "转介",
    "application_assisted": "协助申请",
    "case_represented": "代理案件",
    "village_rules": "村规民约",
    "contract_review": "合同审查",
    "legal_document_drafted": "起草法律文书",
    "legal_opinion": "法律意见",
    "mass_incident_risk": "群体性事件风险",
    "large_petition_risk": "大规模上访风险",
    "low": "低",
    "medium": "中",
    "high": "高",
    "township": "乡镇",
    "county": "区县",
    "resident": "群众",
    "village_cadre": "村干部",
    "township_office": "司法所",
    "consultation": "咨询",
    "mediation": "调解",
    "lecture": "讲座",
    "document_review": "文书审查",
    "village_meeting": "村务会议",
    "patrol": "走访",
}


def local_time(moment: datetime | None) -> str:
    return moment.astimezone(DEFAULT_ZONE).strftime(LOCAL_TIME_FORMAT) if moment else ""


def exact_time(moment: datetime | None) -> str:
    """ISO 8601 to the microsecond, in Beijing time: as clients write it (a naive time is read as
    Beijing time), so that a record imported again has the fingerprint of the one that was sent."""
    return moment.astimezone(DEFAULT_ZONE).isoformat() if moment else ""


def minutes_of(entry: dict[str, Any]) -> int:
    fields = entry["fields"]
    if entry["event_type"] == "visit.logged":
        started = datetime.fromisoformat(fields["started_at"])
        ended = datetime.fromisoformat(fields["ended_at"])
        return int((ended - started).total_seconds() // 60)
    return int(fields.get("duration_minutes", 0))


def people_of(entry: dict[str, Any]) -> int:
    return next((int(entry["fields"][name]) for name in COUNT_FIELDS if name in entry["fields"]), 0)


def describe(entry: dict[str, Any], show_personal: bool) -> str:
    """The entry's content in one cell: its statistics fields, then (if allowed) the personal ones."""
    skip = {"started_at", "ended_at", *COUNT_FIELDS, "duration_minutes"}
    parts = [f"{_label(name)}：{_text(value)}" for name, value in entry["fields"].items() if name not in skip]
    personal = entry.get("personal")
    if personal:
        if show_personal:
            parts.extend(f"{_label(name)}：{_text(value)}" for name, value in personal.items())
        else:
            parts.extend(f"{_label(name)}：{MASKED}" for name in personal)
    return "；".join(parts)


def _label(name: str) -> str:
    return FIELD_NAMES.get(name, name)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dict):
        return "，".join(f"{_label(k)} {_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "、".join(_text(item) for item in value)
    return VALUE_NAMES.get(str(value), str(value))


def remarks(entry: dict[str, Any], unassigned: bool) -> str:
    notes = []
    if unassigned:
        notes.append("非聘期内顾问记录")
    status = entry.get("void_status")
    if status == "unknown_target":
        notes.append("更正对象不存在")
    elif status == "already_voided":
        notes.append("更正对象已作废")
    if entry.get("erased_at"):
        notes.append("个人信息已依申请删除")
    return "；".join(notes)


def entry_row(entry: dict[str, Any], advisor_name: str, unassigned: bool, show_personal: bool) -> list[Any]:
    return [
        entry["sequence"],
        local_time(entry["occurred_at"]),
        TYPE_NAMES.get(entry["event_type"], entry["event_type"]),
        f"{advisor_name}({entry['advisor_id']})" if advisor_name else entry["advisor_id"],
        describe(entry, show_personal),
        people_of(entry) or "",
        minutes_of(entry) or "",
        entry["recorded_by"],
        local_time(entry["recorded_at"]),
        "已作废" if entry.get("voided_by_event_id") else "有效",
        remarks(entry, unassigned),
        str(entry["event_id"]),
        entry["village_code"],
        entry["event_type"],
        exact_time(entry["occurred_at"]),
        exact_time(entry["recorded_at"]),
        record_json(entry, show_personal),
    ]


def record_json(entry: dict[str, Any], show_personal: bool) -> str:
    """Every field of the record but the common columns, as JSON: personal ones masked unless allowed."""
    personal = entry.get("personal") or {}
    if not show_personal:
        personal = dict.fromkeys(personal, MASKED)
    return orjson.dumps({**entry["fields"], **personal}, option=orjson.OPT_SORT_KEYS).decode()


@dataclass
class Totals:
    """What the bottom of a sheet says: valid records by kind, with people and time."""

    records: Counter[str] = field(default_factory=Counter)
    people: Counter[str] = field(default_factory=Counter)
    minutes: Counter[str] = field(default_factory=Counter)
    voided: int = 0

    def add(self, entry: dict[str, Any]) -> None:
        if entry["event_type"] == "record.voided":
            return
        if entry.get("voided_by_event_id"):
            self.voided += 1
            return
        kind = entry["event_type"]
        self.records[kind] += 1
        self.people[kind] += people_of(entry)
        self.minutes[kind] += minutes_of(entry)

    def rows(self) -> list[list[Any]]:
        found: list[list[Any]] = [["合计"]]
        for kind in TYPE_NAMES:
            if not self.records[kind]:
                continue
            text = f"{TYPE_NAMES[kind]} {self.records[kind]} 件"
            if kind == "visit.logged":
                text = f"{TYPE_NAMES[kind]} {self.records[kind]} 次，共 {self.minutes[kind] / 60:.1f} 小时"
            elif self.people[kind] and kind in PEOPLE_UNIT:
                text += f"，{self.people[kind]} {PEOPLE_UNIT[kind]}"
            found.append([TYPE_NAMES[kind], text, self.records[kind]])
        found.append(["已作废记录", f"{self.voided} 件（不计入合计）", self.voided])
        return found


class XlsxWriter:
    """Writes sheets row by row (openpyxl's write-only mode) to a temporary file."""

    def __init__(self) -> None:
        self.workbook = Workbook(write_only=True)
        self.file: IO[bytes] = tempfile.TemporaryFile()

    def start_sheet(self, village_code: str, title: str) -> WriteOnlyWorksheet:
        sheet: WriteOnlyWorksheet = self.workbook.create_sheet(title=village_code)
        heading = WriteOnlyCell(sheet, value=spreadsheet_cell(title))
        heading.font = Font(bold=True, size=13)
        sheet.append([heading])
        bold_headers = []
        for text in HEADERS:
            cell = WriteOnlyCell(sheet, value=text)
            cell.font = Font(bold=True)
            bold_headers.append(cell)
        sheet.append(bold_headers)
        return sheet

    def append(self, sheet: WriteOnlyWorksheet, values: list[Any]) -> None:
        sheet.append(spreadsheet_row(values))

    def finish(self) -> IO[bytes]:
        if not self.workbook.worksheets:
            self.start_sheet("none", "没有记录")
        self.workbook.save(self.file)
        self.file.seek(0)
        return self.file
