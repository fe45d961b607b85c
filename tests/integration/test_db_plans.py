"""Service connections plan each batch statement for the keys it gets.

A prepared statement's generic plan is made on its sixth run for the table as
it was then; ``id = ANY($1)`` planned while a table held a few rows is a
sequential scan, and stays one until the table is analysed again (never, with
autovacuum off, as on the development Postgres). Every service pool therefore
asks for custom plans.
"""

from __future__ import annotations

import uuid

from shared.db import create_pool


async def test_batch_statements_never_fall_back_to_a_generic_plan(database_url):
    schema = f"plans_{uuid.uuid4().hex[:8]}"
    pool = await create_pool(database_url, schema, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.execute(f"CREATE TABLE {schema}.t (id text PRIMARY KEY, n int)")
            await conn.execute(
                f"INSERT INTO {schema}.t SELECT g::text, g FROM generate_series(1, 300) AS g"
            )
            sql = f"SELECT n FROM {schema}.t WHERE id = ANY($1::text[])"
            batch = [str(i) for i in range(1, 26)]  # with "auto", a batch like this went generic
            for _ in range(12):
                assert len(await conn.fetch(sql, batch)) == 25
            plans = await conn.fetchrow(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement = $1",
                sql,
            )
            assert plans is not None, "asyncpg prepares what it runs"
            assert plans["generic_plans"] == 0
            assert plans["custom_plans"] == 12
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await pool.close()
