"""Generated contract files are current, and no change breaks a v1 reader (BACKWARD compatibility)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from contracts.compatibility import check_backward
from contracts.events import PAYLOAD_BY_TYPE
from contracts.schemas import ASYNCAPI_PATH, SNAPSHOT_DIR, all_event_schemas, expected_files

Schema = dict[str, Any]


def test_committed_json_schemas_and_asyncapi_are_not_stale() -> None:
    stale = [
        str(path.name)
        for path, text in expected_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert stale == [], f"regenerate with `python -m contracts.schemas`: {stale}"


def test_asyncapi_names_every_topic_and_event() -> None:
    document = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {"village-services", "registry", "assessment", "village-services.dlq"} <= addresses
    names = {message["name"] for message in document["components"]["messages"].values()}
    assert set(PAYLOAD_BY_TYPE) <= names
    lecture = next(m for m in document["components"]["messages"].values() if m["name"] == "lecture.held")
    assert lecture["headers"]["properties"]["ce_type"]["const"] == "lecture.held"
    assert lecture["payload"]["schema"]["$ref"] == "./schemas/lecture.held.json"


def snapshot(event_type: str) -> Schema:
    loaded: Schema = json.loads((SNAPSHOT_DIR / f"{event_type}.json").read_text(encoding="utf-8"))
    return loaded


def test_every_event_type_has_a_v1_snapshot() -> None:
    assert {path.stem for path in SNAPSHOT_DIR.glob("*.json")} == set(PAYLOAD_BY_TYPE)


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_BY_TYPE))
def test_current_schemas_are_backward_compatible_with_v1(event_type: str) -> None:
    problems = check_backward(snapshot(event_type), all_event_schemas()[event_type])
    assert problems == [], "\n".join(map(str, problems))


def remove_field(schema: Schema) -> None:
    del schema["properties"]["attendees"]


def add_required_field(schema: Schema) -> None:
    schema["properties"]["venue"] = {"type": "string"}
    schema["required"].append("venue")


def make_optional_field_required(schema: Schema) -> None:
    schema["required"].append("duration_minutes")


def narrow_enum(schema: Schema) -> None:
    schema["$defs"]["LectureFormat"]["enum"] = ["on_site"]


def narrow_type(schema: Schema) -> None:
    schema["properties"]["attendees"]["type"] = "string"


def raise_minimum(schema: Schema) -> None:
    schema["properties"]["attendees"]["minimum"] = 10


def shorten_max_length(schema: Schema) -> None:
    schema["properties"]["title"]["maxLength"] = 20


def drop_null_from_optional(schema: Schema) -> None:
    schema["properties"]["duration_minutes"] = {"type": "integer", "minimum": 0, "maximum": 1440}


def change_pattern(schema: Schema) -> None:
    schema["properties"]["village_code"]["pattern"] = "^37\\d{10}$"


BREAKS: list[tuple[Callable[[Schema], None], str]] = [
    (remove_field, "field_removed"),
    (add_required_field, "new_required_field"),
    (make_optional_field_required, "new_required_field"),
    (narrow_enum, "enum_narrowed"),
    (narrow_type, "type_narrowed"),
    (raise_minimum, "minimum_raised"),
    (shorten_max_length, "maxLength_lowered"),
    (drop_null_from_optional, "type_narrowed"),
    (change_pattern, "pattern_changed"),
]


@pytest.mark.parametrize(("break_it", "rule"), BREAKS, ids=[b.__name__ for b, _ in BREAKS])
def test_the_check_bites_on_a_deliberately_broken_copy(break_it: Callable[[Schema], None], rule: str) -> None:
    old = snapshot("lecture.held")
    broken = copy.deepcopy(old)
    break_it(broken)
    problems = check_backward(old, broken)
    assert rule in {problem.rule for problem in problems}, [str(p) for p in problems]


def widen_enum(schema: Schema) -> None:
    schema["$defs"]["LectureFormat"]["enum"].append("hybrid")


def add_optional_field(schema: Schema) -> None:
    schema["properties"]["venue"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}


def raise_maximum(schema: Schema) -> None:
    schema["properties"]["attendees"]["maximum"] = 10_000_000


@pytest.mark.parametrize("widen", [widen_enum, add_optional_field, raise_maximum])
def test_widening_changes_are_allowed(widen: Callable[[Schema], None]) -> None:
    old = snapshot("lecture.held")
    wider = copy.deepcopy(old)
    widen(wider)
    assert check_backward(old, wider) == []
