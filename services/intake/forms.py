"""The workbench's forms, derived from the contracts (one source): for every kind an advisor may send, its
fields with their type, bounds and whether they are required, read from the payload's JSON Schema, with the
Chinese labels of the tables below. A contract field missing from the tables shows under its own name and
`unlabeled()` names it (a unit test keeps that list empty)."""

from __future__ import annotations

from functools import cache
from typing import Any

from contracts.envelope import ContractViolation, parse_payload
from contracts.events import PAYLOAD_BY_TYPE, SERVICE_RECORD_NAMES
from contracts.examples import example_fields
from services.intake.rules import KIND_BY_NAME, SERVER_SET_FIELDS

# What an advisor records on the workbench (feedback is the residents' and cadres', not theirs).
ADVISOR_KINDS = (
    "consultation",
    "mediation",
    "lecture",
    "legal_aid",
    "visit",
    "document",
    "risk_report",
    "void",
)
# Set from the signed-in advisor, never typed: an advisor records only their own work.
SIGNED_IN_FIELDS = ("advisor_id",)
BOUNDS = ("minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems")

FIELD_LABELS: dict[str, str] = {
    "advisor_id": "法律顾问",
    "village_code": "服务村（社区）代码",
    "occurred_at": "服务时间",
    "channel": "咨询方式",
    "person_times": "咨询人次",
    "topic": "法律问题类别",
    "duration_minutes": "用时（分钟）",
    "summary": "咨询摘要",
    "requester.name": "咨询人姓名",
    "requester.phone": "咨询人电话",
    "dispute_type": "纠纷类型",
    "parties": "当事人数",
    "outcome": "调解结果",
    "major_or_difficult": "重大疑难纠纷",
    "petition_backlog": "信访积案",
    "agreement_signed": "签订调解协议",
    "title": "题目",
    "attendees": "参加人数",
    "evening_or_holiday": "晚间或节假日举办",
    "format": "形式",
    "large_event": "大型法律服务进村活动",
    "case_category": "案件类别",
    "applicants": "申请人数",
    "started_at": "开始时间",
    "ended_at": "结束时间",
    "activities": "服务内容",
    "category": "风险类别",
    "severity": "严重程度",
    "people_involved": "涉及人数",
    "description": "情况说明",
    "reported_to": "上报至",
    "target_event_id": "作废的记录编号",
    "reason": "作废原因",
    "team_id": "服务团队编号（以团队身份服务时填写）",
}
# Where one field name means different things in two kinds.
KIND_FIELD_LABELS: dict[tuple[str, str], str] = {
    ("legal_aid", "kind"): "援助方式",
    ("document", "kind"): "文书类别",
    ("document", "title"): "文书名称",
    ("lecture", "title"): "讲座题目",
}
# Enumerations by the name the JSON Schema gives them ($defs).
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "Channel": {
        "on_site": "现场",
        "phone": "电话",
        "wechat": "微信",
        "online": "网络",
        "hotline_12348": "12348 热线",
    },
    "LegalTopic": {
        "land": "土地",
        "marriage_family": "婚姻家庭",
        "labour": "劳动",
        "contract_debt": "合同债务",
        "neighbour_property": "相邻关系与财产",
        "inheritance": "继承",
        "personal_injury": "人身损害",
        "administrative": "行政",
        "other": "其他",
    },
    "MediationOutcome": {
        "resolved": "调解成功",
        "partially_resolved": "部分调解成功",
        "unresolved": "未调解成功",
        "referred": "移交处理",
    },
    "LectureFormat": {"on_site": "现场", "online": "线上"},
    "LegalAidKind": {
        "referral": "引导申请",
        "application_assisted": "协助申请法律援助",
        "case_represented": "代理案件",
    },
    "VisitActivity": {
        "consultation": "法律咨询",
        "mediation": "调解",
        "lecture": "法治讲座",
        "document_review": "文书审查",
        "village_meeting": "列席村务会议",
        "patrol": "走访",
        "other": "其他",
    },
    "DocumentKind": {
        "village_rules": "村规民约",
        "contract_review": "合同审查",
        "legal_document_drafted": "起草法律文书",
        "legal_opinion": "法律意见",
    },
    "RiskCategory": {
        "mass_incident_risk": "群体性事件风险",
        "large_petition_risk": "大规模上访风险",
        "other": "其他",
    },
    "Severity": {"low": "低", "medium": "中", "high": "高"},
    "ReportedTo": {"township": "乡镇（街道）", "county": "县（区）"},
}
# Defaults the page fills in: the time of the form's opening, the advisor's village.
DEFAULTS: dict[str, str] = {
    "occurred_at": "now",
    "started_at": "an_hour_ago",
    "ended_at": "now",
    "village_code": "my_village",
    "advisor_id": "me",
}


