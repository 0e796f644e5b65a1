"""PostgreSQL helpers: pools bound to a service's schema, and numbered plain-SQL migrations."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection, whether opened alone or borrowed from a pool.
Connection = asyncpg.Connection | PoolConnectionProxy

RUNTIME_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def code_within_sql(column: str, prefix: str) -> str:
    """A condition: the code in `column` lies within the region whose codes start with `prefix` (a parameter
    placeholder such as `$1`; "" for the country). `column LIKE prefix || '%'` alone cannot use a btree index
    unless the database's collation is "C" (C.UTF-8 and en_US.UTF-8 are not), so every such read scanned
    the whole table: the 680,000 regions of a national deployment. The codes are ASCII digits, which sort
    before ':', so the same codes lie between the prefix and the prefix followed by ':', a range the index
    serves; the LIKE stays, so the meaning is exact whatever the column holds."""
    return f"({column} >= {prefix} AND {column} < ({prefix} || ':') AND {column} LIKE ({prefix} || '%'))"


class MigrationDrift(RuntimeError):
    """An applied migration's file changed afterwards: migrations are append-only."""


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def checked_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema name {schema!r} must be lower-case letters, digits and underscores")
    return schema


def read_migrations(component: str, folder: Path) -> list[Migration]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path} must be named NNN_lower_case_name.sql")
        found.append(Migration(component, int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations in {folder} share a number")
    return found


async def apply_migrations(conn: Connection, schema: str, migrations: list[Migration]) -> list[Migration]:
    """Apply, in one transaction, the migrations not yet recorded in `<schema>.schema_migrations`.

    Migrations use unqualified names: they run with the search_path set to `schema`, which lets the
    rebuild command apply the same files to a fresh schema.
    """
    checked_schema(schema)
    applied_now = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute("SELECT set_config('search_path', $1, true)", schema)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   component text NOT NULL,
                   version integer NOT NULL,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (component, version))"""
        )
        rows = await conn.fetch("SELECT component, version, checksum FROM schema_migrations")
        done = {(row["component"], row["version"]): row["checksum"] for row in rows}
        for migration in migrations:
            key = (migration.component, migration.version)
            if key in done:
                if done[key] != migration.checksum:
                    raise MigrationDrift(
                        f"{schema}: migration {migration.component}/{migration.version:03d}_{migration.name} "
                        "was changed after it was applied; add a new migration instead"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                migration.component,
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration)
    return applied_now


async def prepare_shared_schema(conn: Connection, schema: str, migrations: list[Migration]) -> None:
    """A schema several services use (the key store, the access log): migrated when missing or behind. A
    service whose role may only use it (least privilege, `plumbing.roles`) finds it made by the schema's
    owner or the administrator, and leaves it alone."""
    checked_schema(schema)
    try:
        async with conn.transaction():  # a savepoint inside a caller's transaction: a miss aborts only it
            rows = await conn.fetch(f'SELECT component, version FROM "{schema}".schema_migrations')  # noqa: S608 - a checked name
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        rows = []
    except asyncpg.InsufficientPrivilegeError:
        return
    applied = {(row["component"], row["version"]) for row in rows}
    if all((migration.component, migration.version) in applied for migration in migrations):
        return
    await apply_migrations(conn, schema, migrations)


async def create_pool(
    database_url: str, schema: str, max_size: int = 10, command_timeout: float | None = None
) -> asyncpg.Pool:
    """A pool whose connections resolve unqualified names in `schema` (after a rebuild, the new one).

    With `command_timeout`, a statement or a connection attempt that gets no answer for that long fails
    with TimeoutError: a connection whose server vanished without a FIN or a reset (a half-open one, a
    network that swallows packets) is otherwise waited on until the kernel gives up, hours later."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=max_size,
        command_timeout=command_timeout,
        timeout=60.0 if command_timeout is None else command_timeout,  # 60 s: asyncpg's own default
        server_settings={
            "search_path": checked_schema(schema),
            "application_name": f"villagecounsel-{schema}",
        },
    )
    if pool is None:
        raise RuntimeError("asyncpg.create_pool returned no pool")
    return pool


async def database_reachable(pool: asyncpg.Pool, timeout_seconds: float = 3) -> bool:
    try:
        value = await pool.fetchval("SELECT 1", timeout=timeout_seconds)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return bool(value == 1)
