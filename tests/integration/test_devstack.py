"""`python -m devstack up` twice reuses what runs; `down` twice is harmless."""

from __future__ import annotations

from pathlib import Path

from devstack.stack import Profile, down, status, up

SCRATCH = Profile("idempotency", kafka_port=17092, controller_port=17093, postgres_port=17432)


def running_pids(profile: Profile) -> tuple[str, str]:
    kafka = (profile.home / "kafka" / "broker.pid").read_text().strip()
    postgres = (profile.home / "postgres" / "data" / "postmaster.pid").read_text().splitlines()[0]
    return kafka, postgres


def test_up_and_down_are_idempotent() -> None:
    try:
        up(SCRATCH)
        assert status(SCRATCH) == {"kafka": True, "postgres": True}
        first = running_pids(SCRATCH)
        up(SCRATCH)
        assert running_pids(SCRATCH) == first, "a second up started new servers instead of reusing them"
        down(SCRATCH)
        assert status(SCRATCH) == {"kafka": False, "postgres": False}
        down(SCRATCH)
        assert status(SCRATCH) == {"kafka": False, "postgres": False}
        up(SCRATCH)
        assert status(SCRATCH) == {"kafka": True, "postgres": True}
        assert Path(SCRATCH.home / "kafka" / "data" / "meta.properties").exists()
    finally:
        down(SCRATCH, wipe=True)
    assert not SCRATCH.home.exists()
