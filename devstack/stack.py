"""A real Apache Kafka broker (KRaft) and a real PostgreSQL on 127.0.0.1, without Docker.

Kafka's jars come from Maven Central through `kafka-pom.xml`; the broker runs on the machine's JDK and is
closed as the cluster's is: SASL/SCRAM over TLS, a user per service, ACLs (`devstack/broker_security.py`).
PostgreSQL is the machine's server binaries, in a cluster made with initdb (as the `postgres` user when
run as root: the server refuses root). Everything lives under `.local/<profile>/`; `up` twice reuses
what runs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from devstack import broker_security
from plumbing.kafka import KafkaConnection
from plumbing.roles import ROLE_BY_SERVICE, service_database_url

ROOT = Path(__file__).resolve().parent.parent
POM = Path(__file__).resolve().parent / "kafka-pom.xml"
LOCAL = Path(os.environ.get("VC_DEVSTACK_DIR", ROOT / ".local"))
LIBS = LOCAL / "kafka-libs"
DATABASE = "villagecounsel"


class StackError(RuntimeError):
    """Something the stack needs is missing or would not start; the message says what to check."""


# Listening ports stay below Linux's ephemeral range (32768-60999 by default): a port inside it can be
# taken for a moment as the local end of any outgoing connection, and the server then fails to bind.
EPHEMERAL_PORTS_START = 32768


@dataclass(frozen=True)
class Profile:
    name: str
    kafka_port: int
    controller_port: int
    postgres_port: int
    # (listen port, proxy port): a second broker listener for clients that go through a TCP proxy
    kafka_proxied: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for port in (self.kafka_port, self.controller_port, self.postgres_port, *(self.kafka_proxied or ())):
            if not 1024 <= port < EPHEMERAL_PORTS_START:
                raise ValueError(
                    f"profile {self.name}: port {port} must be 1024-{EPHEMERAL_PORTS_START - 1}, "
                    "below the ephemeral range that outgoing connections draw from"
                )

    @property
    def home(self) -> Path:
        return LOCAL / self.name

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.postgres_port}/{DATABASE}"

    def kafka_as(self, user: str) -> KafkaConnection:
        """A connection to this profile's broker as one of its users (a service's, or `admin`)."""
        return broker_security.connection(self.home / "kafka", self.kafka_bootstrap, user)

    def environment(self, user: str | None = None) -> dict[str, str]:
        """What a process needs to reach this profile's broker (as `user`) and database (a service as its own
        PostgreSQL role: plumbing/roles.py)."""
        database = self.database_url
        if user in ROLE_BY_SERVICE:
            database = service_database_url(database, user, None)
        return {
            **broker_security.client_environment(self.home / "kafka", self.kafka_bootstrap, user),
            "DATABASE_URL": database,
        }


PROFILES = {
    "dev": Profile("dev", kafka_port=29092, controller_port=29093, postgres_port=25432),
    "test": Profile("test", kafka_port=19092, controller_port=19093, postgres_port=15432),
    "bench": Profile("bench", kafka_port=21092, controller_port=21093, postgres_port=21432),
}


def _say(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


def _port_open(port: int, attempts: int = 1) -> bool:
    """Whether something listens on the port; with attempts > 1, a busy server gets a few chances to answer
    before it is taken for absent (deciding "not running" wrongly would start a second one)."""
    for attempt in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        if attempt + 1 < attempts:
            time.sleep(0.5)
    return False


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def _wait_for(predicate: object, what: str, seconds: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.25)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    raise StackError(f"{what} did not come up within {seconds:.0f}s{tail}")


# -- Kafka -------------------------------------------------------------------------------------------


def kafka_libs() -> Path:
    """The broker's jars, resolved from Maven Central once and cached under .local/kafka-libs."""
    stamp = LIBS / ".pom-sha256"
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and any(LIBS.glob("kafka_2.13-*.jar")):
        return LIBS
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) is needed to fetch the Kafka broker's jars: apt-get install maven")
    if shutil.which("java") is None:
        raise StackError(
            "a JDK (java) is needed to run the Kafka broker: apt-get install openjdk-17-jre-headless"
        )
    _say("resolving the Kafka broker's jars from Maven Central ...")
    if LIBS.exists():
        shutil.rmtree(LIBS)
    LIBS.mkdir(parents=True)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={LIBS}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"mvn could not resolve the Kafka jars:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    stamp.write_text(digest)
    return LIBS


def _kafka_properties(profile: Profile, home: Path, data: Path) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{profile.controller_port}",
            *broker_security.security_properties(
                home, profile.kafka_port, profile.controller_port, profile.kafka_proxied
            ),
            f"log.dirs={data}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=6",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "log.retention.ms=-1",
            "log.retention.bytes=-1",
            "",
        ]
    )


