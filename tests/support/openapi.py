"""Each service's OpenAPI document as committed in tests/openapi/<service>.json: the reference that a
reshaping of the code (routes moved into modules, dependencies in plumbing) must leave unchanged, and
that a deliberate change of the API updates: `python -m tests.support.openapi [service ...]`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from services.assessment.app import create_app as assessment
from services.dashboard.app import create_app as dashboard
from services.intake.app import create_app as intake
from services.ledger.app import create_app as ledger

DOCUMENTS = Path(__file__).resolve().parents[1] / "openapi"
FACTORIES: dict[str, Callable[[], FastAPI]] = {
    "intake": intake,
    "ledger": ledger,
    "assessment": assessment,
    "dashboard": dashboard,
}


def rendered(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def committed(service: str) -> str:
    return (DOCUMENTS / f"{service}.json").read_text(encoding="utf-8")


def main(services: list[str]) -> None:
    for service in services or list(FACTORIES):
        (DOCUMENTS / f"{service}.json").write_text(rendered(FACTORIES[service]().openapi()), encoding="utf-8")
        sys.stdout.write(f"wrote tests/openapi/{service}.json\n")


if __name__ == "__main__":
    main(sys.argv[1:])
