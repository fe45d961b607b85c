"""Postgres access: one pool per service, confined to the service's own schema."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeAlias

import asyncpg
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    #: A connection as handlers and stores see it: plain, or borrowed from a pool.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def ident(name: str) -> str:
    """``name`` quoted as an SQL identifier (a schema, table or role), or ValueError.

    Identifiers cannot be bound as parameters; this is the one place SQL text is
    built from a name that is not a constant (tests/unit/test_sql_parameterised.py
    allows nothing else).
    """
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a plain SQL identifier")
    return f'"{name}"'


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """A released connection's reset: nothing beyond asyncpg's own (roll back an open
    transaction, drop listeners).

    asyncpg's default sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release: a round trip per batch, per relay wake, per HTTP request, 11 % of
    the pipeline's statements at 200 reports/s. Nothing the services run on a pooled
    connection leaves session state behind: no cursors outside a transaction, no LISTEN,
    ``SET LOCAL`` only, and session locks (the outbox relay's, the score publisher's) are
    taken through :func:`session_lock`, which releases them or drops the connection.
    Migrations change role on a connection of their own.
    """


async def create_pool(dsn: str, schema: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see only ``schema`` (plus public) by default."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        reset=_keep_session,
        server_settings={
            "search_path": f"{schema},public",
            "application_name": schema,
            # A prepared statement's generic plan is made on its sixth run for the table as it
            # was then: ``key = ANY($1)`` planned while a table was small is a sequential scan,
            # kept until the table is analysed again (never, with autovacuum off). Batches
            # vary in size and tables grow, so each run is planned for its own keys (tens of
            # µs a statement, per batch).
            "plan_cache_mode": "force_custom_plan",
        },
        command_timeout=60,
    )
    assert pool is not None
    return pool


def schema_lock_id(base: int, schema: str) -> int:
    """A session-lock id for one job (``base``, a million apart per job) in one schema.

    Advisory locks are database-wide and the services share a database, one schema
    each: the schema's byte sum keeps one service's lock from holding up another's.
    """
    return base + sum(schema.encode())


@asynccontextmanager
async def session_lock(conn: Connection, lock_id: int) -> AsyncIterator[bool]:
    """Try the session-level advisory lock ``lock_id``; yields whether this session holds it.

    Released on leaving. Pooled connections are not reset on release (:func:`create_pool`),
    so if releasing fails the connection is terminated: the lock ends with its session
    rather than going back to the pool held, where no other instance could take it.
    """
    taken = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_id))
    try:
        yield taken
    finally:
        if taken and not conn.is_closed():
            try:
                await conn.execute("SELECT pg_advisory_unlock($1)", lock_id)
            except BaseException:
                conn.terminate()
                raise


_TRANSIENT_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "53300",  # too_many_connections
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
    "08000",
    "08003",
    "08006",
    "08001",
    "08004",
}


def is_transient(exc: BaseException) -> bool:
    """Failures that go away by waiting: the database or broker down, a deadlock, a timeout.

    These are retried forever and never skip a message; anything else is a fault
    of the message or the code and ends in the dead-letter topic.
    """
    if isinstance(
        exc,
        (
            ConnectionError,
            TimeoutError,
            asyncio.TimeoutError,
            socket.gaierror,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
        ),
    ):
        return True
    if isinstance(exc, OSError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in _TRANSIENT_SQLSTATES:
        return True
    if isinstance(
        exc, (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError)
    ):
        return True
    # Only an explicit ``raise ... from``: a bug raised while handling an outage is still a bug.
    cause = exc.__cause__
    return cause is not None and cause is not exc and is_transient(cause)
