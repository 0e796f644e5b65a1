"""Each Deployment's environment, as Kubernetes would give it (Secrets and the overlay's ConfigMap filled
in), is accepted by its service's settings in production: a variable missing or refused there would only
show as a pod that never starts (issue 15)."""

from __future__ import annotations

import base64
import os
import re
import secrets

import pytest
from pydantic import BaseModel

from services.assessment.settings import AssessmentSettings
from services.dashboard.settings import DashboardSettings
from services.intake.settings import IntakeSettings
from services.ledger.settings import LedgerSettings
from tests.support.deploy import OVERLAYS, named, render

SETTINGS: dict[str, type[BaseModel]] = {
    "intake": IntakeSettings,
    "ledger": LedgerSettings,
    "assessment": AssessmentSettings,
    "dashboard": DashboardSettings,
}
SECRET_VALUES = {
    "master-key": base64.b64encode(secrets.token_bytes(32)).decode(),
    "personal-digest-key": secrets.token_urlsafe(32),
    "password": secrets.token_urlsafe(16),
}


def pod_environment(overlay: str, service: str) -> dict[str, str]:
    docs = render(f"overlays/{overlay}")
    container = named(docs, "Deployment", service)["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container["env"]:
        if "value" in item:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
        else:
            value = SECRET_VALUES[item["valueFrom"]["secretKeyRef"]["key"]]
        env[item["name"]] = value
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_the_deployments_environment_is_accepted_in_production(
    overlay: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("VC_") or name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
            monkeypatch.delenv(name)
    env = pod_environment(overlay, service)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = SETTINGS[service]()
    dumped = settings.model_dump()
    assert dumped["environment"] == "production"
    assert dumped["jwt_jwks_url"] == env["VC_JWT_JWKS_URL"]
    assert "$(" not in dumped["database_url"], "the password is substituted"
    if service in ("intake", "ledger"):
        assert dumped["personal_master_key"] == SECRET_VALUES["master-key"]


def test_a_missing_jwks_url_is_refused_so_the_check_above_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("VC_"):
            monkeypatch.delenv(name)
    env = pod_environment("province", "assessment")
    del env["VC_JWT_JWKS_URL"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="JWKS"):
        AssessmentSettings()
