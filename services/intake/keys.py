"""API keys of the HTTP channels: ``python -m services.intake.keys create|revoke|list``.

A key is shown once, when created; only its SHA-256 is stored. Open311
clients send it as ``api_key``, and it names the channel their reports come
in on.

    python -m services.intake.keys create --channel open311 --label "fixmystreet bridge"
    python -m services.intake.keys revoke <key or its sha256>
    python -m services.intake.keys list
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys

from services.intake import store
from services.intake.app import MIGRATIONS, SCHEMA
from services.intake.settings import Settings
from shared.db import create_pool
from shared.migrations import migrate
from shared.reference import load_reference

_HASH = re.compile(r"^[0-9a-f]{64}$")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    schema = settings.db_schema or SCHEMA
    pool = await create_pool(settings.database_url, schema, 1, 2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, MIGRATIONS)
            if args.command == "create":
                key = secrets.token_urlsafe(32)
                await store.upsert_api_key(conn, key, args.channel, args.label)
                print(key)
                print(
                    f"channel {args.channel}; shown once, store it now (sha256 {store.key_hash(key)})",
                    file=sys.stderr,
                )
                return 0
            if args.command == "revoke":
                hashed = args.key if _HASH.match(args.key) else store.key_hash(args.key)
                if await store.revoke_api_key(conn, hashed):
                    print(f"revoked {hashed}")
                    return 0
                print(f"no active key {hashed}", file=sys.stderr)
                return 1
            for row in await store.list_api_keys(conn):
                state = "revoked" if row["revoked"] else "active"
                print(f"{row['key_hash']}  {row['channel']:<14} {state:<8} {row['label']}")
            return 0
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.intake.keys")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key for a channel and print it once")
    channels = sorted(c.id for c in load_reference().channels)
    create.add_argument("--channel", required=True, choices=channels)
    create.add_argument("--label", default="", help="who the key is for")
    revoke = commands.add_parser("revoke", help="revoke a key (give the key or its sha256)")
    revoke.add_argument("key")
    commands.add_parser("list", help="list keys by hash, channel and state")
    args = parser.parse_args(argv)
    return asyncio.run(_run(args, Settings()))


if __name__ == "__main__":
    sys.exit(main())
