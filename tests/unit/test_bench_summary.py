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
