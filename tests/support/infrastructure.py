"""Where the tests' Kafka and PostgreSQL come from: given by env, containers, or the devstack.

On the devstack the broker is closed (SASL_SSL, a user per service, ACLs): services under test connect as
their own users (`kafka_settings`, `kafka_environment`), and the tests' own clients (`kafka`, the
`producer` fixture) as the devstack's super user `admin` — the test-only injector, because tests put
forged, poison and foreign records on every topic on purpose. Elsewhere (a broker given by the
environment, containers) every client connects the one way the environment says.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from devstack.broker_security import ADMIN
from devstack.identity import IDENTITY_PROFILES, IdentityProfile, identity_down, identity_running, identity_up
from devstack.stack import PROFILES, Profile, down, up
from plumbing.kafka import KafkaConnection
from plumbing.settings import ServiceSettings

# The variables that choose how a client reaches Kafka; replaced as a whole for a subprocess.
KAFKA_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "VC_KAFKA_SECURITY_PROTOCOL",
    "VC_KAFKA_SASL_MECHANISM",
    "VC_KAFKA_SASL_USERNAME",
    "VC_KAFKA_SASL_PASSWORD",
    "VC_KAFKA_SASL_PASSWORD_FILE",
    "VC_KAFKA_CA_FILE",
)


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap: str
    database_url: str
    origin: str
    profile: Profile | None = None  # the devstack's: a closed broker with a user per service

    @property
    def closed(self) -> bool:
        """Whether the broker checks who writes what (the devstack's does)."""
        return self.profile is not None

    def kafka_as(self, user: str) -> KafkaConnection:
        """A client connection as `user` (a principal of contracts/access.py, or `admin`)."""
        if self.profile is not None:
            return self.profile.kafka_as(user)
        return ServiceSettings(kafka_bootstrap_servers=self.kafka_bootstrap).kafka_connection()

    @property
    def kafka(self) -> KafkaConnection:
        """The tests' own connection: the super user on the devstack (injects any record anywhere)."""
        return self.kafka_as(ADMIN)

    def kafka_environment(self, user: str) -> dict[str, str]:
        """The process environment with the Kafka variables of `user` (and this database)."""
        inherited = {key: value for key, value in os.environ.items() if key not in KAFKA_VARIABLES}
        if self.profile is not None:
            return {**inherited, **self.profile.environment(user), "DATABASE_URL": self.database_url}
        given = {key: value for key, value in os.environ.items() if key in KAFKA_VARIABLES}
        return {
            **inherited,
            **given,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "DATABASE_URL": self.database_url,
        }

    def kafka_settings(self, user: str) -> dict[str, Any]:
        """Settings fields (for a service's settings class) that connect as `user`."""
        environment = self.kafka_environment(user)
        names = {
            "KAFKA_BOOTSTRAP_SERVERS": "kafka_bootstrap_servers",
            "VC_KAFKA_SECURITY_PROTOCOL": "kafka_security_protocol",
            "VC_KAFKA_SASL_MECHANISM": "kafka_sasl_mechanism",
            "VC_KAFKA_SASL_USERNAME": "kafka_sasl_username",
            "VC_KAFKA_SASL_PASSWORD": "kafka_sasl_password",
            "VC_KAFKA_SASL_PASSWORD_FILE": "kafka_sasl_password_file",
            "VC_KAFKA_CA_FILE": "kafka_ca_file",
        }
        return {field: environment[variable] for variable, field in names.items() if variable in environment}


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
        PostgresContainer("postgres:16.10", driver=None) as postgres,
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
        yield Infrastructure(profile.kafka_bootstrap, profile.database_url, "devstack", profile)
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
