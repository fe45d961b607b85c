"""Generates each service's OpenAPI document from its FastAPI app: ``make docs``.

A service exposes ``build(settings) -> ServiceRuntime`` in ``services.<name>.app``;
building does no I/O, so the document can be read from ``runtime.app``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

SERVICES = ("intake", "dispatch", "supervision", "scoring")
DOCS = Path(__file__).resolve().parent.parent / "docs"


def document(service: str) -> dict[str, Any] | None:
    module = importlib.import_module(f"services.{service}.app")
    runtime = module.build()
    if runtime.app is None:
        return None
    doc: dict[str, Any] = runtime.app.openapi()
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def path_for(service: str) -> Path:
    return DOCS / f"openapi-{service}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.openapi")
    parser.add_argument("--write", action="store_true", help="write docs/openapi-<service>.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if a document is stale")
    parser.add_argument("--service", choices=SERVICES, help="only this service")
    args = parser.parse_args(argv)
    stale = []
    for service in [args.service] if args.service else SERVICES:
        doc = document(service)
        if doc is None:
            continue
        text = render(doc)
        path = path_for(service)
        if args.write:
            path.write_text(text)
        elif args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            sys.stdout.write(text)
    if stale:
        print(f"stale: {', '.join(stale)}; run `make docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
