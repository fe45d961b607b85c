"""The HTML reports draw what the figures say, escape what they quote, and stand alone."""

import re

from ops.reports import BAND_COLOURS, heat_table, ranking_bars, render_daily, render_weekly
from shared.reference import load_reference

REF = load_reference()
HOT_CELL = REF.cells[10].code


def day(label: str, overdue: int, rebounds: int) -> dict:
    return {
        "date": label,
        "intake": {"registered": 40, "merged": 3, "rejected": 1},
        "totals": {
            "dispatched": 38,
            "closures": 30,
            "became_overdue": overdue,
            "open_overdue": 5,
            "rebounds": rebounds,
        },
        "departments": [
            {
                "name": "环卫所 <Sanitation>",
                "dispatched": 20,
                "closures": 18,
                "became_overdue": 1,
                "open_overdue": 2,
                "rebounds": 1,
            }
        ],
        "areas": [],
        "rebounds": [
            {
                "case_id": "C9",
                "category_code": "E0102",
                "grid_code": HOT_CELL,
                "count": 2,
                "department": "sanitation",
            }
        ],
    }


RANKING = [
    {"rank": 1, "unit_id": "sanitation", "name": "环卫所", "score": 93.5, "band": "A"},
    {"rank": 2, "unit_id": "parks", "name": "园林局", "score": 61.0, "band": "C"},
    {"rank": None, "unit_id": "telecom", "name": "通信", "score": None, "band": None},
]


def test_ranking_bars_are_as_long_as_the_score_and_coloured_by_band():
    svg = ranking_bars(RANKING)
    widths = [
        float(w) for w in re.findall(r'class="bar band-\w" x="\d+" y="\d+" width="([\d.]+)"', svg)
    ]
    assert len(widths) == 2, "unranked units (no score) get no bar"
    assert widths[0] / widths[1] == 93.5 / 61.0
    assert BAND_COLOURS["A"] in svg and BAND_COLOURS["C"] in svg


def test_heat_table_marks_only_the_cells_with_problems():
    svg = heat_table(REF, {HOT_CELL: 3})
    assert svg.count('class="cell hot"') == 1
    assert svg.count("<rect") == len(REF.cells)
    assert f"<title>{HOT_CELL}: 3</title>" in svg


def test_daily_page_stands_alone_and_escapes_names():
    trend = [day(f"2026-11-0{n}", overdue=n, rebounds=n % 2) for n in range(1, 8)]
    page = render_daily(day("2026-11-07", 7, 1), trend, RANKING, REF)
    assert page.startswith("<!doctype html>") and "日报备" in page
    assert "<Sanitation>" not in page and "&lt;Sanitation&gt;" in page
    assert "<script" not in page and not re.search(r'(src|href)="', page), "no external files"
    assert page.count('class="trend"') == 14, "a column per day in each of the two trends"
    assert 'class="cell hot"' in page


def test_weekly_page_shows_both_rankings_movers_and_lists():
    weekly = {
        "week": "2026-W45",
        "starts_at": "2026-11-02T00:00:00+08:00",
        "ends_at": "2026-11-09T00:00:00+08:00",
        "ranking": {"department": RANKING, "area": RANKING[:1]},
        "movers": [{"name": "园林局", "rank": 2, "previous_rank": 5, "change": 3}],
        "overdue": [
            {
                "case_id": "C1",
                "department": "parks",
                "area": "street-canglang",
                "grid_code": HOT_CELL,
                "overdue_at": "2026-11-03",
            }
        ],
        "rebounds": [],
    }
    page = render_weekly(weekly, [day(f"2026-11-0{n}", 1, 0) for n in range(2, 9)], REF)
    assert "周调度" in page and "2026-W45" in page and "2026-11-02 – 2026-11-09" in page
    assert page.count('class="bar band-') == 3
    assert "C1" in page and "园林局" in page
