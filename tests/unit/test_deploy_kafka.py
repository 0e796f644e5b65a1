"""deploy/k8s/base/kafka-topics.yaml is what deploy/k8s/generate_topics.py writes from contracts/topics.py:
a topic added, or a partition count changed, in the contracts without regenerating fails here (issue 15)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import replace
from types import ModuleType

import pytest
import yaml

from contracts.topics import TOPICS
from tests.support.deploy import K8S

GENERATOR = K8S / "generate_topics.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_topics", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_topics_are_the_generated_ones() -> None:
    module = generator()
    assert (K8S / "base" / "kafka-topics.yaml").read_text(encoding="utf-8") == module.render()
    check = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_change_in_the_contracts_is_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    module = generator()
    committed = (K8S / "base" / "kafka-topics.yaml").read_text(encoding="utf-8")
    more = (replace(TOPICS[0], partitions=TOPICS[0].partitions + 6), *TOPICS[1:])
    monkeypatch.setattr(module, "TOPICS", more)
    assert module.render() != committed
    assert module.main(["--check"]) == 1


def test_every_topic_is_kept_forever_with_three_replicas_and_two_in_sync() -> None:
    for topic in yaml.safe_load_all(generator().render()):
        assert topic["apiVersion"] == "kafka.strimzi.io/v1"
        assert topic["spec"]["replicas"] == 3
        config = topic["spec"]["config"]
        assert config["retention.ms"] == "-1"
        assert config["retention.bytes"] == "-1"
        assert config["min.insync.replicas"] == "2"
        assert "." not in topic["metadata"]["name"], "a Kubernetes name"
