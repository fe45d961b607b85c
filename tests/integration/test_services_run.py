"""Each service runs as ``python -m services.<name>`` with settings from the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx

from shared.devstack import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["intake", "dispatch", "supervision", "scoring"]


async def test_every_service_starts_serves_probes_and_stops_cleanly(prefix, database_url):
    ports = {name: free_port() for name in SERVICES}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=ROOT,
            env={
                **os.environ,
                "HTTP_PORT": str(port),
                "TOPIC_PREFIX": prefix,
                "LOG_LEVEL": "WARNING",
            },
        )
        for name, port in ports.items()
    }
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for name, port in ports.items():
                base = f"http://127.0.0.1:{port}"
                for _ in range(300):
                    assert procs[name].poll() is None, f"{name} exited early"
                    try:
                        ready = await http.get(f"{base}/readyz")
                        if ready.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"{name} never became ready")
                assert (await http.get(f"{base}/healthz")).json() == {"status": "ok"}
                body = ready.json()
                assert body["checks"]["database"] is True
                metrics = (await http.get(f"{base}/metrics")).text
                assert "outbox_backlog_rows" in metrics
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        codes = {name: proc.wait(timeout=30) for name, proc in procs.items()}
    assert codes == dict.fromkeys(SERVICES, 0), "SIGTERM stops every service cleanly"
    conn = await asyncpg.connect(database_url)
    try:
        for name in SERVICES:
            assert await conn.fetchval("SELECT to_regclass($1)", f"{name}.outbox") is not None
    finally:
        await conn.close()