def _resolved(schema: dict[str, Any], definitions: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The field's own schema (a `$ref` followed, `anyOf [X, null]` unwrapped) and its definition's name."""
    alternatives = [alt for alt in schema.get("anyOf", [schema]) if alt.get("type") != "null"]
    found = {**alternatives[0], **{k: v for k, v in schema.items() if k not in ("anyOf", "default")}}
    reference = found.pop("$ref", None)
    if reference is None:
        return found, None
    name = reference.rsplit("/", 1)[-1]
    return {**definitions[name], **found}, name


def _input_type(schema: dict[str, Any], name: str) -> str:
    if "enum" in schema:
        return "choice"
    kind = schema.get("type")
    if kind == "array":
        return "choices"
    if kind == "boolean":
        return "flag"
    if kind == "integer":
        return "integer"
    if schema.get("format") == "date-time":
        return "datetime"
    if schema.get("format") == "uuid":
        return "uuid"
    if name == "village_code":
        return "village"
    return "text" if schema.get("maxLength", 0) > 200 else "string"


def _required_without_it(event_type: str, path: str) -> bool:
    """Whether the contract refuses a valid example without this field (a personal field such as a risk
    report's description is optional in the schema, since it may travel sealed, but required in plain)."""
    fields = example_fields(event_type)
    parent, _, leaf = path.rpartition(".")
    holder = fields[parent] if parent else fields
    holder.pop(leaf, None)
    try:
        parse_payload(event_type, fields, prefix="", producing=True)
    except ContractViolation as violation:
        return any(error.field == path for error in violation.errors)
    return False


def _field(
    kind: str, event_type: str, path: str, schema: dict[str, Any], definitions: dict[str, Any]
) -> dict[str, Any]:
    own, definition = _resolved(schema, definitions)
    item_definition = None
    if own.get("type") == "array":
        items, item_definition = _resolved(own["items"], definitions)
        own = {**own, "enum": items.get("enum", [])}
    entry: dict[str, Any] = {
        "name": path,
        "label": KIND_FIELD_LABELS.get((kind, path)) or FIELD_LABELS.get(path) or path,
        "input": "signed_in"
        if path in SIGNED_IN_FIELDS
        else "choices"
        if item_definition
        else _input_type(own, path),
        "required": _required_without_it(event_type, path),
        "personal": bool(own.get("x-personal") or schema.get("x-personal")),
    }
    entry.update({bound: own[bound] for bound in BOUNDS if bound in own})
    choices = definition or item_definition
    if "enum" in own:
        labels = CHOICE_LABELS.get(choices or "", {})
        entry["choices"] = [{"value": value, "label": labels.get(value, value)} for value in own["enum"]]
        entry["choice_set"] = choices
    if path in DEFAULTS:
        entry["default"] = DEFAULTS[path]
    elif entry["input"] == "flag":
        entry["default"] = False
    return entry


def _fields(kind: str, event_type: str) -> list[dict[str, Any]]:
    schema = PAYLOAD_BY_TYPE[event_type].model_json_schema(mode="validation")
    definitions = schema.get("$defs", {})
    fields: list[dict[str, Any]] = []
    for name, property_schema in schema["properties"].items():
        if name in SERVER_SET_FIELDS:
            continue
        own, _ = _resolved(property_schema, definitions)
        if own.get("type") == "object" and "properties" in own:
            fields.extend(
                _field(
                    kind,
                    event_type,
                    f"{name}.{inner}",
                    {**inner_schema, **_personal(property_schema)},
                    definitions,
                )
                for inner, inner_schema in own["properties"].items()
            )
        else:
            fields.append(_field(kind, event_type, name, property_schema, definitions))
    return fields


def _personal(schema: dict[str, Any]) -> dict[str, Any]:
    return {"x-personal": True} if schema.get("x-personal") else {}


@cache
def form_description() -> dict[str, Any]:
    """Every kind an advisor may send, as the workbench page draws its forms."""
    return {
        "kinds": [
            {
                "kind": kind,
                "event_type": KIND_BY_NAME[kind].event_type,
                "label": SERVICE_RECORD_NAMES[KIND_BY_NAME[kind].event_type],
                "fields": _fields(kind, KIND_BY_NAME[kind].event_type),
                "signed_in_fields": list(SIGNED_IN_FIELDS),
            }
            for kind in ADVISOR_KINDS
        ]
    }


def unlabeled() -> list[str]:
    """`kind.field` (and `kind.field=value` for a choice) shown under its own name: labels are missing."""
    missing = []
    for form in form_description()["kinds"]:
        for field in form["fields"]:
            if field["label"] == field["name"]:
                missing.append(f"{form['kind']}.{field['name']}")
            missing.extend(
                f"{form['kind']}.{field['name']}={choice['value']}"
                for choice in field.get("choices", [])
                if choice["label"] == choice["value"]
            )
    return missing
