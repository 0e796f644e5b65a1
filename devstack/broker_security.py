"""The devstack broker is closed: SASL/SCRAM-SHA-512 over TLS for clients, TLS with client certificates
between the broker and its controller, ACLs from `contracts/access.py`, nothing for anonymous clients.

Per profile, under `.local/<profile>/kafka/`: `tls/ca.pem` (the CA every client trusts), `tls/broker.pem`
(the broker's key and certificate, for 127.0.0.1 and localhost), and `credentials/<user>.password` (0600)
for the devstack's super user `admin` and each principal of the ACL table. SCRAM credentials are written
into the storage at format time; ACLs and topics are created by `admin` at every `devstack up`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.protocol.admin import CreateAclsRequest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contracts.access import PRINCIPALS, Acl
from contracts.topics import TOPICS
from plumbing.kafka import KafkaConnection, SaslMechanism, create_admin, ensure_topics

ADMIN = "admin"  # the devstack's super user: formats, creates topics and ACLs; the tests inject with it
BROKER_CERTIFICATE_NAME = "villagecounsel-devstack-broker"
# The broker's own identity on the controller listener (TLS client certificate): a super user too.
BROKER_PRINCIPAL = f"User:CN={BROKER_CERTIFICATE_NAME}"
SCRAM: SaslMechanism = "SCRAM-SHA-512"
USERS = (ADMIN, *(principal.name for principal in PRINCIPALS))


class CredentialsMissing(RuntimeError):
    """The profile's broker was formatted without this devstack's users (before the broker was closed)."""


def tls_folder(home: Path) -> Path:
    return home / "tls"


def ca_file(home: Path) -> Path:
    return tls_folder(home) / "ca.pem"


def password_file(home: Path, user: str) -> Path:
    return home / "credentials" / f"{user}.password"


def ensure_tls(home: Path) -> None:
    """A CA and the broker's certificate signed by it, made once per profile. The CA's key is not kept:
    nothing else is ever signed, so a client that trusts ca.pem trusts exactly this broker."""
    folder = tls_folder(home)
    if (folder / "broker.pem").exists() and ca_file(home).exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "villagecounsel devstack CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    broker = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CERTIFICATE_NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            # server for its listeners, client for its own connections to the controller listener
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(folder / "broker.pem", key_pem + broker.public_bytes(serialization.Encoding.PEM) + ca_pem)
    ca_file(home).write_bytes(ca_pem)


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def new_credentials(home: Path) -> list[str]:
    """A fresh random password for every user; returns StorageTool's `--add-scram` arguments."""
    arguments = []
    for user in USERS:
        password = secrets.token_urlsafe(24)
        _write_private(password_file(home, user), password.encode())
        arguments += ["--add-scram", f"{SCRAM}=[name={user},password={password}]"]
    return arguments


def password(home: Path, user: str) -> str:
    try:
        return password_file(home, user).read_text().strip()
    except FileNotFoundError:
        raise CredentialsMissing(f"no Kafka password for {user} in {home / 'credentials'}") from None


def security_properties(
    home: Path, kafka_port: int, controller_port: int, proxied: tuple[int, int] | None = None
) -> list[str]:
    """server.properties lines: a SASL_SSL listener for clients and between brokers, an SSL controller
    listener that demands a certificate of this devstack's CA, the StandardAuthorizer denying by default.

    `proxied` (listen port, proxy port): a second SASL_SSL listener, PROXIED, that advertises the port of a
    TCP proxy in front of it (devstack/chaos.py), so that clients bootstrapped through the proxy keep
    connecting through it: a broker tells its clients where to connect, and the main listener would send
    them around the proxy."""
    tls = tls_folder(home)
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{password(home, ADMIN)}";'
    )
    listeners = [f"SASL_SSL://127.0.0.1:{kafka_port}", f"CONTROLLER://127.0.0.1:{controller_port}"]
    advertised = [f"SASL_SSL://127.0.0.1:{kafka_port}"]
    protocols = ["SASL_SSL:SASL_SSL", "CONTROLLER:SSL"]
    extra = []
    if proxied is not None:
        listeners.append(f"PROXIED://127.0.0.1:{proxied[0]}")
        advertised.append(f"PROXIED://127.0.0.1:{proxied[1]}")
        protocols.append("PROXIED:SASL_SSL")
        extra.append(f"listener.name.proxied.scram-sha-512.sasl.jaas.config={jaas}")
    return [
        f"listeners={','.join(listeners)}",
        f"advertised.listeners={','.join(advertised)}",
        f"listener.security.protocol.map={','.join(protocols)}",
        *extra,
        "inter.broker.listener.name=SASL_SSL",
        "controller.listener.names=CONTROLLER",
        f"sasl.enabled.mechanisms={SCRAM}",
        f"sasl.mechanism.inter.broker.protocol={SCRAM}",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={tls / 'broker.pem'}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={tls / 'ca.pem'}",
        "listener.name.controller.ssl.client.auth=required",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN};{BROKER_PRINCIPAL}",
    ]


