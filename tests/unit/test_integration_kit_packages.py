"""The contracts as packages an integrator pins (issue 19): the wheel holds `contracts` alone and imports
on its own; the npm package holds the schemas, the AsyncAPI document and the keywords, and compiles in ajv
strict mode as unpacked. Both are built here, as CI builds them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

from contracts.events import PAYLOAD_TYPES
from contracts.schemas import SCHEMA_DIR
from contracts.version import CONTRACTS_VERSION

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_JS = ROOT / "examples" / "js"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("packages")
    done = subprocess.run(
        [sys.executable, str(ROOT / "contracts" / "packaging" / "build.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    wheel, npm = (Path(line) for line in done.stdout.split())
    return wheel, npm


def test_the_wheel_holds_the_contracts_alone_at_the_schema_version(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    assert wheel.name == f"villagecounsel_contracts-{CONTRACTS_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = f"villagecounsel_contracts-{CONTRACTS_VERSION}.dist-info"
        metadata = HeaderParser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
    assert {name.split("/")[0] for name in names} == {"contracts", dist_info}
    assert not [name for name in names if "packaging" in name or name.endswith(("package.json", ".mjs"))]
    assert {f"contracts/schemas/{cls.event_type}.json" for cls in PAYLOAD_TYPES} <= set(names)
    assert {"contracts/events.py", "contracts/envelope.py", "contracts/asyncapi.yaml"} <= set(names)
    assert metadata["Name"] == "villagecounsel-contracts"
    assert metadata["Version"] == CONTRACTS_VERSION
    requires = metadata.get_all("Requires-Dist") or []
    assert any(line.startswith("pydantic") for line in requires)
    assert not any(line.startswith(("fastapi", "aiokafka", "asyncpg")) for line in requires)


def test_the_wheel_imports_from_itself_and_decodes_a_record(built: tuple[Path, Path], tmp_path: Path) -> None:
    """Unpacked as an installer would (a pure-Python wheel), first on the path: `contracts` comes from the
    wheel, and it has all it needs (its own schemas, no service or plumbing module)."""
    wheel, _ = built
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path)  # noqa: S202 - the wheel built just now
    check = """
import sys, uuid, contracts, contracts.schemas, contracts.envelope as envelope
from contracts.examples import EXAMPLE_TIME, example_fields
assert contracts.__file__.startswith(sys.argv[1]), contracts.__file__
assert all(path.read_text() == text for path, text in contracts.schemas.expected_files().items())
payload = envelope.parse_payload("risk.reported", example_fields("risk.reported"))
sent = envelope.Event(id=uuid.uuid4(), source="/grid", time=EXAMPLE_TIME, data=payload)
record = envelope.to_kafka_record(sent)
event = envelope.from_kafka_record(record.topic, record.key, record.value, record.headers)
loaded = {name for name in sys.modules if name.split(".")[0] in ("services", "plumbing", "devstack")}
assert not loaded, loaded
print(event.type)
"""
    environment = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", check, str(tmp_path)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "risk.reported"


def test_the_npm_package_holds_schemas_asyncapi_and_keywords_and_compiles_in_strict_ajv(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    _, npm = built
    assert npm.name == f"villagecounsel-event-contracts-{CONTRACTS_VERSION}.tgz"
    with tarfile.open(npm) as archive:
        names = set(archive.getnames())
        archive.extractall(tmp_path, filter="data")
    schemas = {f"package/schemas/{path.name}" for path in SCHEMA_DIR.glob("*.json")}
    top = {"package.json", "index.mjs", "asyncapi.yaml", "keywords.json", "README.md"}
    assert names == schemas | {f"package/{name}" for name in top}
    package = tmp_path / "package"
    manifest = json.loads((package / "package.json").read_text(encoding="utf-8"))
    assert manifest["name"] == "@villagecounsel/event-contracts"
    assert manifest["version"] == CONTRACTS_VERSION
    node = shutil.which("node")
    assert node is not None
    compiled = subprocess.run(
        [node, str(EXAMPLES_JS / "check-schemas.mjs"), str(package / "schemas")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(compiled.stdout) == {"compiled": len(PAYLOAD_TYPES), "errors": {}}
    # The package's own entry point: every schema and the keywords, as `import` gives them.
    entry = (
        f"const m = await import({json.dumps((package / 'index.mjs').as_uri())});"
        "console.log(JSON.stringify([Object.keys(m.schemas()).length, Object.keys(m.keywords).sort()]));"
    )
    imported = subprocess.run(
        [node, "--input-type=module", "-e", entry], capture_output=True, text=True, timeout=60, check=False
    )
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == [len(PAYLOAD_TYPES), ["x-personal", "x-topic"]]
