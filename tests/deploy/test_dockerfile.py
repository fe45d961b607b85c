"""deploy/Dockerfile: what the image must be, checked statically (no Docker engine is needed)."""

from __future__ import annotations

import fnmatch
import re

from tests.deploy.conftest import DEPLOY, ROOT

DOCKERFILE = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def ignored(path: str) -> bool:
    """Whether Dockerfile.dockerignore leaves ``path`` out (last matching rule wins)."""
    rules = [
        r.strip()
        for r in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if r.strip() and not r.startswith("#")
    ]
    result = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if pattern == "**" or fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            result = not negate
    return result


def test_base_image_user_command_and_healthcheck():
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in {"root", "0"}, "runs as a non-root user"
    (healthcheck,) = [args for word, args in steps if word == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and "HTTP_PORT" in healthcheck
    (cmd,) = [args for word, args in steps if word == "CMD"]
    assert cmd == '["python", "-m", "services.intake"]'
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "pip install ." in runs, "dependencies from pyproject.toml"


def test_everything_copied_exists_and_is_in_the_build_context():
    copies = [args.split()[:-1] for word, args in instructions() if word == "COPY"]
    sources = [src for srcs in copies for src in srcs if not src.startswith("--")]
    assert {"pyproject.toml", "shared", "services", "reference_data"} <= set(sources)
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not ignored(src), f"{src} is excluded by Dockerfile.dockerignore"
    assert ignored(".venv") and ignored(".git") and ignored("tests")
