"""`python -m services.intake [serve]` runs the API; `... mint-token` signs a token for local use;
`... import FILE` imports history (a ledger file, CSV or .xlsx) as POST /v1/imports does.

The import runs as intake: with intake's settings (VC_KAFKA_* of the Kafka user `intake`, DATABASE_URL of
the key store, VC_PERSONAL_MASTER_KEY), e.g. `kubectl exec deploy/intake -- python -m services.intake
import ...`. Who imports is the official whose bearer token it is given (VC_IMPORT_TOKEN or
--token-file, never an argument: arguments show in `ps`): checked as the API checks it, a county bureau
or above, every village within the token's region."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import orjson

from plumbing.auth import AuthenticationFailed, KeysUnavailable, Role, TokenVerifier, mint_token
from plumbing.clock import SystemClock
from plumbing.logs import configure_logging
from plumbing.personal import Sealer, master_key_from_text
from plumbing.service import serve
from plumbing.tracing import Tracing
from services.intake.app import create_app
from services.intake.backfill import ImportOutcome, ImportRun, summary_lines
from services.intake.imports import detect_format
from services.intake.publisher import Publisher
from services.intake.sealing import Keystore, KeystoreUnavailable
from services.intake.settings import IntakeSettings

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 75  # EX_TEMPFAIL: run the same import again


def _progress(published: int, total: int, seconds: float) -> None:
    share = 100 * published / total if total else 100.0
    rate = published / seconds if seconds > 0 else 0.0
    print(
        f"published {published}/{total} rows ({share:.1f} %), {seconds:.1f} s, {rate:.0f} rows/s", flush=True
    )


async def import_file(settings: IntakeSettings, path: Path, token: str, *, dry_run: bool) -> ImportOutcome:
    principal = await TokenVerifier(settings).principal(token)
    print(f"importing {path} as {principal.subject} ({principal.role}, region {principal.region_code})")
    keystore = Keystore(
        settings.database_url,
        Sealer(master_key_from_text(settings.personal_master_key)),
        settings.keystore_timeout_seconds,
    )
    spans = Tracing.from_environment("intake")
    publisher = Publisher(
        settings.kafka_connection(),
        max(settings.publish_timeout_seconds, 30.0),
        settings.producer_recreate_after_failures,
        spans.tracer,
        settings.producer_recreate_after_seconds,
    )
    run = ImportRun(keystore, publisher, batch_size=settings.import_batch_records, progress=_progress)
    with path.open("rb") as head:
        file_format = detect_format(head.read(4), path.name)
    spans.start()
    if not dry_run:
        await publisher.start()
    try:
        return await run.run(
            lambda: path.open("rb"),
            file_format,
            principal,
            SystemClock().now(),
            timedelta(seconds=settings.clock_skew_seconds),
            dry_run=dry_run,
        )
    finally:
        await publisher.stop()
        await keystore.stop()
        spans.stop()


def run_import(args: argparse.Namespace, settings: IntakeSettings) -> int:
    token = os.environ.get("VC_IMPORT_TOKEN", "")
    if args.token_file is not None:
        token = Path(args.token_file).read_text().strip()
    if not token:
        print("give the importing official's token: VC_IMPORT_TOKEN or --token-file", file=sys.stderr)
        return EXIT_USAGE
    path = Path(args.file)
    if not path.is_file():
        print(f"no such file: {path}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging("intake-import", "WARNING")
    try:
        outcome = asyncio.run(import_file(settings, path, token, dry_run=args.dry_run))
    except AuthenticationFailed as error:
        print(f"the token is refused: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (KeysUnavailable, KeystoreUnavailable) as error:
        print(f"not available, nothing published; try again: {type(error).__name__}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    for line in summary_lines(outcome):
        print(line)
    if args.errors_json is not None:
        Path(args.errors_json).write_bytes(
            orjson.dumps(outcome.as_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        )
    print(f"{outcome.seconds:.1f} s")
    if outcome.check.errors:
        return EXIT_INVALID
    return EXIT_UNAVAILABLE if outcome.stopped else 0


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
    bulk = commands.add_parser(
        "import",
        help="import history: a ledger file (CSV or .xlsx) in the layout the ledger exports; all or nothing",
    )
    bulk.add_argument("file", help="the ledger file (.csv or .xlsx)")
    bulk.add_argument(
        "--dry-run", action="store_true", help="check every row, list every error, publish nothing"
    )
    bulk.add_argument("--token-file", help="a file holding the official's token (else VC_IMPORT_TOKEN)")
    bulk.add_argument("--errors-json", help="write the result with every error to this file")
    args = parser.parse_args(argv)
    settings = IntakeSettings()
    if args.command == "import":
        return run_import(args, settings)
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
    return serve(create_app(settings), settings)  # serve tunes the collector (plumbing/service.py)


if __name__ == "__main__":
    sys.exit(main())
