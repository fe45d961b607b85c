import uuid

import pytest

from shared.migrations import MigrationError, migrate


async def test_migrations_apply_once_and_refuse_edits(db, tmp_path):
    schema = f"m{uuid.uuid4().hex[:8]}"
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    first = await migrate(db, schema, tmp_path)
    assert first == [
        "shared/0001_plumbing.sql",
        "shared/0002_access_keys.sql",
        "shared/0003_rate_buckets.sql",
        f"{schema}/0001_things.sql",
    ]
    assert await migrate(db, schema, tmp_path) == [], "a second run applies nothing"
    tables = {
        r["table_name"]
        for r in await db.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
    }
    assert {"inbox", "outbox", "things", "schema_migrations"} <= tables

    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id bigint PRIMARY KEY);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(db, schema, tmp_path)


async def test_a_failing_migration_leaves_nothing_half_done(db, tmp_path):
    schema = f"m{uuid.uuid4().hex[:8]}"
    (tmp_path / "0001_broken.sql").write_text("CREATE TABLE a (id int); CREATE TABLE a (id int);")
    with pytest.raises(Exception, match="already exists"):
        await migrate(db, schema, tmp_path)
    assert await db.fetchval("SELECT to_regclass($1)", f"{schema}.a") is None
    versions = await db.fetch(f"SELECT scope, version FROM {schema}.schema_migrations")
    assert [(r["scope"], r["version"]) for r in versions] == [
        ("shared", "0001"),
        ("shared", "0002"),
        ("shared", "0003"),
    ]


async def test_badly_named_migration_is_refused(db, tmp_path):
    (tmp_path / "add_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_what.sql"):
        await migrate(db, "mbad", tmp_path)
