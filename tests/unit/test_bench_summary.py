"""The benchmark summary's Postgres rows-written section, from a pipeline result."""

from __future__ import annotations

from bench.summary import writes_section


def _counts(inserted: float, updated: float = 0.0, hot: float = 0.0, deleted: float = 0.0) -> dict:
    return {"inserted": inserted, "updated": updated, "hot": hot, "deleted": deleted}


def test_rows_written_are_listed_heaviest_table_first_with_each_service_total() -> None:
    pipeline = {
        "pipeline": {
            "rows_written_per_report": {
                "dispatch": {
                    "total": 4.0,
                    "tables": {
                        "inbox": _counts(1.0),
                        "outbox": _counts(1.0, deleted=1.0),
                        "cases": _counts(1.0),
                    },
                },
                "supervision": {
                    "total": 3.0,
                    "tables": {"cases": _counts(1.0, updated=2.0, hot=0.5)},
                },
            }
        }
    }
    lines = writes_section(pipeline)
    assert lines[1].startswith("### Rows Postgres wrote per report in (b): 7.0 ")
    table = [line for line in lines if line.startswith("| ") and "service" not in line]
    assert table == [
        "| dispatch | outbox | 1.00 | 0.00 (0.00) | 1.00 | 2.00 |",
        "| dispatch | inbox | 1.00 | 0.00 (0.00) | 0.00 | 1.00 |",
        "| dispatch | cases | 1.00 | 0.00 (0.00) | 0.00 | 1.00 |",
        "| dispatch | all its tables |  |  |  | **4.00** |",
        "| supervision | cases | 1.00 | 2.00 (0.50) | 0.00 | 3.00 |",
        "| supervision | all its tables |  |  |  | **3.00** |",
    ]


def test_a_result_without_rows_written_adds_no_section() -> None:
    assert writes_section({"pipeline": {"per_s": 1}}) == []


def test_the_cpu_budget_a_report_is_what_the_floor_allows_against_what_was_spent() -> None:
    from bench.summary import _cpu_budget

    pipeline = {
        "machine": {"cpus": 2},
        "limit_msgs_per_s": 10_000,
        "pipeline": {
            "cpu_ms_per_report": {
                "intake": 0.3,
                "dispatch": 0.2,
                "supervision": 0.2,
                "scoring": 0.1,
                "broker (tansu)": 0.13,
                "load generator (bench)": 0.05,
                "postgres (this run's backends)": 0.34,
                "machine (100 = all cores)": 0.66,
            }
        },
    }
    budget = _cpu_budget(pipeline)
    assert budget is not None
    # 2 cores over 25 % of 10,000 reports/s: 0.8 ms of one core a report.
    assert budget[1] == (
        "allows 0.80; spent 1.32 (Postgres 0.34, the broker 0.13, the load generator 0.05, "
        "the four services 0.80)"
    )
    assert _cpu_budget({"limit_msgs_per_s": 10_000}) is None, "no CPU figures: no row"