def connection(home: Path, bootstrap_servers: str, user: str) -> KafkaConnection:
    return KafkaConnection(
        bootstrap_servers=bootstrap_servers,
        security_protocol="SASL_SSL",
        sasl_mechanism=SCRAM,
        username=user,
        password=password(home, user),
        ca_file=ca_file(home),
    )


def client_environment(home: Path, bootstrap_servers: str, user: str | None) -> dict[str, str]:
    """The variables a process needs to reach this broker, as `user` when given (password by file)."""
    found = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "VC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "VC_KAFKA_SASL_MECHANISM": SCRAM,
        "VC_KAFKA_CA_FILE": str(ca_file(home)),
    }
    if user is not None:
        password(home, user)  # fails with a clear message when the user does not exist here
        found["VC_KAFKA_SASL_USERNAME"] = user
        found["VC_KAFKA_SASL_PASSWORD_FILE"] = str(password_file(home, user))
    return found


# Kafka's protocol codes (org.apache.kafka.common.acl / resource): aiokafka has the request, not the enums.
_RESOURCE_TYPE = {"topic": 2, "group": 3}
_PATTERN_TYPE = {"literal": 3, "prefix": 4}
_OPERATION = {"Read": 3, "Write": 4, "Describe": 8}
_ALLOW = 3


async def _apply_acls(admin_kafka: KafkaConnection) -> int:
    """Every ACL of the table, created by the super user (creating an existing ACL changes nothing)."""
    admin = create_admin(admin_kafka)
    await admin.start()
    created = 0
    try:
        for principal in PRINCIPALS:
            for acl in principal.acls:
                for operation in acl.operations:
                    await _create_acl(admin, f"User:{principal.name}", acl, operation)
                    created += 1
    finally:
        await admin.close()
    return created


async def _create_acl(admin: object, principal: str, acl: Acl, operation: str) -> None:
    request = CreateAclsRequest(
        _RESOURCE_TYPE[acl.resource_type],
        acl.name,
        _PATTERN_TYPE[acl.pattern],
        principal,
        "*",
        _OPERATION[operation],
        _ALLOW,
    )
    # aiokafka ships CreateAcls in its protocol but no public method for it (0.14): the admin client's
    # request path sends it as create_topics sends CreateTopics.
    response = await admin._send_request(request)  # type: ignore[attr-defined]
    for code, message in response.creation_responses:
        if code != 0:
            raise RuntimeError(f"Kafka refused the ACL {principal} {operation} {acl}: {code} {message}")


async def _close_the_broker(admin_kafka: KafkaConnection) -> int:
    await ensure_topics(admin_kafka, TOPICS)
    return await _apply_acls(admin_kafka)


def set_up_access(home: Path, bootstrap_servers: str) -> int:
    """Topics and ACLs, as the super user; returns how many ACL entries the table holds. Blocking, like
    the rest of `up`; called from a running event loop (a test), it runs on a thread of its own."""
    admin = connection(home, bootstrap_servers, ADMIN)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_close_the_broker(admin))
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, _close_the_broker(admin)).result()
