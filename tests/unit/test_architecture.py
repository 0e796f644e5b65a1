"""The tree's rules, checked (issue 16): contracts ← plumbing ← services; no service imports another or
calls another's HTTP API; the wheel ships the product (services, contracts, plumbing) only."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from tests.support.openapi import FACTORIES
from tests.support.routes import api_routes

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(path.name for path in (ROOT / "services").iterdir() if (path / "__init__.py").is_file())
# What each part may import of the project (anything else of the project is a violation).
ALLOWED = {
    "contracts": ("contracts",),
    "plumbing": ("contracts", "plumbing"),
    **{f"services.{name}": ("contracts", "plumbing", f"services.{name}") for name in SERVICES},
}
PROJECT = ("contracts", "plumbing", "services", "devstack", "bench", "tests")
HTTP_CLIENTS = ("httpx", "requests", "aiohttp", "urllib.request")


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def part_of(path: Path) -> str:
    relative = path.relative_to(ROOT).parts
    return f"services.{relative[1]}" if relative[0] == "services" else relative[0]


def file_violations(path: Path, allowed: tuple[str, ...]) -> list[str]:
    return [
        f"{path.name} imports {name}"
        for name in imported(path)
        if name.split(".")[0] in PROJECT
        and not any(name == ok or name.startswith(ok + ".") for ok in allowed)
    ]


def violations(parts: dict[str, tuple[str, ...]]) -> list[str]:
    found = []
    for part, allowed in parts.items():
        for path in sorted(ROOT.joinpath(*part.split(".")).rglob("*.py")):
            if "node_modules" not in path.parts:
                found.extend(file_violations(path, allowed))
    return found


def test_contracts_plumbing_and_each_service_import_only_what_is_beneath_them() -> None:
    assert SERVICES == ["assessment", "dashboard", "intake", "ledger"]
    assert violations(ALLOWED) == []


def test_the_check_finds_a_service_importing_another(tmp_path: Path) -> None:
    """The rule can fail: a dashboard module importing the ledger's queries, or devstack, is named."""
    module = tmp_path / "routes.py"
    module.write_text(
        "from services.ledger import queries\nimport devstack.stack\nfrom plumbing import http\n"
    )
    assert file_violations(module, ALLOWED["services.dashboard"]) == [
        "routes.py imports services.ledger",
        "routes.py imports devstack.stack",
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_calls_another_over_http(service: str) -> None:
    """Services share only events: no HTTP client in a service (plumbing's token-key fetch is the identity
    provider's JWKS, not a service)."""
    clients = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "services" / service).rglob("*.py"))
        if "node_modules" not in path.parts
        for name in imported(path)
        if name.split(".")[0] in {client.split(".")[0] for client in HTTP_CLIENTS}
        and name.startswith(HTTP_CLIENTS)
    ]
    assert clients == []


def test_the_wheel_ships_the_services_contracts_and_plumbing_only() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = find_packages(
        str(ROOT),
        include=config["packages"]["find"]["include"],
        exclude=config["packages"]["find"]["exclude"],
    )
    assert {name.split(".")[0] for name in found} == {"contracts", "plumbing", "services"}
    assert "services.ledger" in found
    assert "services.assessment.routes" in found


def test_every_route_lives_in_a_routes_module_of_its_service() -> None:
    """A newcomer finds a route by its path in `services/<name>/routes.py` or `routes/<area>.py`; the
    operations endpoints (/healthz, /readyz, /metrics) come from plumbing; `create_app` defines none."""
    misplaced = []
    for service, factory in FACTORIES.items():
        routes = api_routes(factory())
        assert len(routes) > 5, service
        for route in routes:
            module = route.endpoint.__module__
            in_routes = module == f"services.{service}.routes" or module.startswith(
                f"services.{service}.routes."
            )
            if not (in_routes or module.startswith("plumbing.")):
                misplaced.append(f"{service} {route.path} in {module}")
    assert misplaced == []
