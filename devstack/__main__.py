"""`python -m devstack up|down|status|env [--profile dev|test|bench] [--fresh] [--wipe] [--service NAME]`.

`up` and `env` print `export` lines: where Kafka and PostgreSQL are, the broker's security protocol and
CA; with `--service NAME` (intake, ledger, assessment, dashboard, integration-reader, admin) also that
Kafka user and the file holding its password, so a process can run as that service.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from devstack.broker_security import USERS, CredentialsMissing
from devstack.identity import IDENTITY_PROFILES
from devstack.stack import PROFILES, StackError, down, status, up


def print_identity_environment(profile: str) -> None:
    """The services' settings for the profile's identity provider (its JWKS URL, issuer, audience)."""
    if profile in IDENTITY_PROFILES:
        for name, value in IDENTITY_PROFILES[profile].service_environment().items():
            print(f"export {name}={value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="dev")
    parser.add_argument("--fresh", action="store_true", help="with up: wipe the profile's data first")
    parser.add_argument("--wipe", action="store_true", help="with down: delete the profile's data too")
    parser.add_argument("--service", choices=USERS, help="with up/env: the Kafka user to print settings for")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    try:
        if args.command == "up":
            up(profile, fresh=args.fresh)
            _print_environment(profile.environment(args.service))
            print_identity_environment(profile.name)
        elif args.command == "down":
            down(profile, wipe=args.wipe)
        elif args.command == "status":
            running = status(profile)
            for part, alive in running.items():
                print(f"{part}: {'running' if alive else 'stopped'}")
            return 0 if all(running.values()) else 3
        else:
            _print_environment(profile.environment(args.service))
            print_identity_environment(profile.name)
    except (StackError, CredentialsMissing) as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 1
    return 0


def _print_environment(variables: dict[str, str]) -> None:
    for name, value in variables.items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    sys.exit(main())
