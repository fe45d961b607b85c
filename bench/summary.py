"""``python -m bench.summary``: every bench/results/*.json in one table, against the issues' floors.

Writes ``bench/results/SUMMARY.md`` and prints it. ``python -m bench`` calls it
after its benchmarks, so ``make bench`` ends with it. A benchmark that has not
been run shows as "not run"; each figure names the result file it comes from.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
MET, NOT_MET, INFO = "met", "**not met**", "–"

Row = tuple[str, str, str, str, str, str]  # issue, figure, measured, target, verdict, source


def load(results: Path = RESULTS) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(results.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"summary: skipping {path.name}: {exc}", file=sys.stderr)
    return out


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def _verdict(met: Any) -> str:
    if met is None:
        return INFO
    return MET if met else NOT_MET


def _get(data: dict[str, Any], *path: str) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _ms3(stage: dict[str, Any] | None) -> str:
    """``p50 / p95 / p99 ms`` of a latency distribution, with what never got through."""
    if not stage or not stage.get("n"):
        return "n/a"
    text = " / ".join(_n(stage.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms")) + " ms"
    if stage.get("not_through"):
        text += f" ({_n(stage['not_through'])} not through)"
    return text


def _cpu_budget(p: dict[str, Any]) -> tuple[str, str] | None:
    """What the ratio floor allows a report in CPU, against what (b) spent and on what.

    With every core busy, the pipeline reaches 25 % of the limit only if a report costs at
    most ``cores / (0.25 × limit)`` of CPU, whoever spends it.
    """
    cpu = (p.get("pipeline") or {}).get("cpu_ms_per_report") or {}
    cores = (p.get("machine") or {}).get("cpus")
    limit = p.get("limit_msgs_per_s")
    machine = cpu.get("machine (100 = all cores)")
    if not all(isinstance(v, int | float) and v > 0 for v in (cores, limit, machine)):
        return None
    services = sum(cpu.get(s) or 0.0 for s in ("intake", "dispatch", "supervision", "scoring"))
    parts = {
        "Postgres": cpu.get("postgres (this run's backends)"),
        "the broker": cpu.get("broker (tansu)"),
        "the load generator": cpu.get("load generator (bench)"),
        "the four services": services,
    }
    spent = ", ".join(f"{name} {_n(v, 2)}" for name, v in parts.items() if v is not None)
    return (
        "Pipeline: CPU a report at saturation, in ms of one core: what the 25 % floor allows "
        "with every core busy, and what (b) spent",
        f"allows {_n(1000 * cores / (0.25 * limit), 2)}; spent {_n(machine * cores, 2)} ({spent})",
    )


def pipeline_rows(p: dict[str, Any]) -> list[Row]:
    src = "pipeline"
    rows: list[Row] = []
    limit = p.get("limit_msgs_per_s")
    passes = p.get("limit_msgs_per_s_passes") or []
    measured = f"{_n(limit)} (10–90 %: {_n(p.get('limit_msgs_per_s_10_to_90'))})"
    if len(passes) > 1:
        measured = (
            f"{_n(limit)}, the median of {len(passes)} passes "
            f"({' / '.join(_n(x) for x in passes)}; its 10–90 %: "
            f"{_n(p.get('limit_msgs_per_s_10_to_90'))})"
        )
    rows.append(
        (
            "8",
            f"Passthrough limit: {p.get('limit_hops', 4)} hops consume→produce, same clients (msgs/s)",
            measured,
            "–",
            INFO,
            src,
        )
    )
    rows.append(
        (
            "8",
            "Pipeline at saturation: reports registered, dispatched, armed and scored (reports/s)",
            f"{_n(p.get('pipeline_reports_per_s'))} (10–90 %: {_n(p.get('pipeline_reports_per_s_10_to_90'))})",
            "–",
            INFO,
            src,
        )
    )
    ratio = p.get("pipeline_ratio_to_limit")
    floor_met, aim_met = p.get("pipeline_ratio_floor_met"), p.get("pipeline_ratio_aim_met")
    verdict = _verdict(floor_met)
    if floor_met:
        verdict += " (aim met)" if aim_met else " (aim not met)"
    rows.append(
        (
            "8",
            "Pipeline ÷ passthrough limit",
            f"{100 * ratio:.1f} %" if isinstance(ratio, int | float) else "n/a",
            "≥ 25 % (aim 50 %)",
            verdict,
            src,
        )
    )
    budget = _cpu_budget(p)
    if budget is not None:
        rows.append(("8", *budget, "–", INFO, src))
    fixed = p.get("latency") or {}
    rate = _n(fixed.get("rate_per_s"))
    drain = fixed.get("drain_seconds_after_last_report")
    rows.append(
        (
            "8",
            f"Sustains {rate} reports/s for {_n(fixed.get('seconds'))} s (all through ≤ 3 s after the last)",
            f"{_n(fixed.get('sustained'))}; through at {_n(fixed.get('through_per_s'))}/s, "
            f"last through {_n(drain, 1)} s after the last report",
            "yes",
            _verdict(fixed.get("sustained")) if fixed else "not run",
            src,
        )
    )
    p99 = _get(fixed, "report_to_dispatched", "p99_ms")
    rows.append(
        (
            "8",
            f"p99 report → dispatched at {rate}/s",
            f"{_n(p99)} ms" if p99 is not None else "n/a",
            "≤ 100 ms",
            _verdict(p99 <= 100 if p99 is not None else False) if fixed else "not run",
            src,
        )
    )
    for stage, label in (
        ("report_to_registered", "registered"),
        ("report_to_dispatched", "dispatched"),
        ("report_to_armed", "timers armed"),
        ("report_to_scored", "scored"),
    ):
        rows.append(
            (
                "8",
                f"report → {label} at {rate}/s, p50 / p95 / p99",
                _ms3(fixed.get(stage)),
                "–",
                INFO,
                src,
            )
        )
    by_window = fixed.get("p99_dispatched_ms_by_window")
    window = _n(fixed.get("window_seconds"))
    if by_window:
        rows.append(
            (
                "8",
                f"p99 report → dispatched at {rate}/s, each {window} s of the run in turn",
                " / ".join(f"{_n(v)}" for v in by_window) + " ms",
                "–",
                INFO,
                src,
            )
        )
    for name, values in (fixed.get("cpu_by_window") or {}).items():
        if name.startswith(("broker", "machine")):
            rows.append(
                (
                    "8",
                    f"{name} CPU % at {rate}/s, the same {window} s in turn",
                    " / ".join(f"{_n(v)}" for v in values),
                    "–",
                    INFO,
                    src,
                )
            )
    low = p.get("latency_sustainable")
    if low:
        low_rate = _n(low.get("rate_per_s"))
        tries = "; ".join(
            f"{_n(a.get('rate_per_s'))}/s: {'sustained' if a.get('sustained') else 'not sustained'}"
            f" (last through {_n(a.get('drain_seconds_after_last_report'), 1)} s after the last report)"
            for a in p.get("latency_sustainable_attempts") or []
        )
        rows.append(
            (
                "8",
                f"A sustainable rate, {_n(low.get('seconds'))} s a try",
                tries or f"{low_rate}/s: {_n(low.get('sustained'))}",
                "–",
                INFO,
                src,
            )
        )
        for stage, label in (
            ("report_to_registered", "registered"),
            ("report_to_dispatched", "dispatched"),
            ("report_to_armed", "timers armed"),
            ("report_to_scored", "scored"),
        ):
            rows.append(
                (
                    "8",
                    f"report → {label} at {low_rate}/s, p50 / p95 / p99",
                    _ms3(low.get(stage)),
                    "–",
                    INFO,
                    src,
                )
            )
    return rows


def service_rows(results: dict[str, dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []

    def add(
        issue: str,
        name: str,
        figure: str,
        target: str,
        measured: Callable[[dict[str, Any]], str],
        met: Callable[[dict[str, Any]], Any],
    ) -> None:
        data = results.get(name)
        if data is None:
            rows.append((issue, figure, "not run", target, "not run", name))
        else:
            rows.append((issue, figure, measured(data), target, _verdict(met(data)), name))

    add(
        "3",
        "intake",
        "Intake: registrations/s from Kafka",
        "≥ 2,000/s",
        lambda d: _n(d.get("registrations_per_second")),
        lambda d: d.get("floor_met"),
    )
    add(
        "3",
        "intake",
        "Intake: report → registered p50 / p99 at a steady rate",
        "–",
        lambda d: (
            f"{_n(d.get('latency_p50_ms'))} / {_n(d.get('latency_p99_ms'))} ms "
            f"at {_n(d.get('steady_rate_per_second'))}/s"
        ),
        lambda d: None,
    )
    add(
        "4",
        "dispatch",
        "Dispatch: dispatches/s (first to last dispatch)",
        "≥ 3,000/s",
        lambda d: _n(d.get("dispatches_per_s_after_first_dispatch")),
        lambda d: d.get("floor_met_after_first_dispatch"),
    )
    add(
        "4",
        "dispatch",
        "Dispatch: registered → dispatched p99",
        "–",
        lambda d: f"{_n(d.get('latency_p99_ms'))} ms at {_n(d.get('latency_rate_per_s'))}/s",
        lambda d: None,
    )
    add(
        "5",
        "supervision",
        "Supervision: timers fired/s (burst, 1 M armed)",
        "≥ 5,000/s",
        lambda d: _n(d.get("burst_fired_per_s")),
        lambda d: d.get("floor_fired_per_s_met"),
    )
    add(
        "5",
        "supervision",
        "Supervision: p99 lag due → event at steady load",
        "< 1 s",
        lambda d: (
            f"{_n(d.get('steady_publish_lag_p99_s'), 3)} s at {_n(d.get('steady_rate_per_s'))}/s"
            + (
                f", the {_n(d['timer_settle_ms'])} ms settle included"
                if d.get("timer_settle_ms")
                else ""
            )
        ),
        lambda d: d.get("floor_p99_lag_met"),
    )
    add(
        "5",
        "supervision",
        "Supervision: p99 lag due → event with its consumer busy (case events flowing in)",
        "< 1 s",
        lambda d: (
            f"{_n(d.get('traffic_steady_publish_lag_p99_s'), 3)} s at "
            f"{_n(d.get('traffic_steady_rate_per_s', d.get('steady_rate_per_s')))}/s, with "
            f"{_n(d.get('traffic_rate_per_s'))} events/s consumed in batches of "
            f"{_n(d.get('traffic_consumed_batch_mean_records'))}"
        ),
        lambda d: d.get("traffic_floor_p99_lag_met"),
    )

    def growth(d: dict[str, Any]) -> tuple[float, float] | None:
        grown, base = d.get("rss_growth_from_10k_to_1m_armed_kb"), d.get("small_rss_ready_kb")
        if not isinstance(grown, int | float) or not isinstance(base, int | float) or base <= 0:
            return None
        return float(grown), float(base)

    def growth_text(d: dict[str, Any]) -> str:
        g = growth(d)
        if g is None:
            return "n/a"
        return (
            f"+{_n(g[0])} kB from 20 k to 1 M armed ({100 * g[0] / g[1]:.1f} % of "
            f"{_n(g[1] / 1024)} MB); peak {_n((d.get('rss_peak_kb') or 0) / 1024)} MB"
        )

    add(
        "5",
        "supervision",
        "Supervision: memory with the number of armed timers",
        "flat (growth < 5 %)",
        growth_text,
        lambda d: (g := growth(d)) is not None and g[0] < 0.05 * g[1],
    )
    add(
        "6",
        "scoring",
        "Scoring: events aggregated/s (processes sharing the partitions)",
        "≥ 20,000/s",
        _scoring_runs,
        lambda d: d.get("events_floor_met"),
    )
    add(
        "6",
        "scoring",
        "Scoring: CPU per event aggregated in the fastest run, service processes / their Postgres backends",
        "–",
        lambda d: (
            f"{_n(d.get('service_cpu_microseconds_per_event'))} / "
            f"{_n(d.get('postgres_backend_cpu_microseconds_per_event'))} µs"
        ),
        lambda d: None,
    )
    add(
        "6",
        "scoring",
        "Scoring: monthly ranking of 1,000 units over 10 M events, p99",
        "< 100 ms",
        lambda d: f"{_n(d.get('ranking_ms_p99'), 1)} ms",
        lambda d: d.get("ranking_floor_met"),
    )
    return rows


def _scoring_runs(d: dict[str, Any]) -> str:
    runs = d.get("runs") or [d]
    text = "; ".join(
        f"{_n(r.get('events_per_second'))} with {r.get('service_instances', 1)}" for r in runs
    )
    if len(runs) > 1:
        same = d.get("figures_identical_across_runs")
        text += "; figures identical" if same else "; **figures differ**"
    return text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def resources_section(p: dict[str, Any]) -> list[str]:
    phases = [
        ("(b) saturation", _get(p, "pipeline", "resources")),
        (f"(c) {_n(_get(p, 'latency', 'rate_per_s'))}/s", _get(p, "latency", "resources")),
    ]
    if _get(p, "latency_sustainable", "resources"):
        phases.append(
            (
                f"(c) {_n(_get(p, 'latency_sustainable', 'rate_per_s'))}/s",
                _get(p, "latency_sustainable", "resources"),
            )
        )
    phases = [(label, data) for label, data in phases if data]
    if not phases:
        return []
    names: list[str] = []
    for _, data in phases:
        names += [n for n in data if not n.startswith("_") and n not in names]
    rows = []
    for name in names:
        row = [name]
        for _, data in phases:
            figures = data.get(name) or {}
            cpu = f"{_n(figures.get('cpu_mean'))} / {_n(figures.get('cpu_max'))}"
            rss = (
                f"{_n(figures.get('rss_mean_mb'))} / {_n(figures.get('rss_max_mb'))}"
                if "rss_mean_mb" in figures
                else "–"
            )
            row += [cpu, rss]
        rows.append(row)
    per_report = _get(p, "pipeline", "cpu_ms_per_report") or {}
    if per_report:
        rows = [[row[0], _n(per_report.get(row[0]), 3), *row[1:]] for row in rows]
    header = ["process", *(["(b) CPU ms per report"] if per_report else [])]
    for label, _ in phases:
        header += [f"{label} CPU % mean / max", f"{label} RSS MB mean / max"]
    return [
        "",
        "### CPU and memory during the pipeline runs (psutil every 0.5 s; CPU 100 % = one core)",
        "",
        *_table(header, rows),
    ]


def writes_section(p: dict[str, Any]) -> list[str]:
    """Postgres's rows written per report in (b), by service and table."""
    written = _get(p, "pipeline", "rows_written_per_report")
    if not written:
        return []
    rows = []
    for service, figures in written.items():
        tables = {
            table: (counts, counts["inserted"] + counts["updated"] + counts["deleted"])
            for table, counts in figures["tables"].items()
        }
        for table, (counts, total) in sorted(tables.items(), key=lambda item: -item[1][1]):
            rows.append(
                [
                    service,
                    table,
                    _n(counts["inserted"], 2),
                    f"{_n(counts['updated'], 2)} ({_n(counts['hot'], 2)})",
                    _n(counts["deleted"], 2),
                    _n(total, 2),
                ]
            )
        rows.append([service, "all its tables", "", "", "", f"**{_n(figures['total'], 2)}**"])
    total = sum(figures["total"] for figures in written.values())
    return [
        "",
        f"### Rows Postgres wrote per report in (b): {_n(total, 1)} "
        "(pg_stat_user_tables; an update writes a row version, HOT ones no index entries)",
        "",
        *_table(
            ["service", "table", "inserted", "updated (HOT)", "deleted", "written"],
            rows,
        ),
    ]


