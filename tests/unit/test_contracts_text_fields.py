"""The control-character rule is checked on the fields named in `contracts.events.TEXT_FIELDS` (issue 17:
once per field of every model, it was most of the rule's cost). These tests walk every contract model's
schema, so that a field of free text added later without its name there fails here, and show that every
field holding text, named or held to a pattern, still refuses a control character."""

from __future__ import annotations

import importlib
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError
from typing_extensions import TypedDict

from contracts.envelope import ContractViolation, parse_payload
from contracts.events import PAYLOAD_BY_TYPE, TEXT_FIELDS, ContractModel
from tests.support.samples import sample_fields

CONTROL = "\x00"
# The assessment's requests are contract models too (the package's `grades` is its router).
grades = importlib.import_module("services.assessment.routes.grades")


def models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []

    def visit(cls: type[BaseModel]) -> None:
        for sub in cls.__subclasses__():
            if sub not in found:
                found.append(sub)
                visit(sub)

    visit(ContractModel)
    return found


def text_kinds(schema: dict[str, Any], definitions: dict[str, Any], seen: tuple[str, ...] = ()) -> set[str]:
    """What text a field's schema can hold: "free" (a string with no pattern, or anything at all), "pattern"
    (a string held to a pattern). A nested contract model is walked as a model of its own; anything else
    (a plain model, a typed dict, a tagged union's choices, a list, a dict's keys and values) is walked
    into, whatever the schema's type, so that no kind of schema hides a string."""
    kind = schema.get("type")
    if kind == "str":
        return {"pattern" if schema.get("pattern") else "free"}
    if kind == "any":
        return {"free"}
    if kind == "model" and issubclass(schema["cls"], ContractModel):
        return set()
    if kind == "definition-ref":
        ref = schema["schema_ref"]
        return set() if ref in seen else text_kinds(definitions[ref], definitions, (*seen, ref))
    return inner_kinds(schema, definitions, seen)


def inner_kinds(
    value: dict[str, Any] | list[Any] | tuple[Any, ...], definitions: dict[str, Any], seen: tuple[str, ...]
) -> set[str]:
    found: set[str] = set()
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if key in ("serialization", "metadata", "ref"):
            continue
        if isinstance(item, dict):
            found |= (
                text_kinds(item, definitions, seen)
                if "type" in item
                else inner_kinds(item, definitions, seen)
            )
        elif isinstance(item, list | tuple):
            found |= inner_kinds(item, definitions, seen)
    return found


def field_kinds(model: type[BaseModel]) -> dict[str, set[str]]:
    schema: dict[str, Any] = dict(model.__pydantic_core_schema__)
    definitions: dict[str, Any] = {}
    if schema["type"] == "definitions":
        definitions = {item["ref"]: item for item in schema["definitions"]}
        schema = schema["schema"]
    while schema["type"] != "model":
        schema = schema["schema"]
    fields = schema["schema"]["fields"]
    return {name: text_kinds(field["schema"], definitions) for name, field in fields.items()}


def test_the_walk_sees_every_model_and_knows_text_from_the_rest() -> None:
    """The walk itself: it finds the nested models and the service's requests, and tells a summary (free
    text), a village code (a pattern) and a time (no text) apart; so the test below can fail."""
    names = {model.__name__ for model in models()}
    assert {"ConsultationRecorded", "ConsultationRequester", "SealedPersonal", "AdjustmentRequest"} <= names
    assert grades.AdjustmentRequest in models()
    consultation = field_kinds(PAYLOAD_BY_TYPE["consultation.recorded"])
    assert consultation["summary"] == {"free"}
    assert consultation["village_code"] == {"pattern"}
    assert consultation["occurred_at"] == set()
    assert consultation["requester"] == set()  # a nested model: walked as a model of its own


class Note(TypedDict):
    note: str


class Plain(BaseModel):
    text: str


class Asked(BaseModel):
    kind: Literal["asked"]
    question: str


class Counted(BaseModel):
    kind: Literal["counted"]
    count: int


class Probe(BaseModel):
    """Plain models (not contract models: the walk of every contract model must not see them)."""

    typed: Note
    plain: Plain
    tagged: Annotated[Asked | Counted, Field(discriminator="kind")]
    keyed: dict[str, int]
    code: Annotated[str, Field(pattern="^[0-9]+$")]
    count: int


def test_the_walk_finds_text_inside_typed_dicts_plain_models_tagged_unions_and_keys() -> None:
    """Found in review: a walk that followed only schemas it knew reported no text for a typed dict's,
    a plain nested model's or a tagged union's fields, and such a field would then take a control
    character unnoticed."""
    assert field_kinds(Probe) == {
        "typed": {"free"},
        "plain": {"free"},
        "tagged": {"free"},
        "keyed": {"free"},
        "code": {"pattern"},
        "count": set(),
    }


def test_every_field_of_free_text_in_every_model_is_named_for_the_rule() -> None:
    unnamed = {
        f"{model.__name__}.{name}"
        for model in models()
        for name, kinds in field_kinds(model).items()
        if "free" in kinds and name not in TEXT_FIELDS
    }
    assert unnamed == set()


def test_every_name_for_the_rule_is_a_field_of_free_text_somewhere() -> None:
    free = {name for model in models() for name, kinds in field_kinds(model).items() if "free" in kinds}
    assert set(TEXT_FIELDS) - free == set()


def text_cases() -> list[tuple[str, str, str]]:
    """(event type, field, kind) for every top-level field of every payload that holds text."""
    return [
        (event_type, name, "free" if "free" in kinds else "pattern")
        for event_type, payload_type in sorted(PAYLOAD_BY_TYPE.items())
        for name, kinds in field_kinds(payload_type).items()
        if kinds
    ]


@pytest.mark.parametrize(("event_type", "field", "kind"), text_cases())
def test_every_field_holding_text_refuses_a_control_character(event_type: str, field: str, kind: str) -> None:
    fields = sample_fields(event_type)
    valid = fields.get(field)
    if isinstance(valid, list):
        bad: Any = [f"{valid[0] if valid else 'a'}{CONTROL}"]
    elif isinstance(valid, str):
        bad = valid[: len(valid) // 2] + CONTROL + valid[len(valid) // 2 :]
    else:
        bad = f"a{CONTROL}b"
    with pytest.raises(ContractViolation) as refused:
        parse_payload(event_type, {**fields, field: bad})
    rules = {error.rule for error in refused.value.errors if error.field.startswith(f"data.{field}")}
    expected = {"no_control_characters"} if kind == "free" else {"string_pattern_mismatch"}
    assert rules & expected, (field, rules)


def test_a_nested_name_and_a_service_request_refuse_a_control_character() -> None:
    with pytest.raises(ContractViolation) as refused:
        parse_payload(
            "consultation.recorded",
            {**sample_fields("consultation.recorded"), "requester": {"name": f"李{CONTROL}四"}},
        )
    assert ("data.requester.name", "no_control_characters") in {
        (error.field, error.rule) for error in refused.value.errors
    }
    with pytest.raises(ValidationError) as request_refused:
        grades.AdjustmentRequest.model_validate(
            {"advisor_id": "a1", "village_code": "370402001013", "grade": "good", "reason": f"x{CONTROL}"}
        )
    assert [(error["loc"], error["type"]) for error in request_refused.value.errors()] == [
        (("reason",), "no_control_characters")
    ]
