"""The operators' command line against the real broker: topics, and dead letters re-driven."""

from __future__ import annotations

import pytest

from ops.cli import main
from shared.topics import all_topics
from tests.integration import pingsvc
from tests.integration.conftest import kafka_settings, service_settings
from tests.integration.helpers import create_topics, eventually, produce
from tests.integration.test_plumbing import applied, pings


@pytest.fixture
def cli_env(monkeypatch, prefix, bootstrap):
    monkeypatch.setenv("TOPIC_PREFIX", prefix)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps tables to the terminal width
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)


async def run_cli(*argv: str) -> int:
    import asyncio

    # main() runs its own event loop; keep it off the test's loop.
    return await asyncio.to_thread(main, list(argv))


async def test_topics_create_and_describe(cli_env, prefix, bootstrap, capsys):
    assert await run_cli("topics", "create", "--partitions", "2") == 0
    out = capsys.readouterr().out
    for topic in all_topics(prefix):
        assert f"created  {topic.name}" in out
    assert await run_cli("topics", "create") == 0
    assert "exists   " + prefix + "cases" in capsys.readouterr().out
    assert await run_cli("topics", "describe") == 0
    described = capsys.readouterr().out
    assert prefix + "supervision.dlq" in described and "missing" not in described


async def test_dlq_list_and_redrive_after_the_fault_is_fixed(
    cli_env, prefix, database_url, bootstrap, capsys
):
    cfg = kafka_settings(bootstrap)
    schema = f"{prefix}ping"
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq"], partitions=1)
    pingsvc.REFUSED.add(5)
    runtime = pingsvc.ping_runtime(
        service_settings(f"{prefix}ping", prefix, database_url, bootstrap), schema
    )
    await runtime.start()
    try:
        await produce(cfg, prefix + "pings", pings([4, 5, 6]))
        await eventually(
            lambda: applied(database_url, schema), lambda v: v == [4, 6], what="the others applied"
        )

        async def listed() -> str:
            await run_cli("dlq", "list", "pings")
            return capsys.readouterr().out

        out = await eventually(
            listed, lambda o: "1 dead letter(s)" in o, what="the dead letter listed"
        )
        assert "LookupError" in out and "refused until the fault is fixed" in out

        pingsvc.REFUSED.clear()  # the operator fixes the cause
        assert await run_cli("dlq", "redrive", "pings", "--offset", "99") == 2, (
            "an unknown offset is refused"
        )
        assert await run_cli("dlq", "redrive", "pings", "--offset", "0") == 0
        await eventually(
            lambda: applied(database_url, schema),
            lambda v: v == [4, 5, 6],
            what="the re-driven ping",
        )
    finally:
        pingsvc.REFUSED.clear()
        await runtime.stop()
