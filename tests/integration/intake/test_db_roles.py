"""Least privilege in the database: intake runs as its runtime role and can do its work, but
no DDL, no writing its migration record, and no other service's schema.

Local Postgres trusts every local user, so the test logs in as the roles the
migration made; in deploy/ they have passwords.
"""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from services.dispatch.app import MIGRATIONS as DISPATCH_MIGRATIONS
from services.intake.app import build
from shared.dbroles import owner_role, runtime_role
from shared.migrations import migrate
from tests.integration.helpers import as_role, create_topics, eventually
from tests.integration.intake.conftest import TOPICS, about, intake_settings
from tests.integration.intake.test_http_api import _body
from tests.integration.keys import KeyFromBody


async def _drop(admin: asyncpg.Connection, schemas: list[str]) -> None:
    for schema in schemas:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for role in (runtime_role(schema), owner_role(schema)):
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')


async def test_intake_works_as_its_runtime_role_and_can_do_nothing_else(
    database_url: str, bootstrap: str, ref
) -> None:
    prefix = f"r{uuid.uuid4().hex[:8]}_"
    schema, other = f"{prefix}intake", f"{prefix}dispatch"
    admin = await asyncpg.connect(database_url)
    try:
        await migrate(admin, other, DISPATCH_MIGRATIONS)  # another service's schema beside it
        settings = intake_settings(
            prefix,
            as_role(database_url, runtime_role(schema)),
            bootstrap,
            database_migration_url=database_url,
        )
        await create_topics(settings.kafka, prefix, TOPICS, partitions=1)
        runtime = build(settings)
        await runtime.start()
        try:
            assert runtime.app is not None
            transport = httpx.ASGITransport(app=runtime.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://intake", auth=KeyFromBody()
            ) as http:
                created = await http.post("/v1/reports", json=_body(ref, "32050800200201"))
                assert created.status_code == 201, created.text
                case_id = created.json()["case_id"]
                # Registered, stored, put in the outbox and relayed, all as the runtime role.
                topic = prefix + "cases"
                from shared.events.envelope import decode
                from tests.integration.helpers import read_topic

                async def published():
                    return [decode(r.value) for r in await read_topic(settings.kafka, topic)]

                events = await eventually(
                    published, lambda es: bool(about(es, case_id=case_id)), what="case.registered"
                )
                assert about(events, case_id=case_id)[0].type == "case.registered"
                assert (await http.get(f"/v1/cases/{case_id}")).status_code == 200
            async with runtime.db.acquire() as conn:
                assert await conn.fetchval("SELECT current_user") == runtime_role(schema)
        finally:
            await runtime.stop()

        conn = await asyncpg.connect(
            as_role(database_url, runtime_role(schema)),
            server_settings={"search_path": schema},
        )
        try:
            assert await conn.fetchval("SELECT count(*) FROM cases") >= 1
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 3
            refused = [
                "CREATE TABLE sneaky (id int)",
                "DROP TABLE cases",
                "ALTER TABLE cases ADD COLUMN sneaky int",
                "TRUNCATE inbox",
                "CREATE INDEX sneaky ON cases (case_id)",
                "INSERT INTO schema_migrations (scope, version, name, checksum) "
                "VALUES ('x', '9999', 'x', 'x')",
                "DELETE FROM schema_migrations",
                f'SELECT * FROM "{other}".cases',
                f"INSERT INTO \"{other}\".inbox (event_id, topic) VALUES ('x', 'y')",
                "CREATE TABLE public.sneaky (id int)",
                f'CREATE SCHEMA "{prefix}sneaky"',
            ]
            allowed = []
            for sql in refused:
                try:
                    await conn.execute(sql)
                except asyncpg.InsufficientPrivilegeError:
                    continue
                allowed.append(sql)
            assert allowed == [], "the runtime role could do these"
        finally:
            await conn.close()

        # The owner role owns what the migrations made (they ran as it, not as postgres).
        owners = await admin.fetch(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = $1", schema
        )
        assert [r["tableowner"] for r in owners] == [owner_role(schema)]
        # Running the migrations again (a restart) changes nothing and keeps the grants.
        owner_conn = await asyncpg.connect(as_role(database_url, owner_role(schema)))
        try:
            from services.intake.app import MIGRATIONS

            assert await migrate(owner_conn, schema, MIGRATIONS) == []
        finally:
            await owner_conn.close()
    finally:
        await _drop(admin, [schema, other])
        left = await admin.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", prefix + "%")
        await admin.close()
    assert left == [], "the test's roles are gone"
