"""The OpenAPI document: request bodies are the contracts' JSON Schemas, with an example for every kind."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from contracts.events import PAYLOAD_BY_TYPE
from contracts.examples import example_fields
from services.intake.rules import KIND_BY_NAME, KINDS, SERVER_SET_FIELDS, RecordKind
from services.intake.sealing import ErasureRequest

EXAMPLE_ID = "0b6c3e9e-8d1f-4c35-9a51-1f1f0e0c2a10"

DESCRIPTION = """
Advisors (through mobile or web clients), township justice offices and other provincial systems record
what village legal advisors did. Each record is validated against the event contracts and published to
Kafka; **202 means Kafka has stored it**.

* **Ids.** The client chooses the record's `id` (a UUID) when the fact is first recorded and sends the
  same id on every retry; consumers apply each id once. Reusing an id for different content is a
  conflict: the first one wins.
* **Server-set fields.** `recorded_by` (the caller), `recorded_by_role`, `recorded_at` (now) and
  `sealed_personal` (intake seals the personal fields you send) are set by the server; a record that
  carries them is refused.
* **Personal data** (names, phones, free text) is sealed before it is published; `POST /v1/erasures`
  (county bureau and up) erases a record's personal data for good.
* **Times** without an offset are read as Asia/Shanghai. `occurred_at` may not lie in the future
  (beyond a few minutes of clock skew) nor be older than 400 days.
* **Errors** always have the shape `{"error": {"status", "code", "message", "request_id", "fields":
  [{"field", "rule", "message", "value"}]}}`.
* **503** (Kafka unreachable or slow) and **429** (overloaded) carry `Retry-After`: send the same
  records again, with the same ids, after that many seconds. A 503 means the record **may not have
  been stored** (Kafka may have stored it without confirming in time); retry with the same id, which
  is applied once however often it arrives.
* **Auth.** `Authorization: Bearer <JWT>` with claims `sub`, `role` (advisor, township_office,
  county_bureau, prefecture_bureau, province_department, integration), `region` (division code),
  `iss`, `aud`, `exp`. Advisors record only their own work; other roles only within their region;
  registry and policy records need a county bureau or above.
"""


def _request_schema(kind: RecordKind, components: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(
        PAYLOAD_BY_TYPE[kind.event_type].model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    for name in SERVER_SET_FIELDS:
        schema["properties"].pop(name, None)
    schema["required"] = [
        "id",
        *[name for name in schema.get("required", []) if name not in SERVER_SET_FIELDS],
    ]
    schema["properties"] = {
        "id": {
            "type": "string",
            "format": "uuid",
            "description": "chosen by the client when the fact was first recorded; the same on every retry",
        },
        **schema["properties"],
    }
    schema["title"] = f"{kind.name} record"
    return schema


def _example(kind: RecordKind) -> dict[str, Any]:
    fields = {name: value for name, value in example_fields(kind.event_type).items() if name != "recorded_by"}
    return {"id": EXAMPLE_ID, **fields}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string", "examples": ["validation_failed"]},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "rule", "message"],
                        "properties": {
                            "field": {"type": "string", "examples": ["person_times"]},
                            "rule": {"type": "string", "examples": ["greater_than_equal"]},
                            "message": {"type": "string"},
                            "value": {"description": "the offending value"},
                        },
                    },
                },
            },
        }
    },
}
ACCEPTED_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["accepted"]},
        "topic": {"type": "string"},
        "partition": {"type": "integer"},
        "offset": {"type": "integer"},
        "recorded_at": {"type": "string", "format": "date-time"},
    },
}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before sending again", "schema": {"type": "integer"}}
}


def _responses(accepted: dict[str, Any]) -> dict[str, Any]:
    return {
        **accepted,
        "401": _error_response("No valid bearer token"),
        "403": _error_response("Not the caller's to write (advisor or region boundary, role)"),
        "413": _error_response("Body or batch too large"),
        "415": _error_response("The body is not declared `Content-Type: application/json`"),
        "422": _error_response("The record does not fit the contract; `fields` names each field and rule"),
        "429": {**_error_response("Overloaded; retry after Retry-After seconds"), "headers": RETRY_AFTER},
        "503": {
            **_error_response(
                "Kafka did not confirm it in time: it may not have been stored; retry with the same id"
            ),
            "headers": RETRY_AFTER,
        },
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=DESCRIPTION, routes=app.routes
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    components["Accepted"] = ACCEPTED_SCHEMA
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    erasure = ErasureRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in erasure.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components["ErasureRequest"] = erasure
    for path, operations in document["paths"].items():
        operation = operations.get("post")
        if operation is None or "x-record-kind" not in operation:
            continue
        operation["security"] = [{"bearer": []}]
        kind_name = operation.pop("x-record-kind")
        if kind_name == "batch":
            operation["requestBody"] = _batch_request(components)
            operation["responses"] = _responses(
                {
                    "200": {
                        "description": "Each record accepted (stored by Kafka) or rejected, with why",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/BatchResult"}}
                        },
                    }
                }
            )
            continue
        kind = KIND_BY_NAME[kind_name]
        schema_name = f"{''.join(part.capitalize() for part in kind.name.split('_'))}Record"
        components[schema_name] = _request_schema(kind, components)
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{schema_name}"},
                    "examples": {kind.name: {"summary": kind.summary, "value": _example(kind)}},
                }
            },
        }
        operation["description"] = (
            f"Published as `{kind.event_type}` on the `{PAYLOAD_BY_TYPE[kind.event_type].kafka_topic}` topic."
        )
        operation["responses"] = _responses(
            {
                "202": {
                    "description": "Stored by Kafka",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
                }
            }
        )
        del path
    return document


def _batch_request(components: dict[str, Any]) -> dict[str, Any]:
    components["BatchRecord"] = {
        "type": "object",
        "required": ["kind", "record"],
        "properties": {
            "kind": {"type": "string", "enum": [kind.name for kind in KINDS]},
            "record": {"type": "object", "description": "the record, as for the kind's own endpoint"},
        },
    }
    components["BatchResult"] = {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer"},
            "rejected": {"type": "integer"},
            "unavailable": {"type": "integer"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "id": {"type": "string"},
                        "kind": {"type": "string"},
                        "status": {"type": "string", "enum": ["accepted", "rejected", "unavailable"]},
                        "error": {"$ref": "#/components/schemas/Error/properties/error"},
                    },
                },
            },
        },
    }
    example = [
        {"kind": "visit", "record": _example(KIND_BY_NAME["visit"])},
        {
            "kind": "consultation",
            "record": {
                **_example(KIND_BY_NAME["consultation"]),
                "id": "5d1b3a55-2c0e-4bd5-b6a4-4b7a3c1f9e21",
            },
        },
    ]
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["records"],
                    "properties": {
                        "records": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1000,
                            "items": {"$ref": "#/components/schemas/BatchRecord"},
                        }
                    },
                },
                "examples": {
                    "offline_sync": {"summary": "A visit and a consultation", "value": {"records": example}}
                },
            }
        },
    }


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
