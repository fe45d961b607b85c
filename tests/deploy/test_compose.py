"""`docker compose config` accepts deploy/docker-compose.yml (and the SASL override), and what it
resolves to matches the code: the topic registry, each service's port and command, the settings.

The validator is Docker Compose v2 itself (tools/ensure_compose.sh); `config` needs no engine.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess

import pytest

from shared.topics import SERVICES, topic_partitions
from tests.deploy.conftest import DEPLOY, settings_env_names

BASE = DEPLOY / "docker-compose.yml"
SASL = DEPLOY / "docker-compose.sasl.yml"


def _clean_env(**extra: str) -> dict[str, str]:
    """No settings leak in from the test run (TOPIC_PREFIX, DATABASE_URL...): defaults only."""
    keep = ("PATH", "HOME", "DOCKER_CONFIG", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


def _config(compose, *files, env=None, fmt=None):
    args = [*compose]
    for f in files:
        args += ["-f", str(f)]
    args += ["config"]
    args += ["--format", fmt] if fmt else ["--quiet"]
    return subprocess.run(
        args, capture_output=True, text=True, env=env or _clean_env(), timeout=60, check=False
    )


@pytest.fixture(scope="module")
def resolved(compose):
    result = _config(compose, BASE, fmt="json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_docker_compose_config_accepts_the_compose_file(compose):
    result = _config(compose, BASE)
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_accepts_the_sasl_override(compose):
    result = _config(compose, BASE, SASL, env=_clean_env(KAFKA_SASL_PASSWORD="not-a-real-one"))
    assert result.returncode == 0, result.stderr
    resolved = json.loads(
        _config(compose, BASE, SASL, env=_clean_env(KAFKA_SASL_PASSWORD="pw"), fmt="json").stdout
    )
    for name in SERVICES:
        env = resolved["services"][name]["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_PASSWORD"] == "pw"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", "the base settings survive"
    # Without a password the override refuses to resolve rather than run with none.
    refused = _config(compose, BASE, SASL)
    assert refused.returncode != 0
    assert "KAFKA_SASL_PASSWORD" in refused.stderr


def test_the_validator_rejects_a_broken_file(compose, tmp_path):
    """The check is real: an unknown key under a service fails it."""
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  intake:\n    image: x\n    helthcheck: {}\n")
    result = _config(compose, bad)
    assert result.returncode != 0
    assert "helthcheck" in result.stderr


def test_every_piece_is_there(resolved):
    services = resolved["services"]
    assert set(SERVICES) | {"kafka", "kafka-init", "postgres", "prometheus", "grafana"} <= set(
        services
    )
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:16")
    mounts = {v["target"]: v for s in ("prometheus", "grafana") for v in services[s]["volumes"]}
    assert mounts["/etc/prometheus/alerts.yml"]["source"].endswith("deploy/prometheus/alerts.yml")
    assert mounts["/etc/grafana/provisioning"]["source"].endswith("deploy/grafana/provisioning")
    assert mounts["/etc/grafana/dashboards"]["source"].endswith("deploy/grafana/dashboards")
    for mount in mounts.values():
        if mount["type"] == "bind":
            assert os.path.exists(mount["source"]), mount["source"]


def test_each_service_runs_its_module_with_its_settings(resolved):
    for name in SERVICES:
        service = resolved["services"][name]
        settings = importlib.import_module(f"services.{name}.settings").Settings
        port = settings.model_fields["http_port"].default
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        env = service["environment"]
        assert env["HTTP_PORT"] == str(port), f"{name} listens on its documented port"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["KAFKA_IDEMPOTENCE"] == "true"
        # Its own roles: it runs as <name>_runtime and migrates as <name>_owner.
        assert env["DATABASE_URL"].startswith(f"postgresql://{name}_runtime:")
        assert env["DATABASE_MIGRATION_URL"].startswith(f"postgresql://{name}_owner:")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert {p["target"] for p in service["ports"]} == {port}
        unknown = set(env) - settings_env_names()
        assert not unknown, f"{name}: settings no service reads: {sorted(unknown)}"
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["kafka-init"]["condition"] == "service_completed_successfully"


def test_postgres_makes_each_services_roles_on_first_start(resolved):
    postgres = resolved["services"]["postgres"]
    mounts = {v["target"]: v["source"] for v in postgres["volumes"] if v["type"] == "bind"}
    script = mounts["/docker-entrypoint-initdb.d/10-init-roles.sh"]
    assert script.endswith("deploy/postgres/init-roles.sh") and os.path.exists(script)
    text = open(script, encoding="utf-8").read()
    assert "for svc in " + " ".join(SERVICES) + "; do" in text
    for name in SERVICES:
        for role in ("OWNER", "RUNTIME"):
            variable = f"{name.upper()}_DB_{role}_PASSWORD"
            password = postgres["environment"][variable]
            url = resolved["services"][name]["environment"][
                "DATABASE_URL" if role == "RUNTIME" else "DATABASE_MIGRATION_URL"
            ]
            assert f":{password}@" in url, f"{name}'s {role.lower()} URL uses {variable}"


def test_kafka_init_creates_the_registry_topics(resolved):
    init = resolved["services"]["kafka-init"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    entries = init["environment"]["CITYCASES_TOPICS"].split()
    declared = {name: int(n) for name, _, n in (e.partition(":") for e in entries)}
    assert declared == topic_partitions()
    assert "kafka-topics.sh" in " ".join(init["command"])


def test_prometheus_scrapes_the_services_compose_runs(resolved):
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    for name in SERVICES:
        port = resolved["services"][name]["environment"]["HTTP_PORT"]
        assert f'"{name}:{port}"' in text, f"prometheus.yml does not scrape {name}:{port}"
