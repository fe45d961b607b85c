"""API keys of the HTTP APIs: who a key speaks for, stored hashed, revocable at once.

A key names one principal: a ``channel`` (its reports come in on that channel),
a ``department`` (feedback on the cases it holds) or a ``centre`` (the
supervision/command centre: verification, call-back ratings, manual dispatch).
Only a SHA-256 of a key is stored, in the service's own ``access_keys`` table
(shared migration 0002); a key is shown once, when it is made. Every request
reads the table, so a revoked key is refused from the next request on.

    python -m shared.apikeys --service intake create --kind department --id sanitation
    python -m shared.apikeys --service dispatch create --kind centre --id command-centre
    python -m shared.apikeys --service intake revoke <key or its sha256>
    python -m shared.apikeys --service intake revoke -- -<key made before keys
                                                    stopped starting with '-'>
    python -m shared.apikeys --service intake list
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import re
import secrets
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import asyncpg

if TYPE_CHECKING:
    from shared.db import Connection

Kind = Literal["channel", "department", "centre"]
KINDS: tuple[Kind, ...] = get_args(Kind)
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Principal:
    """Who a key speaks for."""

    kind: Kind
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def key_hash(key: str) -> str:
    """SHA-256 of an API key, the only form in which a key is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_principal(kind: str, principal_id: str) -> Principal:
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not a key kind (one of {', '.join(KINDS)})")
    if not _ID.match(principal_id):
        raise ValueError(f"{principal_id!r} is not a {kind} id")
    return Principal(kind, principal_id)


def parse_dev_keys(spec: str) -> list[tuple[Principal, str]]:
    """``"channel:open311:k1,department:sanitation:k2"`` -> principals and their keys."""
    pairs = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        parts = [p.strip() for p in item.split(":", 2)]
        if len(parts) != 3 or not parts[2]:
            raise ValueError(f"{item.split(':')[0]!r}...: an API key is kind:id:key")
        pairs.append((parse_principal(parts[0], parts[1]), parts[2]))
    return pairs


# -- the table ------------------------------------------------------------------------


async def register_key(conn: Connection, key: str, principal: Principal, label: str = "") -> None:
    """Store ``key`` for ``principal``; a key revoked by an operator stays revoked."""
    await conn.execute(
        "INSERT INTO access_keys (key_hash, kind, principal_id, label) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (key_hash) DO UPDATE SET kind = EXCLUDED.kind, "
        "principal_id = EXCLUDED.principal_id",
        key_hash(key),
        principal.kind,
        principal.id,
        label,
    )


async def principal_for(conn: Connection, key: str) -> Principal | None:
    """The principal of an active key; None for an unknown or revoked one."""
    row = await conn.fetchrow(
        "SELECT kind, principal_id FROM access_keys WHERE key_hash = $1 AND NOT revoked",
        key_hash(key),
    )
    return None if row is None else Principal(row["kind"], row["principal_id"])


def new_key() -> str:
    """A fresh key of 256 random bits that never starts with '-'.

    A URL-safe token starts with '-' one time in 64, and the operator's
    ``revoke <key>`` would then read it as an option and refuse to run.
    Drawing again keeps all the other first characters equally likely.
    """
    while True:
        key = secrets.token_urlsafe(32)
        if not key.startswith("-"):
            return key


async def revoke_key(conn: Connection, hashed: str) -> bool:
    status = await conn.execute(
        "UPDATE access_keys SET revoked = true, revoked_at = now() "
        "WHERE key_hash = $1 AND NOT revoked",
        hashed,
    )
    return status.endswith(" 1")


async def list_keys(conn: Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT key_hash, kind, principal_id, label, revoked, created_at, revoked_at "
            "FROM access_keys ORDER BY created_at, key_hash"
        )
    )


# -- the command line -------------------------------------------------------------------

SERVICES = ("intake", "dispatch", "supervision", "scoring")


def _known_ids(kind: str, reference_dir: str | None) -> set[str] | None:
    """Channels and departments must exist in the city's reference data; centres are free."""
    from pathlib import Path

    from shared.reference import load_reference

    ref = load_reference(Path(reference_dir) if reference_dir else None)
    if kind == "channel":
        return {c.id for c in ref.channels}
    if kind == "department":
        return {d.id for d in ref.departments}
    return None


async def _run(args: argparse.Namespace) -> int:
    from shared.db import create_pool
    from shared.migrations import migrate

    app = importlib.import_module(f"services.{args.service}.app")
    settings_module = importlib.import_module(f"services.{args.service}.settings")
    settings = settings_module.Settings()
    schema = settings.db_schema or app.SCHEMA
    dsn = settings.database_migration_url or settings.database_url
    pool = await create_pool(dsn, schema, 1, 2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, app.MIGRATIONS)
            if args.command == "create":
                principal = parse_principal(args.kind, args.id)
                known = _known_ids(args.kind, settings.reference_data_dir)
                if known is not None and args.id not in known:
                    print(f"--id: the city has no {args.kind} {args.id!r}", file=sys.stderr)
                    return 2
                key = new_key()
                await register_key(conn, key, principal, args.label)
                print(key)
                print(
                    f"{principal} on {args.service}; shown once, store it now "
                    f"(sha256 {key_hash(key)})",
                    file=sys.stderr,
                )
                return 0
            if args.command == "revoke":
                hashed = args.key if _HASH.match(args.key) else key_hash(args.key)
                if await revoke_key(conn, hashed):
                    print(f"revoked {hashed}")
                    return 0
                print(f"no active key {hashed}", file=sys.stderr)
                return 1
            for row in await list_keys(conn):
                state = "revoked" if row["revoked"] else "active"
                who = f"{row['kind']}:{row['principal_id']}"
                print(f"{row['key_hash']}  {who:<32} {state:<8} {row['label']}")
            return 0
    finally:
        await pool.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.apikeys")
    parser.add_argument(
        "--service", required=True, choices=SERVICES, help="whose HTTP API the key opens"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key and print it once")
    create.add_argument("--kind", required=True, choices=KINDS)
    create.add_argument("--id", required=True, help="the channel, department or centre id")
    create.add_argument("--label", default="", help="who the key is for")
    revoke = commands.add_parser(
        "revoke",
        help="revoke a key (give the key or its sha256; put -- before a key starting with -)",
    )
    revoke.add_argument("key")
    commands.add_parser("list", help="list keys by hash, principal and state")
    return parser


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
