"""One logging setup: one JSON object per line, with personal fields refused at the last step."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

# Payload fields that hold residents' personal data or free text; a log line never carries them, even
# when a caller passes one by mistake.
PERSONAL_KEYS = frozenset({"requester", "phone", "name", "summary", "description", "comment", "reason"})
REDACTED = "[redacted]"


def redact_personal(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in PERSONAL_KEYS & event_dict.keys():
        event_dict[key] = REDACTED
    return event_dict


class _StdoutLogger:
    """Writes each rendered line to the current sys.stdout (so a test's capture sees it too)."""

    def msg(self, message: str) -> None:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stdout_logger(*_args: Any) -> _StdoutLogger:
    return _StdoutLogger()


def _add_service(service: str) -> structlog.types.Processor:
    def add(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def configure_logging(service: str, level: str = "INFO") -> None:
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_service(service),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_personal,
            structlog.processors.JSONRenderer(
                serializer=lambda obj, **_: orjson.dumps(obj, default=str).decode()
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=_stdout_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
