"""`python -m services.intake [serve]` runs the API; `... mint-token` signs a token for local use."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from plumbing.auth import Role, mint_token
from plumbing.clock import SystemClock
from plumbing.service import serve
from services.intake.app import create_app
from services.intake.settings import IntakeSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.intake")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP API (the default)")
    mint = commands.add_parser(
        "mint-token", help="sign a token with the configured key, for local use and tests"
    )
    mint.add_argument("--subject", required=True, help="the principal; for an advisor, their advisor_id")
    mint.add_argument("--role", required=True, choices=[role.value for role in Role])
    mint.add_argument("--region", required=True, help="division code the principal acts within")
    mint.add_argument("--hours", type=float, default=12.0)
    args = parser.parse_args(argv)
    settings = IntakeSettings()
    if args.command == "mint-token":
        token = mint_token(
            settings,
            subject=args.subject,
            role=Role(args.role),
            region_code=args.region,
            now=SystemClock().now(),
            lifetime=timedelta(hours=args.hours),
        )
        print(token)
        return 0
    return serve(create_app(settings), settings)


if __name__ == "__main__":
    sys.exit(main())
