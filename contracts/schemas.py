"""JSON Schema per event type and the AsyncAPI 3.0 document, both generated from the models.

`python -m contracts.schemas` rewrites `contracts/schemas/*.json` and `contracts/asyncapi.yaml`;
a test fails when the committed files are stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from contracts.envelope import (
    CONTENT_TYPE,
    H_CONTENT_TYPE,
    H_DATASCHEMA,
    H_ID,
    H_RECORDEDAT,
    H_SOURCE,
    H_SPECVERSION,
    H_SUBJECT,
    H_TIME,
    H_TYPE,
    SPEC_VERSION,
    ce_time_meaning,
    dataschema_uri,
)
from contracts.events import PAYLOAD_TYPES, EventPayload
from contracts.examples import EXAMPLE_TIME, example_fields
from contracts.topics import DLQ_SUFFIX, TOPICS
from contracts.version import CONTRACTS_VERSION

CONTRACTS_DIR = Path(__file__).resolve().parent
SCHEMA_DIR = CONTRACTS_DIR / "schemas"
ASYNCAPI_PATH = CONTRACTS_DIR / "asyncapi.yaml"
KEYWORDS_PATH = CONTRACTS_DIR / "keywords.json"

# The project's own schema keywords (legal in 2020-12: unknown keywords are annotations). Validators in a
# strict mode (ajv's default) refuse a schema with an unknown keyword: register these, e.g. in ajv
# `ajv.addKeyword({keyword: "x-topic", schemaType: "string"})`. `keywords.json` carries this table.
CUSTOM_KEYWORDS: dict[str, dict[str, str]] = {
    "x-topic": {
        "schemaType": "string",
        "description": "at a schema's root: the Kafka topic records of this event type travel on",
    },
    "x-personal": {
        "schemaType": "boolean",
        "description": "on a property: residents' personal data or free text; keep it out of logs, metrics "
        "and statistics",
    },
}
SNAPSHOT_DIR = CONTRACTS_DIR / "snapshots" / "v1"


def event_schema(payload_type: type[EventPayload]) -> dict[str, Any]:
    schema = payload_type.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = dataschema_uri(payload_type.event_type)
    schema["title"] = payload_type.event_type
    schema["x-topic"] = payload_type.kafka_topic
    return schema


def all_event_schemas() -> dict[str, dict[str, Any]]:
    return {cls.event_type: event_schema(cls) for cls in PAYLOAD_TYPES}


def _message_name(event_type: str) -> str:
    head, tail = event_type.split(".")
    parts = (head + "_" + tail).split("_")
    return parts[0] + "".join(part.capitalize() for part in parts[1:])


def _channel_name(topic: str) -> str:
    parts = topic.replace(DLQ_SUFFIX, "_dlq").replace("-", "_").split("_")
    return parts[0] + "".join(part.capitalize() for part in parts[1:])


# Payloads are JSON Schema 2020-12 documents, not AsyncAPI's own schema format (its default).
PAYLOAD_SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
# The payload fields a record key is taken from (`record_key()`), in the order they are tried.
KEY_FIELDS = ("village_code", "advisor_id", "team_id", "code", "region_code", "county_code")


def key_field(payload_type: type[EventPayload]) -> str:
    """The payload field whose value is the record key (and `ce_subject`), found from the example."""
    example = payload_type.model_validate(example_fields(payload_type.event_type))
    for name in KEY_FIELDS:
        if getattr(example, name, None) == example.record_key():
            return name
    raise ValueError(f"{payload_type.event_type}: no payload field holds the record key")


def key_schema(payload_type: type[EventPayload]) -> dict[str, Any]:
    """The Kafka record key of this message type, for the Kafka message binding's `key`."""
    name = key_field(payload_type)
    field_schema = event_schema(payload_type)["properties"][name]
    for alternative in field_schema.get("anyOf", [field_schema]):
        if alternative.get("type") == "string":
            field_schema = alternative
    key = {"type": "string", "description": f"the record key: the payload's {name} (UTF-8)"}
    if "pattern" in field_schema:
        key["pattern"] = field_schema["pattern"]
    return key


def _headers_schema(payload_type: type[EventPayload] | None) -> dict[str, Any]:
    event_type = payload_type.event_type if payload_type is not None else None
    type_schema: dict[str, Any] = {"type": "string", "description": "the event type"}
    if event_type is not None:
        type_schema["const"] = event_type
    time_meaning = ce_time_meaning(payload_type) if payload_type is not None else "see the catalogue"
    return {
        "type": "object",
        "required": [H_SPECVERSION, H_ID, H_SOURCE, H_TYPE, H_TIME, H_SUBJECT, H_DATASCHEMA, H_CONTENT_TYPE],
        "properties": {
            H_SPECVERSION: {"type": "string", "const": SPEC_VERSION},
            H_ID: {
                "type": "string",
                "format": "uuid",
                "description": "chosen by the client that first recorded the fact; a retry keeps it",
            },
            H_SOURCE: {"type": "string", "description": "the producing system, e.g. /villagecounsel/intake"},
            H_TYPE: type_schema,
            H_TIME: {"type": "string", "format": "date-time", "description": time_meaning},
            H_SUBJECT: {"type": "string", "description": "the record key (village code for village records)"},
            H_DATASCHEMA: {
                "type": "string",
                "description": "schema version of the payload",
                **({"const": dataschema_uri(event_type)} if event_type else {}),
            },
            H_RECORDEDAT: {
                "type": "string",
                "format": "date-time",
                "description": "when intake accepted the record",
            },
            H_CONTENT_TYPE: {"type": "string", "const": CONTENT_TYPE},
        },
    }


