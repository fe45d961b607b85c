"""Which metric names a PromQL expression uses, and which of them no service exposes.

The parser is deliberately loose: it removes what cannot be a metric name
(strings, label matchers, grouping clauses, ranges, Grafana variables,
function calls, keywords) and takes every identifier left as a metric name. A
name it cannot place is reported, so a slip fails a test rather than hiding.

Known names come from prometheus_client's default registry after importing
shared.metrics and every services/<name>/metrics.py, expanded the way the
exposition format names samples (counters ``_total``, histograms ``_bucket``,
``_sum``, ``_count``), plus the series Prometheus itself adds to every scrape.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tests.deploy.conftest import DEPLOY, ROOT, load_yaml

DASHBOARDS = DEPLOY / "grafana" / "dashboards"

#: Series Prometheus writes for every target and for alerting, not exposed by the services.
PROMETHEUS_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "inf",
        "nan",
        "atan2",
        "start",
        "end",
    }
)

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_RANGE = re.compile(r"\[[^\[\]]*\]")
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{[^}]*\})?\s*,")
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([A-Za-z_:][A-Za-z0-9_:]*)"')


def metric_names(expr: str) -> set[str]:
    """Metric names an expression (PromQL, or a Grafana ``label_values(...)`` query) reads."""
    names = set(_NAME_MATCHER.findall(expr))
    label_values = _LABEL_VALUES.match(expr)
    if label_values:
        return names | {label_values.group(1)}
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VAR.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def _import_metric_modules() -> list[str]:
    modules = ["shared.metrics"]
    for path in sorted((ROOT / "services").glob("*/metrics.py")):
        modules.append(f"services.{path.parent.name}.metrics")
    for module in modules:
        importlib.import_module(module)
    return modules


def known_metric_names() -> set[str]:
    """Every series name the services can expose, plus Prometheus's own per-target series."""
    from prometheus_client import REGISTRY

    _import_metric_modules()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set(PROMETHEUS_SERIES)
    for family in REGISTRY.collect():
        # A counter's or a histogram's bare family name is no series of its own.
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names


def unknown_metrics(exprs: Mapping[str, str], known: Iterable[str]) -> dict[str, set[str]]:
    """Where -> the names it uses that are not in ``known``; empty when all exist."""
    known = set(known)
    out: dict[str, set[str]] = {}
    for where, expr in exprs.items():
        missing = metric_names(expr) - known
        if missing:
            out[where] = missing
    return out


def assert_metrics_exist(exprs: Mapping[str, str], known: Iterable[str]) -> None:
    """Fails listing every expression that names a metric no service exposes."""
    missing = unknown_metrics(exprs, known)
    assert not missing, "metrics that no service exposes:\n" + "\n".join(
        f"  {where}: {sorted(names)}" for where, names in sorted(missing.items())
    )


def exposed_metric_names(exposition: str) -> set[str]:
    """Series names a /metrics page can carry, from its ``# TYPE`` lines (present even for a
    labelled metric that has no series yet)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            # prometheus_client names a counter's TYPE line after the family, without _total
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + s for s in suffixes.get(kind, ("",)))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def alert_expressions() -> dict[str, str]:
    (rules,) = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    out = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            out[f"alerts.yml {group['name']}/{name}"] = rule["expr"]
    return out


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions() -> dict[str, str]:
    out = {}
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, f"no dashboards in {DASHBOARDS}"
    for path in files:
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                out[f"{path.name} '{panel['title']}' {target['refId']}"] = target["expr"]
        for variable in board.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            if variable.get("type") == "query" and query:
                out[f"{path.name} variable ${variable['name']}"] = query
    return out
