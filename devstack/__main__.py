"""`python -m devstack up|down|status|env [--profile dev|test|bench] [--fresh] [--wipe]`."""

from __future__ import annotations

import argparse
import sys

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
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    try:
        if args.command == "up":
            up(profile, fresh=args.fresh)
            print(f"export KAFKA_BOOTSTRAP_SERVERS={profile.kafka_bootstrap}")
            print(f"export DATABASE_URL={profile.database_url}")
            print_identity_environment(profile.name)
        elif args.command == "down":
            down(profile, wipe=args.wipe)
        elif args.command == "status":
            running = status(profile)
            for part, alive in running.items():
                print(f"{part}: {'running' if alive else 'stopped'}")
            return 0 if all(running.values()) else 3
        else:
            print(f"export KAFKA_BOOTSTRAP_SERVERS={profile.kafka_bootstrap}")
            print(f"export DATABASE_URL={profile.database_url}")
            print_identity_environment(profile.name)
    except StackError as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
