"""Versioned SQL migrations, one schema per service.

The shared plumbing (``shared/migrations/*.sql``) is applied first, then the
service's own (``services/<name>/migrations/*.sql``). Files are named
``NNNN_what.sql`` and applied in order, each in its own transaction, recorded
with a checksum so an edited applied migration is refused rather than ignored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.db import ident
from shared.dbroles import ensure_roles, grant_runtime, owner_role, take_ownership

if TYPE_CHECKING:
    from shared.db import Connection

SHARED_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# One lock id for every runner: migrations of different services never race on DDL.
_LOCK_ID = 7_311_311


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    scope: str  # "shared" or the service name
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(scope: str, directory: Path) -> list[Migration]:
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_what.sql")
        found.append(Migration(scope, match.group(1), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return found


async def migrate(conn: Connection, schema: str, service_dir: Path | None) -> list[str]:
    """Bring ``schema`` up to date; returns the names of the migrations applied now."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise MigrationError(f"schema name {schema!r} is not a plain identifier")
    plan = discover("shared", SHARED_DIR)
    if service_dir is not None:
        plan += discover(schema, service_dir)
    applied_now: list[str] = []
    quoted = ident(schema)
    owner = owner_role(schema)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await ensure_roles(conn, schema)
        # Migrations run as the schema's owner, so what they create is the owner's and the
        # runtime role's grants below cover it, whoever connected to migrate.
        me = await conn.fetchrow(
            "SELECT current_user AS name, rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        assert me is not None
        if me["name"] != owner:
            if not me["rolsuper"]:
                raise MigrationError(
                    f"migrate schema {schema} as its owner role {owner} "
                    f"(DATABASE_MIGRATION_URL) or as a superuser, not as {me['name']}"
                )
            await take_ownership(conn, schema)
            await conn.execute(f"SET ROLE {ident(owner)}")
        elif not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f"CREATE SCHEMA {quoted}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
                scope text NOT NULL, version text NOT NULL, name text NOT NULL,
                checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (scope, version))"""
        )
        # Identifiers cannot be bound: the schema name goes through ident().
        rows = await conn.fetch(
            f"SELECT scope, version, name, checksum FROM {ident(schema)}.schema_migrations"  # noqa: S608
        )
        done = {(r["scope"], r["version"]): r for r in rows}
        for m in plan:
            seen = done.get((m.scope, m.version))
            if seen is not None:
                if seen["checksum"] != m.checksum:
                    raise MigrationError(
                        f"{m.scope}/{m.name} was changed after it was applied to schema {schema}; "
                        "add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {ident(schema)}, public")
                await conn.execute(m.sql)
                await conn.execute(
                    f"INSERT INTO {ident(schema)}.schema_migrations (scope, version, name, checksum) "  # noqa: S608
                    "VALUES ($1, $2, $3, $4)",
                    m.scope,
                    m.version,
                    m.name,
                    m.checksum,
                )
            applied_now.append(f"{m.scope}/{m.name}")
        await grant_runtime(conn, schema)
    finally:
        await conn.execute("RESET ROLE")
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return applied_now