_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def _java_command(libs: Path, home: Path, main: str, *args: str) -> list[str]:
    return [
        "java",
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


def kafka_up(profile: Profile) -> None:
    home = profile.home / "kafka"
    pid_file = home / "broker.pid"
    if _pid_alive(pid_file) and _port_open(profile.kafka_port, attempts=5):
        _say(f"Kafka already running on {profile.kafka_bootstrap}")
        close_the_broker(profile)
        return
    if _port_open(profile.kafka_port):
        raise StackError(
            f"port {profile.kafka_port} is taken by another program; stop it or use another profile"
        )
    libs = kafka_libs()
    data = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    broker_security.ensure_tls(home)
    formatted = (data / "meta.properties").exists()
    scram_arguments = [] if formatted else broker_security.new_credentials(home)
    properties = home / "server.properties"
    try:
        text = _kafka_properties(profile, home, data)
    except broker_security.CredentialsMissing:
        raise StackError(
            f"the {profile.name} broker's data in {data} was made before the broker was closed (no users "
            f"or passwords in {home / 'credentials'}); wipe it: python -m devstack down --profile "
            f"{profile.name} --wipe (its topics are lost), then up again"
        ) from None
    properties.write_text(text)
    properties.chmod(0o600)  # it holds the admin's password for the broker's own connections
    (home / "log4j2.properties").write_text(_LOG4J2.format(log=home / "server.log"))
    if not formatted:
        cluster_id = (home / "cluster-id").read_text().strip() if (home / "cluster-id").exists() else None
        if cluster_id is None:
            cluster_id = kafka_cluster_id()
            (home / "cluster-id").write_text(cluster_id)
        format_kafka_storage(libs, home, cluster_id, properties, scram_arguments)
    server_log = home / "server.log"
    log_start = server_log.stat().st_size if server_log.exists() else 0
    pid_file.write_text(launch_kafka(libs, home, properties))

    def started() -> bool:
        if _pid_alive(pid_file) is None:
            return True
        if not server_log.exists():
            return False
        with server_log.open("rb") as text:
            text.seek(log_start)
            return b"Kafka Server started" in text.read() and _port_open(profile.kafka_port)

    _wait_for(started, "Kafka", 90, server_log)
    if _pid_alive(pid_file) is None:
        raise StackError(f"Kafka exited at start; see {home / 'broker.out'} and {server_log}")
    _say(f"Kafka {libs_version(libs)} up on {profile.kafka_bootstrap} (KRaft, SASL_SSL), data in {data}")
    close_the_broker(profile)


def format_kafka_storage(
    libs: Path, home: Path, cluster_id: str, properties: Path, scram_arguments: list[str]
) -> None:
    """Kafka's StorageTool: the data directory of `properties` for the cluster, with the SCRAM users."""
    result = subprocess.run(
        _java_command(
            libs,
            home,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            str(properties),
            *scram_arguments,
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"Kafka's StorageTool could not format {home}:\n{result.stdout}\n{result.stderr}")


def launch_kafka(libs: Path, home: Path, properties: Path) -> str:
    """Start a broker detached in a session of its own (it outlives this command, as a daemon would);
    its process id."""
    command = " ".join(
        shlex.quote(part) for part in _java_command(libs, home, "kafka.Kafka", str(properties))
    )
    log = home / "broker.out"
    launched = subprocess.run(
        ["setsid", "sh", "-c", f"{command} >>{shlex.quote(str(log))} 2>&1 </dev/null & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    return launched.stdout.strip()


def close_the_broker(profile: Profile) -> None:
    """The topics and every ACL of contracts/access.py, created by the devstack's super user."""
    entries = broker_security.set_up_access(profile.home / "kafka", profile.kafka_bootstrap)
    _say(f"Kafka topics and {entries} ACL entries in place (users: {', '.join(broker_security.USERS)})")


def kafka_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding. Like Kafka's own
    Uuid.randomUuid, never one that starts with '-', which a command line would read as an option."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def libs_version(libs: Path) -> str:
    jars = sorted(libs.glob("kafka_2.13-*.jar"))
    return jars[0].stem.removeprefix("kafka_2.13-") if jars else "?"


def _stop_pid(pid_file: Path, what: str, seconds: float = 60) -> None:
    pid = _pid_alive(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _pid_alive(pid_file):
        time.sleep(0.2)
    if _pid_alive(pid_file):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    _say(f"{what} stopped")


def kafka_down(profile: Profile) -> None:
    _stop_pid(profile.home / "kafka" / "broker.pid", "Kafka")


def kafka_kill(profile: Profile) -> None:
    """Kill the broker without a clean shutdown (for failure tests)."""
    pid_file = profile.home / "kafka" / "broker.pid"
    pid = _pid_alive(pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid_file):
            time.sleep(0.1)
    pid_file.unlink(missing_ok=True)


# -- PostgreSQL --------------------------------------------------------------------------------------


def _postgres_bin(tool: str) -> Path:
    found = shutil.which(tool)
    if found:
        return Path(found)
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), reverse=True)
    if candidates:
        return candidates[0]
    if os.geteuid() == 0 and shutil.which("apt-get"):
        _say("installing PostgreSQL server binaries (Debian package postgresql) ...")
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql"],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), reverse=True)
        if candidates:
            return candidates[0]
    raise StackError(f"PostgreSQL's {tool} was not found: install the Debian package postgresql")


def _as_postgres(command: list[str]) -> list[str]:
    """The server refuses to run as root; as root, run its tools as the `postgres` user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() != 0:
        return
    shutil.chown(path, "postgres", "postgres")
    # The postgres user must be able to reach the folder through every parent.
    for parent in path.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def postgres_up(profile: Profile) -> None:
    home = profile.home / "postgres"
    data = home / "data"
    log = home / "server.log"
    home.mkdir(parents=True, exist_ok=True)
    _give_to_postgres(home)
    pg_ctl = _postgres_bin("pg_ctl")
    if (data / "postmaster.pid").exists() and _port_open(profile.postgres_port, attempts=5):
        _say(f"PostgreSQL already running on 127.0.0.1:{profile.postgres_port}")
        _ensure_database(profile)
        return
    if _port_open(profile.postgres_port):
        raise StackError(
            f"port {profile.postgres_port} is taken by another program; stop it or use another profile"
        )
    if not (data / "PG_VERSION").exists():
        initdb = _postgres_bin("initdb")
        result = subprocess.run(
            _as_postgres(
                [
                    str(initdb),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    options = (
        f"-p {profile.postgres_port} -c listen_addresses=127.0.0.1 -k {home} "
        "-c max_connections=200 -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on"
    )
    result = subprocess.run(
        _as_postgres(
            [str(pg_ctl), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise StackError(f"PostgreSQL would not start:\n{result.stdout}\n{result.stderr}\n{tail}")
    _ensure_database(profile)
    _ensure_roles(profile)
    _say(f"PostgreSQL up on 127.0.0.1:{profile.postgres_port}, data in {data}")


def _ensure_database(profile: Profile) -> None:
    psql = _postgres_bin("psql")
    base = ["-h", "127.0.0.1", "-p", str(profile.postgres_port), "-U", "postgres", "-d", "postgres", "-Atqc"]
    exists = subprocess.run(
        [str(psql), *base, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],  # noqa: S608
        capture_output=True,
        text=True,
        check=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run([str(psql), *base, f"CREATE DATABASE {DATABASE}"], capture_output=True, check=True)


def _ensure_roles(profile: Profile) -> None:
    """One PostgreSQL role per service, owning only its schema (plumbing/roles.py), made idempotently."""
    result = subprocess.run(
        [sys.executable, "-m", "plumbing.roles", "--database-url", profile.database_url],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise StackError(
            f"the services' PostgreSQL roles could not be set up:\n{result.stdout}\n{result.stderr}"
        )


def postgres_down(profile: Profile) -> None:
    data = profile.home / "postgres" / "data"
    if not (data / "postmaster.pid").exists():
        return
    pg_ctl = _postgres_bin("pg_ctl")
    subprocess.run(
        _as_postgres([str(pg_ctl), "-D", str(data), "-m", "fast", "-w", "stop"]),
        capture_output=True,
        check=False,
    )
    _say("PostgreSQL stopped")


def postgres_kill(profile: Profile) -> None:
    """Kill the postmaster without a shutdown (for failure tests); its backends end as they notice."""
    data = profile.home / "postgres" / "data"
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not _process_exists(pid), "the killed postmaster's exit", 30)
    _wait_for(lambda: not _port_open(profile.postgres_port), "the killed PostgreSQL's port closing", 30)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child of ours is a zombie until reaped: count it as gone.
    status = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        return status.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


# -- both --------------------------------------------------------------------------------------------


def up(profile: Profile, fresh: bool = False) -> None:
    if fresh:
        down(profile, wipe=True)
    postgres_up(profile)
    kafka_up(profile)
    from devstack import identity  # its own module: it builds on this one's helpers

    if profile.name in identity.IDENTITY_PROFILES:
        identity.identity_up(identity.IDENTITY_PROFILES[profile.name])


def down(profile: Profile, wipe: bool = False) -> None:
    from devstack import identity

    if profile.name in identity.IDENTITY_PROFILES:
        identity.identity_down(identity.IDENTITY_PROFILES[profile.name])
    kafka_down(profile)
    postgres_down(profile)
    if wipe and profile.home.exists():
        shutil.rmtree(profile.home)
        _say(f"wiped {profile.home}")


def status(profile: Profile) -> dict[str, bool]:
    from devstack import identity

    running = {
        "kafka": _pid_alive(profile.home / "kafka" / "broker.pid") is not None
        and _port_open(profile.kafka_port),
        "postgres": (profile.home / "postgres" / "data" / "postmaster.pid").exists()
        and _port_open(profile.postgres_port),
    }
    if profile.name in identity.IDENTITY_PROFILES:
        running["identity"] = identity.identity_running(identity.IDENTITY_PROFILES[profile.name])
    return running
