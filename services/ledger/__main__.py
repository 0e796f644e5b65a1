"""`python -m services.ledger [serve|rebuild|verify CODE]`."""

from __future__ import annotations

import asyncio
import sys

from plumbing.postgres import create_pool
from plumbing.service import projection_main
from services.ledger.app import create_app
from services.ledger.projection import SCHEMA, ledger_projection
from services.ledger.queries import first_broken_link, villages_under
from services.ledger.settings import LedgerSettings


async def verify(settings: LedgerSettings, region_code: str) -> int:
    """Check every village's chain under a region code; name the first broken link."""
    pool = await create_pool(settings.database_url, SCHEMA, 2)
    try:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            villages = await villages_under(conn, region_code)
            checked, broken = await first_broken_link(conn, villages)
    finally:
        await pool.close()
    if broken is not None:
        print(f"BROKEN: {broken}")
        return 1
    print(f"intact: {checked} village files under {region_code}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["verify"]:
        if len(argv) != 2:
            print("usage: python -m services.ledger verify REGION_OR_VILLAGE_CODE", file=sys.stderr)
            return 2
        return asyncio.run(verify(LedgerSettings(), argv[1]))
    settings = LedgerSettings()
    return projection_main(
        "ledger",
        lambda: create_app(settings),
        lambda: ledger_projection(settings.personal_digest_key.encode()),
        lambda: settings,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
