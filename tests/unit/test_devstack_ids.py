"""Kafka cluster ids that StorageTool accepts on its command line."""

from __future__ import annotations

import base64

import pytest

from devstack.stack import EPHEMERAL_PORTS_START, PROFILES, Profile, kafka_cluster_id


def test_cluster_ids_are_16_bytes_of_url_safe_base64_never_starting_with_a_dash() -> None:
    ids = [kafka_cluster_id() for _ in range(2000)]
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 for cluster_id in ids)
    assert len(set(ids)) == len(ids)


def test_profiles_listen_below_the_ephemeral_port_range() -> None:
    for profile in PROFILES.values():
        for port in (profile.kafka_port, profile.controller_port, profile.postgres_port):
            assert port < EPHEMERAL_PORTS_START
    with pytest.raises(ValueError, match="below the ephemeral range"):
        Profile("scratch", kafka_port=49092, controller_port=49093, postgres_port=45432)
