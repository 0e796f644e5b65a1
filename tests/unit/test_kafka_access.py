"""The table of Kafka principals and ACLs (contracts/access.py) keeps the rules of issue 12, and the settings
refuse an incomplete or open connection where it matters."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.access import PRINCIPALS, SERVICE_PRINCIPALS
from contracts.topics import DLQ_SUFFIX, INPUT_TOPICS, TOPICS, dead_letter_topic
from plumbing.kafka import KafkaConnection
from plumbing.settings import ServiceSettings, TokenSettings

MAIN_TOPICS = [spec.name for spec in TOPICS if not spec.name.endswith(DLQ_SUFFIX)]


def writers(topic: str) -> set[str]:
    return {principal.name for principal in PRINCIPALS if topic in principal.writes}


def readers(topic: str) -> set[str]:
    return {principal.name for principal in PRINCIPALS if topic in principal.reads}


def test_every_principal_names_only_topics_that_exist() -> None:
    names = {spec.name for spec in TOPICS}
    for principal in PRINCIPALS:
        assert set(principal.writes) | set(principal.reads) <= names, principal.name


@pytest.mark.parametrize("topic", MAIN_TOPICS)
def test_every_topic_has_exactly_one_writer(topic: str) -> None:
    assert len(writers(topic)) == 1, (topic, writers(topic))


def test_only_intake_writes_the_input_topics_and_only_the_assessment_writes_its_own() -> None:
    for topic in INPUT_TOPICS:
        assert writers(topic) == {"intake"}
    assert writers("assessment") == {"assessment"}


@pytest.mark.parametrize("topic", MAIN_TOPICS)
def test_a_dead_letter_topic_is_written_by_exactly_the_services_that_consume_its_topic(topic: str) -> None:
    consuming_services = {name for name in readers(topic) if name in SERVICE_PRINCIPALS}
    assert consuming_services, f"no service consumes {topic}"
    assert writers(dead_letter_topic(topic)) == consuming_services


def test_every_consuming_service_has_its_own_consumer_group_and_nobody_shares_one() -> None:
    groups = [group for principal in PRINCIPALS for group in principal.groups]
    assert len(groups) == len(set(groups)), "a consumer group belongs to one principal"
    for principal in PRINCIPALS:
        if principal.reads and not principal.integration:
            assert principal.groups == (principal.name,), "the projection's name is its consumer group"


def test_integration_users_only_read_in_groups_named_after_them() -> None:
    integrations = [principal for principal in PRINCIPALS if principal.integration]
    assert integrations, "an example integration user"
    for principal in integrations:
        assert principal.writes == ()
        assert principal.reads
        assert principal.groups == ()
        assert principal.group_prefix == principal.name
        assert not any(dead_letter_topic(topic) in principal.reads for topic in MAIN_TOPICS)


def test_no_principal_is_granted_more_than_read_write_and_describe_and_nothing_on_the_cluster() -> None:
    for principal in PRINCIPALS:
        for acl in principal.acls:
            assert acl.resource_type in {"topic", "group"}
            assert set(acl.operations) <= {"Read", "Write", "Describe"}
            assert acl.pattern == "literal" or acl.resource_type == "group"


def test_sasl_needs_a_user_and_exactly_one_password_source(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="VC_KAFKA_SASL_USERNAME"):
        ServiceSettings(kafka_security_protocol="SASL_SSL")
    with pytest.raises(ValidationError, match="exactly one of"):
        ServiceSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="ledger")
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    with pytest.raises(ValidationError, match="exactly one of"):
        ServiceSettings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="ledger",
            kafka_sasl_password="given",
            kafka_sasl_password_file=secret,
        )
    connection = ServiceSettings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="ledger", kafka_sasl_password_file=secret
    ).kafka_connection()
    assert (connection.username, connection.password, connection.principal) == (
        "ledger",
        "from-a-file",
        "ledger",
    )
    assert "from-a-file" not in repr(connection)


def test_an_open_broker_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="VC_KAFKA_SECURITY_PROTOCOL must be SASL_SSL"):
        TokenSettings(
            environment="production", jwt_algorithm="RS256", jwt_jwks_url="https://idp.example/jwks"
        )
    TokenSettings(environment="development")  # docker-compose and a local open broker


def test_a_connection_gives_every_client_the_same_options_and_one_tls_context() -> None:
    plain = KafkaConnection("127.0.0.1:9092").client_options()
    assert plain == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    closed = KafkaConnection("127.0.0.1:9093", "SASL_SSL", username="intake", password="p")
    options = closed.client_options()
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("intake", "p")
    assert options["ssl_context"] is closed.client_options()["ssl_context"], "built once, not per client"
    with pytest.raises(ValueError, match="needs a user name and a password"):
        KafkaConnection("127.0.0.1:9093", "SASL_SSL", username="intake")
