"""Makes the dev overlay's secret values, random, in deploy/k8s/overlays/dev/secrets/ (git ignores it):

    python3 deploy/k8s/overlays/dev/make_secrets.py        # once, before `kustomize build`; keeps existing

kustomize's secretGenerator (kustomization.yaml beside this file) turns them into the Secrets
villagecounsel-personal, villagecounsel-ledger and villagecounsel-pg-<service>. Existing files are kept, so
running it again changes nothing (a new master key would make every stored personal field unreadable).
Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import base64
import secrets
import sys
from pathlib import Path

SERVICES = ("intake", "ledger", "assessment", "dashboard")


def values() -> dict[str, str]:
    made = {
        "personal-master-key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "personal-digest-key": secrets.token_urlsafe(32),
    }
    for service in SERVICES:
        # URL-safe: the password goes into DATABASE_URL as it is
        made[f"pg-{service}.env"] = f"username=vc_{service}\npassword={secrets.token_urlsafe(24)}\n"
    return made


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in values().items():
        path = folder / name
        if not path.exists():
            path.write_text(value, encoding="utf-8")
            path.chmod(0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
