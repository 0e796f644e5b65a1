"""Three Kafka brokers in one KRaft cluster (each a broker and a controller) on 127.0.0.1, as the chaos
soak runs them: topics with replication 3, `min.insync.replicas` 2, producers with acks=all.

The brokers share one TLS certificate, one set of SCRAM users and one cluster id; each has its own data
directory under `.local/<profile>/kafka-<n>/`. PostgreSQL is the profile's, as `devstack.stack` makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from contracts.topics import TOPICS
from devstack import broker_security
from devstack.stack import (
    _LOG4J2,
    Profile,
    StackError,
    _pid_alive,
    _port_open,
    _say,
    _wait_for,
    format_kafka_storage,
    kafka_cluster_id,
    kafka_libs,
    launch_kafka,
    postgres_down,
    postgres_up,
)
from plumbing.kafka import KafkaConnection, ensure_topics

REPLICATION = 3
MIN_IN_SYNC = 2


@dataclass(frozen=True)
class ClusterProfile:
    name: str
    kafka_ports: tuple[int, int, int]
    controller_ports: tuple[int, int, int]
    postgres_port: int
    # per broker (listen port, proxy port): a second listener for clients that go through a TCP proxy,
    # advertising the proxy's port (devstack/chaos.py's network faults on the cluster)
    kafka_proxied: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if self.kafka_proxied and len(self.kafka_proxied) != len(self.kafka_ports):
            raise ValueError(f"cluster {self.name}: one proxied listener per broker or none")

    @property
    def postgres(self) -> Profile:
        """The profile PostgreSQL runs under (its Kafka ports are the first broker's; never started)."""
        return Profile(self.name, self.kafka_ports[0], self.controller_ports[0], self.postgres_port)

    @property
    def home(self) -> Path:
        return self.postgres.home

    @property
    def shared(self) -> Path:
        """The TLS files and the users' passwords, the same for every broker."""
        return self.home / "kafka"

    @property
    def nodes(self) -> range:
        return range(1, len(self.kafka_ports) + 1)

    def node_home(self, node: int) -> Path:
        return self.home / f"kafka-{node}"

    @property
    def kafka_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.kafka_ports)

    @property
    def database_url(self) -> str:
        return self.postgres.database_url

    def kafka_as(self, user: str) -> KafkaConnection:
        return broker_security.connection(self.shared, self.kafka_bootstrap, user)

    def environment(self, user: str | None = None) -> dict[str, str]:
        return {
            **self.postgres.environment(user),
            **broker_security.client_environment(self.shared, self.kafka_bootstrap, user),
            "VC_TOPIC_REPLICATION_FACTOR": str(REPLICATION),
        }


def _properties(cluster: ClusterProfile, node: int) -> str:
    voters = ",".join(
        f"{number}@127.0.0.1:{cluster.controller_ports[number - 1]}" for number in cluster.nodes
    )
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node}",
            f"controller.quorum.voters={voters}",
            *broker_security.security_properties(
                cluster.shared,
                cluster.kafka_ports[node - 1],
                cluster.controller_ports[node - 1],
                cluster.kafka_proxied[node - 1] if cluster.kafka_proxied else None,
            ),
            f"log.dirs={cluster.node_home(node) / 'data'}",
            "num.partitions=1",
            f"default.replication.factor={REPLICATION}",
            f"min.insync.replicas={MIN_IN_SYNC}",
            f"offsets.topic.replication.factor={REPLICATION}",
            "offsets.topic.num.partitions=6",
            f"transaction.state.log.replication.factor={REPLICATION}",
            f"transaction.state.log.min.isr={MIN_IN_SYNC}",
            "unclean.leader.election.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "log.retention.ms=-1",
            "log.retention.bytes=-1",
            "",
        ]
    )


def _pid_file(cluster: ClusterProfile, node: int) -> Path:
    return cluster.node_home(node) / "broker.pid"


