"""What every service's routes depend on, typed, in one place: the caller, the database, the clock.
`create_app` puts the parts on the app's state with `wire`; a route module (`services/<name>/routes.py`)
declares `caller: Caller`, `db: Db`, `clock: AppClock` and never reaches into a closure.

The database is handed over as a `Database` whose connection a route takes when it needs one
(`async with db.acquire() as conn`), not as a connection taken before the route runs: FastAPI solves
dependencies before it validates the path and query, so a connection dependency would hold a pooled
connection for every refused request, and answer a bad request with 503 instead of the 422 naming the
field while PostgreSQL is away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import asyncpg
from asyncpg.pool import PoolAcquireContext
from fastapi import Depends, FastAPI, Request

from plumbing.auth import Principal, bearer_principal
from plumbing.clock import Clock
from plumbing.settings import TokenSettings

Authenticate = Callable[[Request], Awaitable[Principal]]


def wire(
    app: FastAPI, *, settings: TokenSettings, clock: Clock, open_region: str | None, **parts: Any
) -> None:
    """The app's state the dependencies below read: the settings, the clock, how a caller is
    authenticated, and the service's own parts (its projection host, producer, sealer...) by name."""
    app.state.settings = settings
    app.state.clock = clock
    app.state.authenticate = bearer_principal(settings, open_region)
    for name, part in parts.items():
        setattr(app.state, name, part)


async def _caller(request: Request) -> Principal:
    authenticate: Authenticate = request.app.state.authenticate
    return await authenticate(request)


class Database:
    """The service's PostgreSQL pool, reached when a route takes a connection."""

    def __init__(self, host: Any) -> None:
        self._host = host

    def acquire(self) -> PoolAcquireContext:
        pool: asyncpg.Pool = self._host.pool
        return pool.acquire()

    @property
    def pool(self) -> asyncpg.Pool:
        pool: asyncpg.Pool = self._host.pool
        return pool


def _database(request: Request) -> Database:
    return Database(request.app.state.host)


def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


# The authenticated caller (401 saying why otherwise; in local mode a GET without a token reads the open
# region).
Caller = Annotated[Principal, Depends(_caller)]
# The service's database: `async with db.acquire() as conn`.
Db = Annotated[Database, Depends(_database)]
# The service's clock (a ManualClock in tests).
AppClock = Annotated[Clock, Depends(_clock)]
