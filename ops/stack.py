"""`make run`: the whole system on one machine, with a simulated city, until Ctrl-C.

Brings up the broker and Postgres the way `make test` does (shared.devstack),
creates the topics, starts the four services as separate processes on one
scaled clock (CLOCK_SCALE, CLOCK_START and a shared CLOCK_ANCHOR), runs the
city simulator, and shows a live view. Ctrl-C stops the simulator, then the
services (SIGTERM, so each drains cleanly), then what devstack started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from ops.simulator.run import CitySimulator
from ops.view import CityView, Snapshot
from shared import devstack
from shared.clock import ScaledClock
from shared.kafka import ensure_topics
from shared.reference import load_reference
from shared.settings import KafkaSettings
from shared.topics import topic_partitions

#: The centre the simulated dispatcher works for.
CENTRE = "command-centre"
SERVICES = {"intake": 8080, "dispatch": 8081, "supervision": 8082, "scoring": 8083}
DEFAULT_START = "2026-11-02T08:00:00+08:00"  # a Monday morning in the sample calendar's year
LOGS = devstack.STATE_DIR / "logs"


@dataclass
class City:
    scale: float
    start: datetime
    partitions: int
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICES))
    # The simulated dispatcher's key, made afresh for each run and given to the services
    # as a development key (API_KEYS): nothing reusable is written anywhere.
    centre_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    logs: Path = LOGS

    def service_env(self, name: str, anchor: float) -> dict[str, str]:
        keys = [
            k for k in (os.environ.get("API_KEYS", ""), f"centre:{CENTRE}:{self.centre_key}") if k
        ]
        return {
            **os.environ,
            **self.env,
            "API_KEYS": ",".join(keys),
            "HTTP_PORT": str(self.ports[name]),
            "CLOCK_SCALE": str(self.scale),
            "CLOCK_START": self.start.isoformat(),
            "CLOCK_ANCHOR": repr(anchor),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }

    def start_services(self, anchor: float) -> None:
        for name in SERVICES:
            self.start_service(name, anchor)

    def start_service(self, name: str, anchor: float) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                env=self.service_env(name, anchor),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=devstack.ROOT,
            )

    async def wait_ready(
        self, seconds: float = 60, names: list[str] | None = None, *, exits_fatal: bool = True
    ) -> None:
        """Until each of ``names`` (every service) answers /readyz.

        ``exits_fatal=False`` for a caller that restarts what dies (the fault run):
        an exit then only means waiting for the process that replaces it.
        """
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=1) as http:
            for name in names or list(self.ports):
                while True:
                    if exits_fatal and self.procs[name].poll() is not None:
                        raise RuntimeError(f"{name} exited; see {self.logs / (name + '.log')}")
                    with contextlib.suppress(httpx.TransportError):
                        url = f"http://127.0.0.1:{self.ports[name]}/readyz"
                        if (await http.get(url)).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{name} not ready after {seconds:.0f}s; see {self.logs / (name + '.log')}"
                        )
                    await asyncio.sleep(0.2)

    def stop_services(self, names: list[str] | None = None, timeout: float = 20) -> dict[str, int]:
        """SIGTERM ``names`` (every service) so each drains, then their exit codes."""
        procs = {n: p for n, p in self.procs.items() if names is None or n in names}
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in procs.items():
            try:
                codes[name] = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes


async def run_city(
    city: City, stop: asyncio.Event, headless: bool, until_every_topic: bool
) -> Snapshot:
    kafka = KafkaSettings()  # the environment holds the stack's settings by now
    prefix = os.environ.get("TOPIC_PREFIX", "")
    await ensure_topics(kafka, topic_partitions(prefix, city.partitions))
    anchor = time.time()
    clock = ScaledClock(city.scale, city.start, anchor)
    city.start_services(anchor)
    await city.wait_ready()
    ref = load_reference()
    sim = CitySimulator(
        ref,
        kafka,
        clock,
        prefix=prefix,
        dispatch_url=f"http://127.0.0.1:{city.ports['dispatch']}",
        dispatch_key=city.centre_key,
        from_start=True,
    )
    simulating = asyncio.create_task(sim.run(stop))
    view = CityView(
        clock=clock, scale=city.scale, ports=city.ports, simulator=sim, kafka=kafka, prefix=prefix
    )
    snapshot = Snapshot()
    try:
        snapshot = await view.show(stop, headless=headless, until_every_topic=until_every_topic)
    finally:
        stop.set()
        await simulating
    return snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.stack", description=__doc__)
    parser.add_argument("--scale", type=float, default=float(os.environ.get("CLOCK_SCALE", "1200")))
    parser.add_argument("--start", default=os.environ.get("CLOCK_START", DEFAULT_START))
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--headless", action="store_true", help="print a line every few seconds, no live screen"
    )
    parser.add_argument(
        "--until-every-topic",
        action="store_true",
        help="stop once every topic has events and every service is healthy (a smoke test)",
    )
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    parser.add_argument(
        "--free-ports", action="store_true", help="HTTP on free ports instead of 8080-8083"
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    stack = devstack.start(f"citycases_run_{uuid.uuid4().hex[:8]}", fresh_database=True)
    os.environ.update(stack.env)  # the simulator, the view and the services all read it
    city = City(
        scale=args.scale,
        start=datetime.fromisoformat(args.start),
        partitions=args.partitions,
        env=stack.env,
    )
    if args.free_ports:
        city.ports = {name: devstack.free_port() for name in SERVICES}
    stop = asyncio.Event()

    async def go() -> Snapshot:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.seconds is not None:
            loop.call_later(args.seconds, stop.set)
        return await run_city(city, stop, args.headless, args.until_every_topic)

    try:
        snapshot = asyncio.run(go())
    finally:
        codes = city.stop_services()
        devstack.stop(stack)
    elapsed = time.monotonic() - started
    print(f"stopped after {elapsed:.0f}s; services exited with {codes}")
    if args.until_every_topic:
        ok = (
            snapshot.every_topic_has_events
            and snapshot.all_healthy
            and all(c == 0 for c in codes.values())
        )
        print(
            f"every topic had events: {snapshot.every_topic_has_events}; healthy: {snapshot.all_healthy}"
        )
        print(f"topics: {snapshot.topic_counts}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
