"""BACKWARD compatibility of JSON Schemas, as a schema registry in BACKWARD mode judges it.

The new schema must accept everything the old one accepted: data written by a v1 producer stays
readable. So no property may disappear (payloads forbid unknown fields), no property may become
required, and no type, enum, bound or pattern may narrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_MUST_NOT_CHANGE = ("pattern", "format", "const", "multipleOf")


def ecma_pattern(pattern: Any) -> Any:
    """A pattern as JSON Schema reads it (ECMA-262, where `\\d` is exactly [0-9]), so that spelling `\\d`
    as [0-9] is no change. Python's `re` reads `\\d` as any script's digit; the v1 models never accepted
    those (`ascii_digits`), so writing [0-9] narrows nothing a v1 producer could have written."""
    if not isinstance(pattern, str):
        return pattern
    return pattern.replace("\\d", "[0-9]")


@dataclass(frozen=True)
class Incompatibility:
    path: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path or '(root)'}: {self.rule}: {self.detail}"


def _resolve(schema: Schema, root: Schema) -> Schema:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        extra = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**target, **extra}
    return schema


def _alternatives(schema: Schema, root: Schema) -> list[Schema]:
    schema = _resolve(schema, root)
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            found: list[Schema] = []
            for alt in schema[keyword]:
                found.extend(_alternatives(alt, root))
            return found
    return [schema]


def _types(schema: Schema) -> set[str]:
    declared = schema.get("type")
    if declared is None:
        return {"any"}
    types = {declared} if isinstance(declared, str) else set(declared)
    if "integer" in types:
        types.add("integer")
    return types


def _accepts_types(old: Schema, new: Schema) -> bool:
    new_types = _types(new)
    if "any" in new_types:
        return True
    old_types = _types(old)
    if "any" in old_types:
        return False
    if "number" in new_types:
        new_types = new_types | {"integer"}
    return old_types <= new_types


def _check_one(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str
) -> list[Incompatibility]:
    problems: list[Incompatibility] = []
    if not _accepts_types(old, new):
        problems.append(
            Incompatibility(path, "type_narrowed", f"{sorted(_types(old))} -> {sorted(_types(new))}")
        )
        return problems
    if "enum" in new:
        old_values = old.get("enum")
        if old_values is None and "const" in old:
            old_values = [old["const"]]
        if old_values is None:
            problems.append(Incompatibility(path, "enum_narrowed", "an unrestricted value became an enum"))
        else:
            missing = [value for value in old_values if value not in new["enum"]]
            if missing:
                problems.append(
                    Incompatibility(path, "enum_narrowed", f"values no longer accepted: {missing}")
                )
    for keyword in _MUST_NOT_CHANGE:
        if (
            keyword == "pattern"
            and "pattern" in new
            and ecma_pattern(new["pattern"]) == ecma_pattern(old.get("pattern"))
        ):
            continue
        if keyword in new and new.get(keyword) != old.get(keyword):
            problems.append(
                Incompatibility(path, f"{keyword}_changed", f"{old.get(keyword)!r} -> {new.get(keyword)!r}")
            )
    for keyword in _LOWER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] > old[keyword]):
            problems.append(
                Incompatibility(path, f"{keyword}_raised", f"{old.get(keyword)} -> {new[keyword]}")
            )
    for keyword in _UPPER_BOUNDS:
        if keyword in new and (keyword not in old or new[keyword] < old[keyword]):
            problems.append(
                Incompatibility(path, f"{keyword}_lowered", f"{old.get(keyword)} -> {new[keyword]}")
            )
    if "object" in _types(old) or "properties" in old:
        problems.extend(_check_object(old, new, old_root, new_root, path))
    if "items" in old or "items" in new:
        problems.extend(
            check_schema(old.get("items", {}), new.get("items", {}), old_root, new_root, f"{path}[]")
        )
    return problems


def _check_object(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str
) -> list[Incompatibility]:
    problems: list[Incompatibility] = []
    old_props: dict[str, Schema] = old.get("properties", {})
    new_props: dict[str, Schema] = new.get("properties", {})
    new_additional = new.get("additionalProperties", True)
    for name, old_prop in old_props.items():
        where = f"{path}.{name}" if path else name
        if name in new_props:
            problems.extend(check_schema(old_prop, new_props[name], old_root, new_root, where))
        elif new_additional is False:
            problems.append(Incompatibility(where, "field_removed", "old data carrying it would be refused"))
    for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
        where = f"{path}.{name}" if path else name
        problems.append(Incompatibility(where, "new_required_field", "old data lacks it"))
    old_additional = old.get("additionalProperties", True)
    if new_additional is False and old_additional is not False:
        problems.append(Incompatibility(path, "additional_properties_closed", "unknown fields were allowed"))
    elif isinstance(old_additional, dict) and isinstance(new_additional, dict):
        problems.extend(check_schema(old_additional, new_additional, old_root, new_root, f"{path}.*"))
    return problems


def check_schema(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str = ""
) -> list[Incompatibility]:
    """Every incompatibility of `new` against `old` (empty when new reads all that old accepted)."""
    new_alternatives = _alternatives(new, new_root)
    problems: list[Incompatibility] = []
    for old_alt in _alternatives(old, old_root):
        best: list[Incompatibility] | None = None
        for new_alt in new_alternatives:
            found = _check_one(old_alt, new_alt, old_root, new_root, path)
            if best is None or len(found) < len(best):
                best = found
            if not found:
                break
        problems.extend(best or [])
    return problems


def check_backward(old: Schema, new: Schema) -> list[Incompatibility]:
    return check_schema(old, new, old, new)
