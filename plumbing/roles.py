"""PostgreSQL least privilege: one login role per service, owning only its own schema.

Run once per database by an administrator (the devstack does at `up`; in Kubernetes, a Job), idempotent:
`python -m plumbing.roles --database-url ADMIN_URL [--password-dir DIR]`; `python -m plumbing.roles url
--database-url ADMIN_URL --service NAME` prints the URL a service connects with. It creates the roles (no
superuser, no CREATEDB, no CREATEROLE), the schemas with their owners, the shared schemas' tables, and
exactly the grants the services need:

| role | owns | may also |
|---|---|---|
| vc_intake | `intake`, `keystore` | — |
| vc_ledger | `ledger` (and its rebuilds) | read `keystore.data_keys` (to open seals) |
| vc_assessment | `assessment` | — |
| vc_dashboard | `dashboard` | — |
| every service | — | insert into and read `audit.access_log` (the administrator's: none may change it) |

Each service role has CREATE on the database only so that a rebuild can make `<schema>_rebuild`; every
schema a service uses is made here first, with its owner, so none can be taken by another role.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from plumbing.audit import AUDIT_SCHEMA, prepare_audit
from plumbing.personal import KEYSTORE_SCHEMA, prepare_keystore


@dataclass(frozen=True)
class ServiceRole:
    service: str
    schemas: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"vc_{self.service}"


SERVICE_ROLES = (
    ServiceRole("intake", ("intake", KEYSTORE_SCHEMA)),
    ServiceRole("ledger", ("ledger",)),
    ServiceRole("assessment", ("assessment",)),
    ServiceRole("dashboard", ("dashboard",)),
)
ROLE_BY_SERVICE = {role.service: role for role in SERVICE_ROLES}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a plain lower-case identifier")
    return f'"{name}"'


def service_database_url(admin_url: str, service: str, password: str | None) -> str:
    """The URL a service connects with: the administrator's host, port and database, the service's role."""
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    user = ROLE_BY_SERVICE[service].name
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    return urlunsplit((parts.scheme, f"{credentials}@{host}{port}", parts.path, parts.query, ""))


async def set_up_roles(admin_url: str, passwords: dict[str, str] | None = None) -> None:
    """Create or update the roles, schemas and grants (idempotent; as a role with CREATEROLE)."""
    conn = await asyncpg.connect(admin_url)
    try:
        database = await conn.fetchval("SELECT current_database()")
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('villagecounsel-roles'))")
            for role in SERVICE_ROLES:
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role.name)
                options = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS"
                verb = "ALTER" if exists else "CREATE"
                await conn.execute(f"{verb} ROLE {_ident(role.name)} {options}")
                password = (passwords or {}).get(role.service)
                if password is not None:
                    await conn.execute(f"ALTER ROLE {_ident(role.name)} PASSWORD {_literal(password)}")
                await conn.execute(
                    f"GRANT CONNECT, CREATE ON DATABASE {_ident(database)} TO {_ident(role.name)}"
                )
                for schema in role.schemas:
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
                    await conn.execute(f"ALTER SCHEMA {_ident(schema)} OWNER TO {_ident(role.name)}")
            await prepare_keystore(conn)
            await prepare_audit(conn)
            for role in SERVICE_ROLES:
                for schema in role.schemas:
                    await _hand_over_tables(conn, schema, role.name)
            ledger = _ident(ROLE_BY_SERVICE["ledger"].name)
            await conn.execute(f"GRANT USAGE ON SCHEMA {_ident(KEYSTORE_SCHEMA)} TO {ledger}")
            await conn.execute(f"GRANT SELECT ON {_ident(KEYSTORE_SCHEMA)}.data_keys TO {ledger}")
            for role in SERVICE_ROLES:
                name = _ident(role.name)
                await conn.execute(f"GRANT USAGE ON SCHEMA {_ident(AUDIT_SCHEMA)} TO {name}")
                await conn.execute(f"GRANT SELECT, INSERT ON {_ident(AUDIT_SCHEMA)}.access_log TO {name}")
                await conn.execute(
                    f"GRANT USAGE ON SEQUENCE {_ident(AUDIT_SCHEMA)}.access_log_access_id_seq TO {name}"
                )
            await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        await conn.close()


async def _hand_over_tables(conn: asyncpg.Connection, schema: str, owner: str) -> None:
    """A schema's tables belong to the schema's owner: those the administrator's migrations made here, and
    those of a database that ran before roles were split (their sequences follow their tables)."""
    for row in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tableowner <> $2", schema, owner
    ):
        await conn.execute(
            f"ALTER TABLE {_ident(schema)}.{_ident(row['tablename'])} OWNER TO {_ident(owner)}"
        )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def main(argv: list[str]) -> int:
    if argv[:1] == ["url"]:
        urls = argparse.ArgumentParser(prog="python -m plumbing.roles url")
        urls.add_argument("--database-url", required=True, help="the administrator's URL")
        urls.add_argument("--service", required=True, choices=sorted(ROLE_BY_SERVICE))
        wanted = urls.parse_args(argv[1:])
        print(service_database_url(wanted.database_url, wanted.service, None))  # noqa: T201 - a command
        return 0
    parser = argparse.ArgumentParser(prog="python -m plumbing.roles", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="an administrator's URL (CREATEROLE)")
    parser.add_argument(
        "--password-dir",
        type=Path,
        help="a folder with a file per service (intake, ledger, assessment, dashboard): its password",
    )
    args = parser.parse_args(argv)
    passwords = None
    if args.password_dir is not None:
        passwords = {
            role.service: (args.password_dir / role.service).read_text().strip()
            for role in SERVICE_ROLES
            if (args.password_dir / role.service).exists()
        }
    asyncio.run(set_up_roles(args.database_url, passwords))
    print(f"roles ready: {', '.join(role.name for role in SERVICE_ROLES)}")  # noqa: T201 - a command
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
