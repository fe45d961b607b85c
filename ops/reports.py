"""The daily (日报备) and weekly (周调度) reports as self-contained HTML pages.

The figures come from scoring's report endpoints; this module only draws
them: ranking bars coloured by band, overdue and rebound trends, and a
map-like heat table of the grid. Inline SVG and CSS, no scripts or external
files, so a page prints, mails and shows on the supervision centre's screen.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import httpx

from shared.reference import ReferenceData

BAND_COLOURS = {"A": "#1a9850", "B": "#91cf60", "C": "#fee08b", "D": "#fc8d59", "E": "#d73027"}
Row = Mapping[str, Any]

_CSS = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei","SimSun",system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #ccc}
.sub{color:#666;font-size:13px} .cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:22px} table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left} th{background:#f5f5f5}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:24px}
@media print{body{margin:8mm}.grid2{grid-template-columns:1fr 1fr}h2{break-after:avoid}}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def ranking_bars(rows: Sequence[Row], width: int = 520) -> str:
    """Horizontal bars, one per ranked unit, length = score, colour = band."""
    ranked = [r for r in rows if r.get("score") is not None]
    bar_h, gap, label_w = 18, 6, 170
    height = max(1, len(ranked)) * (bar_h + gap) + 10
    parts = [
        f'<svg role="img" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    scale = (width - label_w - 70) / 100
    for i, r in enumerate(ranked):
        y = 5 + i * (bar_h + gap)
        score = float(r["score"])
        band = str(r.get("band") or "")
        colour = BAND_COLOURS.get(band, "#999")
        name = r.get("name") or r.get("unit_id")
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="12">{_e(r.get("rank") or "–")}. {_e(name)}</text>'
            f'<rect class="bar band-{_e(band)}" x="{label_w}" y="{y}" width="{score * scale:.1f}" '
            f'height="{bar_h}" fill="{colour}"/>'
            f'<text x="{label_w + score * scale + 4:.1f}" y="{y + 13}" font-size="12">'
            f"{score:.1f} {_e(band)}</text>"
        )
    if not ranked:
        parts.append('<text x="0" y="15" font-size="12">no ranked units in this period</text>')
    parts.append("</svg>")
    return "".join(parts)


def trend_chart(
    points: Sequence[tuple[str, int]], title: str, colour: str, width: int = 420
) -> str:
    """Columns per day with their values: how a count moved over the days shown."""
    height, base, col_w = 150, 120, max(8, (width - 40) // max(1, len(points)) - 6)
    top = max([v for _, v in points] + [1])
    parts = [
        f'<svg role="img" aria-label="{_e(title)}" width="{width}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(points):
        x = 30 + i * (col_w + 6)
        h = 100 * value / top
        parts.append(
            f'<rect class="trend" x="{x}" y="{base - h:.1f}" width="{col_w}" height="{h:.1f}" fill="{colour}"/>'
            f'<text x="{x}" y="{base - h - 3:.1f}" font-size="11">{value}</text>'
            f'<text x="{x}" y="{base + 14}" font-size="10">{_e(label[5:])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def heat_table(ref: ReferenceData, counts: Mapping[str, int], cell_px: int = 9) -> str:
    """The grid drawn cell by cell, darker where more problems were found: a map at a glance."""
    if not ref.cells:
        return ""
    rows = [c.row for c in ref.cells]
    cols = [c.col for c in ref.cells]
    top, left = min(rows), min(cols)
    width = (max(cols) - left + 1) * cell_px
    height = (max(rows) - top + 1) * cell_px
    peak = max(counts.values(), default=0) or 1
    parts = [
        f'<svg role="img" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for cell in ref.cells:
        n = counts.get(cell.code, 0)
        shade = "#eef2f5" if n == 0 else f"rgba(215,48,39,{0.25 + 0.75 * n / peak:.2f})"
        # Rows count northwards in the grid data; the screen counts down.
        y = (max(rows) - cell.row) * cell_px
        x = (cell.col - left) * cell_px
        parts.append(
            f'<rect class="cell{" hot" if n else ""}" x="{x}" y="{y}" width="{cell_px - 1}" '
            f'height="{cell_px - 1}" fill="{shade}"><title>{cell.code}: {n}</title></rect>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: Iterable[Row], columns: Sequence[tuple[str, str]]) -> str:
    head = "".join(f"<th>{_e(title)}</th>" for _, title in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(r.get(key))}</td>" for key, _ in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body or '<tr><td>—</td></tr>'}</table>"


def _page(title: str, subtitle: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"
        f'<div class="sub">{_e(subtitle)}</div>{body}</body></html>'
    )


def place_counts(*lists: Iterable[Row]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for rows in lists:
        for r in rows:
            if r.get("grid_code"):
                counts[str(r["grid_code"])] += 1
    return counts


def render_daily(
    report: Row, trend: Sequence[Row], ranking: Sequence[Row], ref: ReferenceData
) -> str:
    totals, intake = report["totals"], report["intake"]
    cards = "".join(
        f'<div class="card">{_e(label)}<b>{_e(value)}</b></div>'
        for label, value in [
            ("立案 registered", intake["registered"]),
            ("合并 merged", intake["merged"]),
            ("派遣 dispatched", totals["dispatched"]),
            ("结案 closed", totals["closures"]),
            ("超期 overdue now", totals["open_overdue"]),
            ("回弹 rebounds", totals["rebounds"]),
        ]
    )
    overdue_trend = [(str(d["date"]), int(d["totals"]["became_overdue"])) for d in trend]
    rebound_trend = [(str(d["date"]), int(d["totals"]["rebounds"])) for d in trend]
    body = (
        f'<div class="cards">{cards}</div>'
        f"<h2>部门排名 Department ranking (month to date)</h2>{ranking_bars(ranking)}"
        '<div class="grid2"><div><h2>超期趋势 Overdue, last days</h2>'
        f"{trend_chart(overdue_trend, 'overdue', '#fc8d59')}</div>"
        f"<div><h2>回弹趋势 Rebounds, last days</h2>{trend_chart(rebound_trend, 'rebounds', '#d73027')}</div></div>"
        "<h2>各部门 Departments today</h2>"
        + _table(
            report["departments"],
            [
                ("name", "department"),
                ("dispatched", "dispatched"),
                ("closures", "closed"),
                ("became_overdue", "went overdue"),
                ("open_overdue", "overdue now"),
                ("rebounds", "rebounds"),
            ],
        )
        + f"<h2>热点 Hotspots (rebounds today by grid cell)</h2>{heat_table(ref, place_counts(report['rebounds']))}"
        + "<h2>回弹 Rebounds</h2>"
        + _table(
            report["rebounds"],
            [
                ("case_id", "case"),
                ("category_code", "category"),
                ("grid_code", "grid"),
                ("count", "count"),
                ("department", "department"),
            ],
        )
    )
    return _page(f"日报备 Daily report {report['date']}", "数字城管 digital city management", body)


def render_weekly(report: Row, trend: Sequence[Row], ref: ReferenceData) -> str:
    ranking = report["ranking"]
    body = (
        f"<h2>部门排名 Department ranking</h2>{ranking_bars(ranking['department'])}"
        f"<h2>街道排名 Area ranking</h2>{ranking_bars(ranking['area'])}"
        '<div class="grid2"><div><h2>超期趋势 Overdue by day</h2>'
        f"{trend_chart([(str(d['date']), int(d['totals']['became_overdue'])) for d in trend], 'overdue', '#fc8d59')}</div>"
        "<div><h2>回弹趋势 Rebounds by day</h2>"
        f"{trend_chart([(str(d['date']), int(d['totals']['rebounds'])) for d in trend], 'rebounds', '#d73027')}</div></div>"
        "<h2>升降 Movers</h2>"
        + _table(
            report["movers"],
            [
                ("name", "unit"),
                ("rank", "rank"),
                ("previous_rank", "last week"),
                ("change", "change"),
            ],
        )
        + f"<h2>热点 Hotspots (overdue and rebounds by grid cell)</h2>{heat_table(ref, place_counts(report['overdue'], report['rebounds']))}"
        + "<h2>超期清单 Overdue list</h2>"
        + _table(
            report["overdue"],
            [
                ("case_id", "case"),
                ("department", "department"),
                ("area", "area"),
                ("overdue_at", "overdue at"),
            ],
        )
        + "<h2>回弹清单 Rebound list</h2>"
        + _table(
            report["rebounds"],
            [
                ("case_id", "case"),
                ("category_code", "category"),
                ("grid_code", "grid"),
                ("count", "count"),
            ],
        )
    )
    return _page(
        f"周调度 Weekly report {report['week']}",
        f"{report['starts_at'][:10]} – {report['ends_at'][:10]} · 数字城管 digital city management",
        body,
    )


async def export(kind: str, when: str, scoring_url: str, ref: ReferenceData) -> str:
    """Fetch the figures from scoring and draw the page (``when``: a date, or an ISO week)."""
    async with httpx.AsyncClient(base_url=scoring_url, timeout=30) as http:

        async def daily(day: date) -> dict[str, Any]:
            response = await http.get("/v1/reports/daily", params={"date": day.isoformat()})
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

        if kind == "daily":
            day = date.fromisoformat(when)
            report = await daily(day)
            trend = [await daily(day - timedelta(days=n)) for n in range(6, -1, -1)]
            scores = await http.get(
                "/v1/scores", params={"unit_type": "department", "period": when[:7]}
            )
            scores.raise_for_status()
            rows: list[dict[str, Any]] = scores.json()["units"]
            return render_daily(report, trend, rows, ref)
        response = await http.get("/v1/reports/weekly", params={"week": when})
        response.raise_for_status()
        weekly: dict[str, Any] = response.json()
        start = date.fromisoformat(weekly["starts_at"][:10])
        trend = [await daily(start + timedelta(days=n)) for n in range(7)]
        return render_weekly(weekly, trend, ref)