def asyncapi_document() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for payload_type in PAYLOAD_TYPES:
        name = _message_name(payload_type.event_type)
        messages[name] = {
            "name": payload_type.event_type,
            "title": payload_type.event_type,
            "summary": (payload_type.__doc__ or payload_type.event_type).strip().splitlines()[0],
            "contentType": CONTENT_TYPE,
            "headers": _headers_schema(payload_type),
            "payload": {
                "schemaFormat": PAYLOAD_SCHEMA_FORMAT,
                "schema": {"$ref": f"./schemas/{payload_type.event_type}.json"},
            },
            "bindings": {"kafka": {"key": key_schema(payload_type), "bindingVersion": "0.5.0"}},
            "examples": [
                {
                    "name": "example",
                    "headers": {
                        H_SPECVERSION: SPEC_VERSION,
                        H_ID: "0b6c3e9e-8d1f-4c35-9a51-1f1f0e0c2a10",
                        H_SOURCE: "/villagecounsel/intake",
                        H_TYPE: payload_type.event_type,
                        H_TIME: EXAMPLE_TIME.isoformat(),
                        H_SUBJECT: payload_type.model_validate(
                            example_fields(payload_type.event_type)
                        ).record_key(),
                        H_DATASCHEMA: dataschema_uri(payload_type.event_type),
                        H_CONTENT_TYPE: CONTENT_TYPE,
                    },
                    "payload": example_fields(payload_type.event_type),
                }
            ],
        }
    for spec in TOPICS:
        channel = _channel_name(spec.name)
        is_dlq = spec.name.endswith(DLQ_SUFFIX)
        source_topic = spec.name.removesuffix(DLQ_SUFFIX)
        refs = [
            {"$ref": f"#/components/messages/{_message_name(cls.event_type)}"}
            for cls in PAYLOAD_TYPES
            if cls.kafka_topic == source_topic
        ]
        if is_dlq:
            dead_letter = (
                f"deadLetter{_channel_name(source_topic)[0].upper()}{_channel_name(source_topic)[1:]}"
            )
            messages[dead_letter] = {
                "name": f"{source_topic}.dead_letter",
                "summary": "A record a consumer could not decode or apply, as it was, plus dlq_* headers.",
                "headers": {
                    "type": "object",
                    "required": ["dlq_reason", "dlq_topic", "dlq_partition", "dlq_offset", "dlq_consumer"],
                    "properties": {
                        "dlq_reason": {"type": "string"},
                        "dlq_topic": {"type": "string"},
                        "dlq_partition": {"type": "string"},
                        "dlq_offset": {"type": "string"},
                        "dlq_consumer": {"type": "string"},
                    },
                },
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": "the original record's key"},
                        "bindingVersion": "0.5.0",
                    }
                },
            }
            refs = [{"$ref": f"#/components/messages/{dead_letter}"}]
        channels[channel] = {
            "address": spec.name,
            "description": f"{spec.description} Key: {spec.key}.",
            "messages": {ref["$ref"].rsplit("/", 1)[1]: ref for ref in refs},
            "bindings": {
                "kafka": {
                    "topic": spec.name,
                    "partitions": spec.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": [spec.configs["cleanup.policy"]],
                        "retention.ms": int(spec.configs["retention.ms"]),
                        "retention.bytes": int(spec.configs["retention.bytes"]),
                    },
                    "bindingVersion": "0.5.0",
                }
            },
        }
        channel_messages = [
            {"$ref": f"#/channels/{channel}/messages/{key}"} for key in channels[channel]["messages"]
        ]
        operations[f"publish{channel[0].upper()}{channel[1:]}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": channel_messages,
        }
        operations[f"consume{channel[0].upper()}{channel[1:]}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": channel_messages,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "villagecounsel events",
            "version": CONTRACTS_VERSION,
            "description": (
                "一村(社区)一法律顾问: the events other provincial systems produce and consume. "
                "CloudEvents 1.0 "
                "in Kafka binary content mode: attributes in ce_* headers, the JSON payload as the record "
                "value. A retry of the same fact keeps its ce_id, so consumers drop duplicates."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "127.0.0.1:29092",
                "protocol": "kafka",
                "description": "the devstack broker (python -m devstack up)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render_schema(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def render_asyncapi() -> str:
    return str(yaml.safe_dump(asyncapi_document(), allow_unicode=True, sort_keys=False, width=110))


def expected_files() -> dict[Path, str]:
    files = {
        SCHEMA_DIR / f"{name}.json": render_schema(schema) for name, schema in all_event_schemas().items()
    }
    files[ASYNCAPI_PATH] = render_asyncapi()
    files[KEYWORDS_PATH] = render_schema(CUSTOM_KEYWORDS)
    return files


def write_all() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for path, text in expected_files().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(f"wrote {path.relative_to(CONTRACTS_DIR.parent)}")  # noqa: T201