def profile_section(p: dict[str, Any]) -> list[str]:
    prof = p.get("profile")
    if not prof:
        return []
    if prof.get("skipped"):
        return ["", f"### Profile: skipped ({prof['skipped']})"]
    own = prof.get("top_own_percent") or []
    cumulative = prof.get("top_cumulative_project_percent") or []
    packages = prof.get("own_by_package_percent") or []
    rows = []
    for i in range(max(len(own), len(cumulative))):
        a = own[i] if i < len(own) else ["", ""]
        b = cumulative[i] if i < len(cumulative) else ["", ""]
        rows.append([str(i + 1), f"`{a[0]}`", _n(a[1], 1), f"`{b[0]}`", _n(b[1], 1)])
    by_package = ", ".join(f"{name} {share} %" for name, share in packages)
    return [
        "",
        f"### Where the time goes: {prof.get('service')} (the busiest service in (b)), "
        f"py-spy, {_n(prof.get('samples'))} samples over {_n(prof.get('seconds'), 1)} s",
        "",
        *_table(
            ["#", "own time (leaf frame)", "%", "cumulative, project code", "%"],
            rows,
        ),
        "",
        f"Own time by package: {by_package}.",
        *_other_profiles(p, prof.get("service")),
    ]


def _other_profiles(p: dict[str, Any], detailed: str | None) -> list[str]:
    """One line per other service profiled in the same backlog: its heaviest packages."""
    lines = []
    for service, other in sorted((p.get("profiles") or {}).items()):
        if service == detailed or other.get("skipped"):
            continue
        shares = ", ".join(f"{n} {v} %" for n, v in (other.get("own_by_package_percent") or [])[:6])
        top = (other.get("top_own_percent") or [["?", 0]])[0]
        lines.append(
            f"- {service} ({_n(other.get('samples'))} samples): {shares}; "
            f"heaviest leaf `{top[0]}` {_n(top[1], 1)} %."
        )
    if lines:
        lines = ["", "The other services, profiled in the same backlog:", "", *lines]
    return lines


