"""Where the tests' Kafka and PostgreSQL come from: given by env, containers, or the devstack."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from devstack.identity import IDENTITY_PROFILES, IdentityProfile, identity_down, identity_running, identity_up
from devstack.stack import PROFILES, down, up


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap: str
    database_url: str
    origin: str


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextlib.contextmanager
def _containers() -> Iterator[Infrastructure]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

    with (
        KafkaContainer("apache/kafka:4.1.0").with_kraft() as kafka,
        PostgresContainer("postgres:16", driver=None) as postgres,
    ):
        yield Infrastructure(kafka.get_bootstrap_server(), postgres.get_connection_url(), "testcontainers")


@contextlib.contextmanager
def provide_infrastructure() -> Iterator[Infrastructure]:
    """KAFKA_BOOTSTRAP_SERVERS + DATABASE_URL if set; else containers where a Docker daemon answers;
    else the devstack's `test` profile, started fresh (clean topics) and stopped afterwards."""
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database = os.environ.get("DATABASE_URL")
    if kafka and database:
        yield Infrastructure(kafka, database, "environment")
        return
    if os.environ.get("VC_TEST_USE_DOCKER") == "1" and _docker_answers():
        with _containers() as infrastructure:
            yield infrastructure
        return
    profile = PROFILES["test"]
    up(profile, fresh=os.environ.get("VC_KEEP_TEST_STACK") != "1")
    try:
        yield Infrastructure(profile.kafka_bootstrap, profile.database_url, "devstack")
    finally:
        if os.environ.get("VC_KEEP_TEST_STACK") != "1":
            down(profile)


@contextlib.contextmanager
def provide_identity() -> Iterator[IdentityProfile]:
    """The devstack's OpenID Connect provider of the `test` profile (127.0.0.1:19400): already running
    when the devstack started the broker and database, else started here and stopped afterwards."""
    identity = IDENTITY_PROFILES["test"]
    started_here = not identity_running(identity)
    identity_up(identity)
    try:
        yield identity
    finally:
        if started_here and os.environ.get("VC_KEEP_TEST_STACK") != "1":
            identity_down(identity)
