"""Build the contracts as packages an integrator pins: the wheel `villagecounsel-contracts` (the Python
models, envelope and topics, no service code) and the npm package `@villagecounsel/event-contracts` (the
JSON Schemas, the AsyncAPI document and the project's schema keywords).

    python contracts/packaging/build.py OUT_DIR

Both are built from a staging copy (the working tree gets no build/ or egg-info). Prints the two paths.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CONTRACTS = Path(__file__).resolve().parents[1]
LEFT_OUT = shutil.ignore_patterns(
    "packaging", "__pycache__", "node_modules", "*.pyc", "package.json", "index.mjs"
)


def build_wheel(out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="contracts-wheel-") as staging:
        root = Path(staging)
        shutil.copytree(CONTRACTS, root / "contracts", ignore=LEFT_OUT)
        (root / "contracts" / "py.typed").touch()
        shutil.copy(CONTRACTS / "packaging" / "pyproject.toml", root / "pyproject.toml")
        built = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--disable-pip-version-check",
                "--wheel-dir",
                str(out),
                str(root),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            raise SystemExit(f"the wheel did not build:\n{built.stdout}\n{built.stderr}")
    (wheel,) = out.glob("villagecounsel_contracts-*.whl")
    return wheel


def build_npm(out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="contracts-npm-") as staging:
        root = Path(staging)
        for name in ("package.json", "index.mjs", "asyncapi.yaml", "keywords.json", "README.md"):
            shutil.copy(CONTRACTS / name, root / name)
        shutil.copytree(CONTRACTS / "schemas", root / "schemas")
        packed = subprocess.run(  # noqa: S603 - fixed arguments
            ["npm", "pack", "--silent", "--pack-destination", str(out)],  # noqa: S607 - npm from PATH
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        )
    return out / packed.stdout.strip().splitlines()[-1]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    print(build_wheel(out))  # noqa: T201
    print(build_npm(out))  # noqa: T201


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else CONTRACTS.parent / ".local" / "packages")