def node_up(cluster: ClusterProfile, node: int, wait: bool = True) -> None:
    """Start one broker (formatted on its first start); with `wait`, until it says it started."""
    home = cluster.node_home(node)
    if _pid_alive(_pid_file(cluster, node)):
        return
    libs = kafka_libs()
    home.mkdir(parents=True, exist_ok=True)
    properties = home / "server.properties"
    properties.write_text(_properties(cluster, node))
    properties.chmod(0o600)
    (home / "log4j2.properties").write_text(_LOG4J2.format(log=home / "server.log"))
    if not (home / "data" / "meta.properties").exists():
        cluster_id = (cluster.shared / "cluster-id").read_text().strip()
        format_kafka_storage(libs, home, cluster_id, properties, _scram_arguments(cluster))
    server_log = home / "server.log"
    log_start = server_log.stat().st_size if server_log.exists() else 0
    _pid_file(cluster, node).write_text(launch_kafka(libs, home, properties))
    if not wait:
        return
    node_started(cluster, node, log_start)


def node_started(cluster: ClusterProfile, node: int, log_start: int = 0) -> None:
    server_log = cluster.node_home(node) / "server.log"

    def started() -> bool:
        if _pid_alive(_pid_file(cluster, node)) is None:
            return True
        if not server_log.exists():
            return False
        with server_log.open("rb") as text:
            text.seek(log_start)
            return b"Kafka Server started" in text.read() and _port_open(cluster.kafka_ports[node - 1])

    _wait_for(started, f"Kafka broker {node}", 120, server_log)
    if _pid_alive(_pid_file(cluster, node)) is None:
        raise StackError(f"Kafka broker {node} exited at start; see {server_log}")


def _scram_arguments(cluster: ClusterProfile) -> list[str]:
    """The same users and passwords on every broker (StorageTool puts them in the metadata log)."""
    arguments = []
    for user in broker_security.USERS:
        secret = broker_security.password(cluster.shared, user)
        arguments += ["--add-scram", f"{broker_security.SCRAM}=[name={user},password={secret}]"]
    return arguments


def node_kill(cluster: ClusterProfile, node: int) -> None:
    """kill -9 of one broker."""
    pid = _pid_alive(_pid_file(cluster, node))
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(_pid_file(cluster, node)):
            time.sleep(0.1)
    _pid_file(cluster, node).unlink(missing_ok=True)


def node_stop(cluster: ClusterProfile, node: int, seconds: float = 120) -> float:
    """A controlled shutdown (SIGTERM: the broker hands its leaderships over first); the seconds it took."""
    pid = _pid_alive(_pid_file(cluster, node))
    started = time.monotonic()
    if pid is None:
        return 0.0
    os.kill(pid, signal.SIGTERM)
    while _pid_alive(_pid_file(cluster, node)) and time.monotonic() - started < seconds:
        time.sleep(0.2)
    if _pid_alive(_pid_file(cluster, node)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _pid_file(cluster, node).unlink(missing_ok=True)
    return time.monotonic() - started


def cluster_up(cluster: ClusterProfile) -> None:
    """PostgreSQL, then the three brokers, then the topics (replication 3) and the ACLs."""
    postgres_up(cluster.postgres)
    cluster.shared.mkdir(parents=True, exist_ok=True)
    broker_security.ensure_tls(cluster.shared)
    if not (cluster.shared / "cluster-id").exists():
        (cluster.shared / "cluster-id").write_text(kafka_cluster_id())
        broker_security.new_credentials(cluster.shared)
    # formatted and started side by side: each is a JVM start of several seconds
    with ThreadPoolExecutor(max_workers=len(cluster.kafka_ports)) as threads:
        list(threads.map(lambda node: node_up(cluster, node, wait=False), cluster.nodes))
    for node in cluster.nodes:
        node_started(cluster, node)
    asyncio.run(
        ensure_topics(cluster.kafka_as(broker_security.ADMIN), TOPICS, replication_factor=REPLICATION)
    )
    entries = broker_security.set_up_access(cluster.shared, cluster.kafka_bootstrap)
    _say(
        f"Kafka cluster of {len(cluster.kafka_ports)} up on {cluster.kafka_bootstrap}, {entries} ACL entries"
    )


def cluster_down(cluster: ClusterProfile, wipe: bool = False) -> None:
    """Each broker stopped in turn (a controlled shutdown), PostgreSQL too; with `wipe`, killed at once
    and their data removed (what is thrown away needs no orderly stop)."""
    for node in cluster.nodes:
        if wipe:
            node_kill(cluster, node)
        else:
            node_stop(cluster, node, seconds=30)
    postgres_down(cluster.postgres)
    if wipe and cluster.home.exists():
        shutil.rmtree(cluster.home)
