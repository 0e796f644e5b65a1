"""The Dockerfile follows the rules hadolint would check (hadolint itself is not installable from the
package registries this project uses, so the rules that matter here are checked in Python), and the image
and bin/setup install the Python dependencies from the lock files (issue 15)."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.support.deploy import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def violations(text: str) -> list[str]:
    found = []
    steps = instructions(text)
    users = []
    for word, rest in steps:
        if word == "FROM":
            image = rest.split()[0]
            tag = image.split("@")[0].rpartition(":")[2] if ":" in image.split("/")[-1] else ""
            if "@sha256:" not in image and (not re.search(r"\d", tag) or tag == "latest"):
                found.append(f"DL3006/DL3007 base image not pinned: {image}")
            users = []
        if word == "USER":
            users.append(rest)
        if word == "ADD" and re.search(r"https?://", rest):
            found.append("DL3020 ADD of a URL")
        if word == "WORKDIR" and not rest.startswith("/"):
            found.append("DL3000 relative WORKDIR")
        if word in ("CMD", "ENTRYPOINT") and not rest.startswith("["):
            found.append(f"DL3025 {word} not in JSON form")
        if word == "RUN":
            for command in re.split(r"&&|;|\|\|", rest):
                command = command.strip()
                if re.match(r"(pip|python -m pip)\s+install", command) and "--no-cache-dir" not in command:
                    found.append("DL3042 pip install without --no-cache-dir")
                if command.startswith("apt-get install") and "--no-install-recommends" not in command:
                    found.append("DL3015 apt-get install without --no-install-recommends")
                if re.match(r"apt-get (dist-)?upgrade", command):
                    found.append("DL3005 apt-get upgrade")
                if command.startswith("cd "):
                    found.append("DL3003 cd in RUN (use WORKDIR)")
                if command.startswith("sudo "):
                    found.append("DL3004 sudo")
    if not users or users[-1].split(":")[0] in ("root", "0") or not users[-1].split(":")[0].isdigit():
        found.append("DL3002 the final stage must run as a numeric non-root user")
    return found


def test_the_dockerfile_breaks_no_rule() -> None:
    assert violations(DOCKERFILE.read_text()) == []


def test_the_rule_check_finds_each_fault() -> None:
    bad = "\n".join(
        [
            "FROM python:latest",
            "WORKDIR app",
            "ADD https://example.org/x.tgz /x",
            "RUN cd /x && pip install . && apt-get install -y curl",
            "CMD python -m x",
        ]
    )
    found = " ".join(violations(bad))
    for rule in ("DL3006", "DL3000", "DL3020", "DL3003", "DL3042", "DL3015", "DL3025", "DL3002"):
        assert rule in found, rule


def test_the_image_installs_the_locked_dependencies_with_their_hashes() -> None:
    runs = [rest for word, rest in instructions(DOCKERFILE.read_text()) if word == "RUN"]
    assert any("--require-hashes" in run and "-r requirements.lock" in run for run in runs)
    project = [run for run in runs if re.search(r"pip install .*\s\.(\s|$)", run)]
    assert project
    assert all("--no-deps" in run for run in project), "the project adds no unlocked package"
    setup = (ROOT / "bin" / "setup").read_text()
    assert "--require-hashes" in setup
    assert "-r requirements-dev.lock" in setup


def pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    found = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.MULTILINE))
    return {normalise(package): version for package, version in found.items()}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0])


def test_the_lock_files_pin_every_dependency_of_pyproject_with_hashes_and_agree() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {requirement_name(r) for r in project["dependencies"]} <= set(runtime)
    assert {requirement_name(r) for r in project["optional-dependencies"]["dev"]} <= set(dev)
    assert set(runtime) <= set(dev)
    assert {name: version for name, version in runtime.items() if dev[name] != version} == {}
    for name in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / name).read_text()
        pinned = re.findall(r"^\S+==", text, re.MULTILINE)
        hashed = re.findall(r"==\S+ \\\n\s+--hash=sha256:", text)
        assert len(pinned) == len(hashed) > 20, f"every pin in {name} carries its hashes"


# PostgreSQL's releases have two numbers since 10 (16.10 is a full release); the others three.
RELEASE_PARTS = {"postgres": 2}


def unpinned_releases(images: list[str]) -> list[str]:
    """Images whose tag names a release line (`20.19`, `16`) instead of one release: the same file would
    build or run something else next month."""
    found = []
    for image in images:
        if "@sha256:" in image:
            continue
        name, _, tag = image.rpartition(":")
        version = re.match(r"v?(\d+(?:\.\d+)*)", tag)
        wanted = RELEASE_PARTS.get(name.rsplit("/", 1)[-1], 3)
        if version is None or len(version.group(1).split(".")) != wanted:
            found.append(image)
    return found


def test_the_base_images_and_composes_images_name_one_release() -> None:
    dockerfile = [rest.split()[0] for word, rest in instructions(DOCKERFILE.read_text()) if word == "FROM"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    images = dockerfile + [service["image"] for service in compose.values() if "image" in service]
    assert len(images) >= 6
    assert unpinned_releases(images) == []
    assert unpinned_releases(["node:20.19-slim", "postgres:16", "postgres:16.10", "python:3.11.13-slim"]) == [
        "node:20.19-slim",
        "postgres:16",
    ]
    cluster = next(
        doc for doc in yaml.safe_load_all((ROOT / "deploy/k8s/base/postgres.yaml").read_text()) if doc
    )
    assert compose["postgres"]["image"].split(":")[1] == cluster["spec"]["imageName"].split(":")[1]
