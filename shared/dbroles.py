"""Least-privilege database roles, two per service schema.

``<schema>_owner`` owns the schema and everything in it: migrations run as it.
``<schema>_runtime`` is what the running service connects as: it may use the
schema and SELECT/INSERT/UPDATE/DELETE its tables (read-only on
``schema_migrations``), and nothing else: no DDL, no other service's schema.

Roles are cluster-wide, so they carry the schema's name (each test run has its
own schema) and a comment naming the database they serve, by which
``shared.devstack`` drops them with the database. In production the roles are
made by deploy/ (with passwords) before the first migration; here they are
made only if missing and only if the migrating user may make roles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.db import ident

if TYPE_CHECKING:
    from shared.db import Connection

#: Comment on every role made here: which database it was made for.
COMMENT_PREFIX = "citycases role for database "


class RoleError(RuntimeError):
    pass


def owner_role(schema: str) -> str:
    return f"{schema}_owner"


def runtime_role(schema: str) -> str:
    return f"{schema}_runtime"


async def _exists(conn: Connection, role: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role))


async def ensure_roles(conn: Connection, schema: str) -> None:
    """Make the owner and runtime roles if missing; RoleError if they are missing and cannot be."""
    me = await conn.fetchrow(
        "SELECT rolsuper, rolcreaterole, current_database() AS db FROM pg_roles "
        "WHERE rolname = current_user"
    )
    assert me is not None
    for role in (owner_role(schema), runtime_role(schema)):
        if await _exists(conn, role):
            continue
        if not (me["rolsuper"] or me["rolcreaterole"]):
            raise RoleError(
                f"database role {role} does not exist and the migrating user may not create "
                "it: create it first (deploy/postgres/init-roles.sh does)"
            )
        # LOGIN without a password: with password authentication nobody can log in as it
        # until an operator sets one (deploy/ does); local trust authentication lets tests.
        await conn.execute(f"CREATE ROLE {ident(role)} LOGIN")
        # COMMENT takes a literal, not a parameter: the values travel as bound settings and
        # format() quotes them inside the server.
        await conn.execute(
            "SELECT set_config('citycases.role', $1, false), "
            "set_config('citycases.comment', $2, false)",
            role,
            COMMENT_PREFIX + str(me["db"]),
        )
        await conn.execute(
            "DO $$ BEGIN EXECUTE format('COMMENT ON ROLE %I IS %L', "
            "current_setting('citycases.role'), current_setting('citycases.comment')); END $$"
        )


async def take_ownership(conn: Connection, schema: str) -> None:
    """Make the owner role own the schema and its tables (a superuser made them before)."""
    owner = owner_role(schema)
    current = await conn.fetchval(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", schema
    )
    if current is None:
        await conn.execute(f"CREATE SCHEMA {ident(schema)} AUTHORIZATION {ident(owner)}")
        return
    if current == owner:
        return
    await conn.execute(f"ALTER SCHEMA {ident(schema)} OWNER TO {ident(owner)}")
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relowner <> $2::regrole",
        schema,
        owner,
    )
    for row in rows:
        # Sequences owned by a table's columns follow their table.
        await conn.execute(
            f"ALTER TABLE {ident(schema)}.{ident(row['relname'])} OWNER TO {ident(owner)}"
        )


async def grant_runtime(conn: Connection, schema: str) -> None:
    """The runtime role's privileges, restated after every migration run (idempotent)."""
    s, runtime = ident(schema), ident(runtime_role(schema))
    await conn.execute(f"REVOKE ALL ON SCHEMA {s} FROM PUBLIC")
    await conn.execute(f"GRANT USAGE ON SCHEMA {s} TO {runtime}")
    await conn.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {runtime}"
    )
    await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {runtime}")
    # Which migrations ran is the owner's record; the service may only read it.
    await conn.execute(
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {s}.schema_migrations FROM {runtime}"
    )


async def drop_roles_of_database(conn: Connection, database: str) -> list[str]:
    """Drop the roles made for ``database`` (after it is dropped: they own nothing else)."""
    rows = await conn.fetch(
        "SELECT r.rolname FROM pg_roles r JOIN pg_shdescription d "
        "ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass WHERE d.description = $1",
        COMMENT_PREFIX + database,
    )
    dropped = []
    for row in rows:
        await conn.execute(f"DROP ROLE IF EXISTS {ident(row['rolname'])}")
        dropped.append(row["rolname"])
    return dropped
