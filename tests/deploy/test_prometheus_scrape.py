"""A real Prometheus scrapes all four services during a run and evaluates the shipped alert rules.

The services run as `python -m services.<name>` against the broker and Postgres
that `make test` provisions (own topic prefix and schemas); Prometheus is the
Debian package's server, configured from deploy/prometheus/prometheus.yml with
the targets pointed at the local ports and a 1 s scrape interval.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from shared.devstack import free_port
from shared.topics import SERVICES
from tests.deploy.conftest import DEPLOY, ROOT, load_yaml
from tests.deploy.promql import (
    PROMETHEUS_SERIES,
    alert_expressions,
    assert_metrics_exist,
    dashboard_expressions,
    exposed_metric_names,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")


def _require(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the suite with `make test`, which provisions it")
    return value


def wait_for(
    what: str, probe: Callable[[], T | None], seconds: float, *alive: subprocess.Popen
) -> T:
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        for proc in alive:
            assert proc.poll() is None, (
                f"{proc.args} exited with {proc.returncode} while waiting for {what}"
            )
        try:
            last = probe()
        except (httpx.TransportError, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}; last: {last!r}")


def _stop(proc: subprocess.Popen, seconds: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def running_services(tmp_path) -> Iterator[dict[str, int]]:
    _require("DATABASE_URL")
    _require("KAFKA_BOOTSTRAP_SERVERS")
    prefix = f"d{uuid.uuid4().hex[:8]}_"
    ports = {name: free_port() for name in SERVICES}
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, port in ports.items():
            log = open(tmp_path / f"{name}.log", "wb")
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                cwd=ROOT,
                env={
                    **os.environ,
                    "HTTP_HOST": "127.0.0.1",
                    "HTTP_PORT": str(port),
                    "TOPIC_PREFIX": prefix,
                    "DB_SCHEMA": f"{prefix}{name}",
                    "LOG_LEVEL": "WARNING",
                    # Quick group joins on the development broker, as tests/integration does.
                    "KAFKA_SESSION_TIMEOUT_MS": "3000",
                    "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
        yield ports
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            _stop(proc)
            if proc.returncode not in (0, -signal.SIGTERM):
                print(
                    f"--- {name} log ---\n{(tmp_path / f'{name}.log').read_text(errors='replace')}"
                )


def prometheus_config(ports: dict[str, int], prometheus_port: int) -> dict[str, Any]:
    """The shipped config, with the compose host names swapped for the local ports."""
    (config,) = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    config["global"]["scrape_interval"] = "1s"
    config["global"]["scrape_timeout"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(DEPLOY / "prometheus" / rule) for rule in config["rule_files"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    seen = set()
    for static in jobs["citycases"]["static_configs"]:
        (target,) = static["targets"]
        host, _, port = target.partition(":")
        assert host in ports, f"prometheus.yml scrapes an unknown service {target}"
        static["targets"] = [f"127.0.0.1:{ports[host]}"]
        seen.add(host)
    assert seen == set(SERVICES), "prometheus.yml scrapes every service"
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{prometheus_port}"]}]
    return config


@contextlib.contextmanager
def running_prometheus(binary: str, config: dict[str, Any], port: int, tmp_path) -> Iterator[str]:
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(json.dumps(config, indent=2))  # JSON is YAML
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        yield f"http://127.0.0.1:{port}"
        assert proc.poll() is None, "prometheus exited during the test"
    finally:
        _stop(proc)
        if proc.returncode not in (0, -signal.SIGTERM):
            print((tmp_path / "prometheus.log").read_text(errors="replace"))


def test_a_real_prometheus_scrapes_every_service(prometheus_server, tmp_path):
    prometheus_port = free_port()
    with running_services(tmp_path) as ports:
        config = prometheus_config(ports, prometheus_port)
        with running_prometheus(prometheus_server, config, prometheus_port, tmp_path) as base:
            http = httpx.Client(base_url=base, timeout=5)

            def targets_up() -> dict[str, str] | None:
                active = http.get("/api/v1/targets").json()["data"]["activeTargets"]
                health = {
                    t["labels"]["app"]: t["health"]
                    for t in active
                    if t["labels"].get("job") == "citycases"
                }
                return health if health == dict.fromkeys(SERVICES, "up") else None

            wait_for("every service's target to be up", targets_up, 45)

            def query(expr: str) -> list[dict[str, Any]]:
                body = http.get("/api/v1/query", params={"query": expr}).json()
                assert body["status"] == "success", body
                return list(body["data"]["result"])

            def all_up() -> list[dict[str, Any]] | None:
                result = query('up{job="citycases"} == 1')
                return result if len(result) == len(SERVICES) else None

            up = wait_for("up == 1 for the four services", all_up, 15)
            assert {r["metric"]["app"] for r in up} == set(SERVICES)

            def backlog() -> list[dict[str, Any]] | None:
                result = query("outbox_backlog_rows")
                return (
                    result
                    if {r["metric"].get("service") for r in result} >= set(SERVICES)
                    else None
                )

            rows = wait_for("outbox_backlog_rows from every service's relay", backlog, 15)
            assert all(r["metric"]["job"] == "citycases" for r in rows)

            def rules_evaluated() -> list[dict[str, Any]] | None:
                groups = http.get("/api/v1/rules").json()["data"]["groups"]
                rules = [r for g in groups for r in g["rules"]]
                if not rules or any(r.get("lastEvaluation", "").startswith("0001") for r in rules):
                    return None
                return rules

            rules = wait_for("the alert rules to be evaluated", rules_evaluated, 15)
            (shipped,) = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
            expected = {r["alert"] for g in shipped["groups"] for r in g["rules"]}
            assert {r["name"] for r in rules} == expected
            broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
            assert not broken, f"rules that fail to evaluate: {broken}"
            # Every metric an alert or a dashboard uses is on some running service's /metrics.
            exposed = set(PROMETHEUS_SERIES)
            for port in ports.values():
                exposed |= exposed_metric_names(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
            assert_metrics_exist({**alert_expressions(), **dashboard_expressions()}, exposed)

            # The first scrapes may find a service not listening yet (pending); it clears.
            wait_for(
                "CitycasesServiceDown to clear",
                lambda: query('ALERTS{alertname="CitycasesServiceDown"}') == [],
                15,
            )