def render(results: dict[str, dict[str, Any]]) -> str:
    pipeline = results.get("pipeline")
    rows: list[Row] = []
    if pipeline is None:
        rows.append(("8", "Pipeline benchmark", "not run", "–", "not run", "pipeline"))
    else:
        rows += pipeline_rows(pipeline)
    rows += service_rows(results)
    lines = [
        "# Benchmark summary",
        "",
        "Generated by `python -m bench.summary` from `bench/results/*.json`; "
        "how each figure is measured: `bench/README.md`.",
        "",
        *_table(
            ["issue", "figure", "measured", "target", "verdict", "source"],
            [list(r) for r in rows],
        ),
    ]
    if pipeline is not None:
        lines += resources_section(pipeline)
        lines += writes_section(pipeline)
        lines += profile_section(pipeline)
    lines += ["", "### Sources", ""]
    for name, data in results.items():
        machine = data.get("_machine", "?")
        load = _get(data, "machine", "load_average_1m_before")
        busy = _get(data, "machine", "cpu_percent_busy_before")
        extra = f", load average before {load}" if load is not None else ""
        extra += f", machine {busy} % busy just before" if busy is not None else ""
        lines.append(
            f"- `{name}.json`: measured {data.get('_measured_at', '?')} on {machine}{extra}"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    results = load()
    text = render(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "SUMMARY.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
