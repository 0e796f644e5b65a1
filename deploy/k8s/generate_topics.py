"""Writes deploy/k8s/base/kafka-topics.yaml from contracts/topics.py, the one place topics are declared.

    .local/venv/bin/python deploy/k8s/generate_topics.py            # rewrite the file
    .local/venv/bin/python deploy/k8s/generate_topics.py --check    # exit 1 when the file has drifted

tests/unit/test_deploy_kafka.py fails when the committed file differs from what this writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from contracts.topics import TOPICS  # noqa: E402

TARGET = ROOT / "deploy" / "k8s" / "base" / "kafka-topics.yaml"
CLUSTER = "villagecounsel"
REPLICAS = 3
MIN_IN_SYNC = "2"

HEADER = """\
# GENERATED from contracts/topics.py by deploy/k8s/generate_topics.py: do not edit by hand.
# The topics are the event store, kept forever (retention -1). The brokers refuse to delete topics
# (delete.topic.enable=false in kafka.yaml), so deleting these resources leaves the data. Deleting the
# namespace deletes the brokers' volume claims: only the volumes' StorageClass (Retain) keeps the data.
# Adding partitions changes which partition a village's key maps to: read docs/runbooks/kafka.md first.
"""


def resource_name(topic: str) -> str:
    """Kubernetes names allow no dots: `village-services.dlq` is the resource `village-services-dlq`."""
    return topic.replace(".", "-")


def topic_documents() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaTopic",
            "metadata": {
                "name": resource_name(spec.name),
                "labels": {"strimzi.io/cluster": CLUSTER, "app.kubernetes.io/part-of": "villagecounsel"},
                "annotations": {"villagecounsel/key": spec.key},
            },
            "spec": {
                "topicName": spec.name,
                "partitions": spec.partitions,
                "replicas": REPLICAS,
                "config": {**spec.configs, "min.insync.replicas": MIN_IN_SYNC},
            },
        }
        for spec in TOPICS
    ]


def render() -> str:
    body = yaml.safe_dump_all(topic_documents(), sort_keys=False, allow_unicode=True, width=120)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if TARGET.read_text(encoding="utf-8") != text:
            sys.stderr.write(f"{TARGET} differs from contracts/topics.py: run {__file__}\n")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
