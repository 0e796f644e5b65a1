"""Rendering deploy/k8s's overlays with kustomize (built into .local/bin by bin/setup), for the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "province")
KUSTOMIZE = ROOT / ".local" / "bin" / "kustomize"
RENDER_DIR = ROOT / ".local" / "deploy-render"

Doc = dict[str, Any]


def kustomize() -> Path:
    found = KUSTOMIZE if KUSTOMIZE.exists() else shutil.which("kustomize")
    assert found, "kustomize is missing: bin/setup builds it into .local/bin (Go module proxy)"
    return Path(found)


@cache
def _tree() -> Path:
    """A copy of deploy/k8s (without the CRDs) with the dev overlay's secret values made, as a person would
    make them (deploy/k8s/overlays/dev/make_secrets.py), so that the committed tree stays untouched."""
    target = RENDER_DIR / "k8s"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(K8S, target, ignore=shutil.ignore_patterns("crds", "secrets", "__pycache__"))
    make = target / "overlays" / "dev" / "make_secrets.py"
    subprocess.run(
        [sys.executable, str(make)], check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    )
    return target


@cache
def render(path: str) -> tuple[Doc, ...]:
    """`kustomize build deploy/k8s/<path>`, parsed."""
    built = subprocess.run(
        [str(kustomize()), "build", str(_tree() / path)], check=True, capture_output=True, text=True
    )
    return tuple(doc for doc in yaml.safe_load_all(built.stdout) if doc)


def of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def pod_templates(docs: tuple[Doc, ...]) -> list[tuple[str, Doc]]:
    """(kind/name, pod spec) of every workload the project runs itself."""
    found = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            found.append((f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]))
    return found
