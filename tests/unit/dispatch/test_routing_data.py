"""routing.json and dispatch.json: the sample loads, and a broken rule names file, record and field."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.reference import (
    SAMPLE_CITY_DIR,
    HandlingTier,
    ReferenceDataError,
    TimeUnit,
    load_reference,
)
from tests.unit.dispatch.cases import SAMPLE


def test_the_sample_city_ships_rules_and_settings() -> None:
    assert [rule.id for rule in SAMPLE.routing][:2] == [
        "vacant-lot-by-dispatcher",
        "gas-leak-owner-only",
    ]
    assert SAMPLE.dispatch.max_returns == 2
    maximum = SAMPLE.dispatch.extension_limit("engineering")
    assert maximum is not None and (maximum.value, maximum.unit) == (10, TimeUnit.WORKING_DAYS)
    assert SAMPLE.dispatch.extension_limit(HandlingTier.ORDINARY) is None
    assert SAMPLE.dispatch.extension_limit("special") is None
    by_tier = SAMPLE.dispatch.handle_limit_by_tier
    assert {tier.value: (limit.value, limit.unit.value) for tier, limit in by_tier.items()} == {
        "engineering": (15, "working_days"),
        "special": (20, "working_days"),
    }


def city_with(tmp_path: Path, name: str, change: Callable[[Any], None]) -> Path:
    city = tmp_path / "city"
    shutil.copytree(SAMPLE_CITY_DIR, city)
    path = city / name
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return city


def rule(index: int, **changes: Any) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        data[index].update(changes)

    return change


def general_rule_first(data: Any) -> None:
    data.insert(
        0,
        {
            "id": "all-lamps",
            "description": "every lamp",
            "match": {"categories": ["C0114"]},
            "co_departments": ["parks"],
        },
    )


BREAKAGES = [
    pytest.param(rule(2, owner="nobody-at-all"), "record 2 (id 'pingjiang-vending-squad')", "owner",
                 "unknown department 'nobody-at-all'", id="unknown-owner"),
    pytest.param(rule(0, match={"categories": ["C9999"]}), "record 0 (id 'vacant-lot-by-dispatcher')",
                 "match.categories[0]", "unknown category 'C9999'", id="unknown-category"),
    pytest.param(rule(3, match={"streets": ["320508009"]}), "record 3 (id 'canglang-contracted-cleaning')",
                 "match.streets[0]", "unknown street '320508009'", id="unknown-street"),
    pytest.param(rule(3, match={"streets": ["3205"]}), "record 3 (id 'canglang-contracted-cleaning')",
                 "match.streets[0]", "should match pattern", id="malformed-street"),
    pytest.param(rule(4, match={"area_classes": ["D"]}), "record 4 (id 'fringe-lamps-street-office')",
                 "match.area_classes[0]", "Input should be 'A', 'B' or 'C'", id="bad-area-class"),
    pytest.param(rule(6, candidates=["locality", "bureau-of-nothing"]), "record 6 (id 'fringe-illegal-building')",
                 "candidates[1]", "unknown department 'bureau-of-nothing'", id="unknown-candidate"),
    pytest.param(rule(6, order="owner_first"), "record 6 (id 'fringe-illegal-building')",
                 "candidates", "give either order or candidates, not both", id="order-and-candidates"),
    pytest.param(rule(6, owner="planning", candidates=["locality"]), "record 6 (id 'fringe-illegal-building')",
                 "candidates", "the rule's owner would never be asked", id="owner-never-asked"),
    pytest.param(rule(6, candidates=["owner", "owner"]), "record 6 (id 'fringe-illegal-building')",
                 "candidates", "must not repeat", id="repeated-candidate"),
    pytest.param(rule(5, co_departments=[]), "record 5 (id 'core-manholes-traffic')",
                 "co_departments", "must set at least one of", id="rule-that-does-nothing"),
    pytest.param(rule(7, co_departments=["parks", "ghosts"]), "record 7 (id 'shuangta-grid-chief')",
                 "co_departments[1]", "unknown department 'ghosts'", id="unknown-co-department"),
    pytest.param(rule(1, id="vacant-lot-by-dispatcher"), "record 1 (id 'vacant-lot-by-dispatcher')",
                 "id", "duplicate 'vacant-lot-by-dispatcher' (first at record 0", id="duplicate-id"),
    pytest.param(rule(1, id="Gas Leak"), "record 1 (id 'Gas Leak')", "id", "should match pattern", id="malformed-id"),
    pytest.param(rule(1, priority=3), "record 1 (id 'gas-leak-owner-only')", "priority",
                 "Extra inputs are not permitted", id="unknown-field"),
    pytest.param(rule(0, match={"categories": ["E0102"], "kinds": ["component"]}),
                 "record 0 (id 'vacant-lot-by-dispatcher')", "match.kinds", "no category", id="kinds-exclude-categories"),
    pytest.param(general_rule_first, "record 5 (id 'fringe-lamps-street-office')", "match",
                 "can never match: record 0 (id 'all-lamps') comes first", id="shadowed-rule"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "record", "field", "problem"), BREAKAGES)
def test_a_broken_routing_rule_names_file_record_and_field(
    tmp_path: Path, change: Callable[[Any], None], record: str, field: str, problem: str
) -> None:
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(city_with(tmp_path, "routing.json", change))
    error = caught.value
    assert (error.file, error.record, error.field) == ("routing.json", record, field)
    assert problem in error.problem
    assert str(error).startswith(f"routing.json {record}: field '{field}': ")


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        pytest.param(lambda d: d.update(max_returns=0), "max_returns", "greater than or equal to 1", id="no-returns"),
        pytest.param(lambda d: d["extension_maximum"]["engineering"].update(unit="fortnights"),
                     "extension_maximum.engineering.unit", "'working_days'", id="bad-unit"),
        pytest.param(lambda d: d["extension_maximum"].update(urgent={"value": 1, "unit": "days"}),
                     "extension_maximum.urgent.[key]", "'engineering'", id="unknown-tier"),
        pytest.param(lambda d: d.update(max_extension=3), "max_extension", "Extra inputs", id="unknown-setting"),
    ],
)  # fmt: skip
def test_broken_dispatch_settings_name_the_field(
    tmp_path: Path, change: Callable[[Any], None], field: str, problem: str
) -> None:
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(city_with(tmp_path, "dispatch.json", change))
    error = caught.value
    assert (error.file, error.record, error.field) == ("dispatch.json", None, field)
    assert problem in error.problem


def test_dispatch_settings_have_defaults(tmp_path: Path) -> None:
    loaded = load_reference(city_with(tmp_path, "dispatch.json", lambda d: d.clear()))
    assert loaded.dispatch.max_returns == 2
    assert loaded.dispatch.extension_maximum == {}
    assert loaded.dispatch.handle_limit_by_tier == {}


def test_an_empty_rule_table_routes_by_the_catalogue_alone(tmp_path: Path) -> None:
    loaded = load_reference(city_with(tmp_path, "routing.json", lambda d: d.clear()))
    assert loaded.routing == ()
    category = loaded.category("C0504")
    assert category is not None and loaded.routing_rule(category, "320508001", "B") is None


@pytest.mark.parametrize("name", ["routing.json", "dispatch.json"])
def test_a_missing_file_is_named(tmp_path: Path, name: str) -> None:
    city = tmp_path / "city"
    shutil.copytree(SAMPLE_CITY_DIR, city)
    (city / name).unlink()
    with pytest.raises(ReferenceDataError, match=rf"^{name}: missing from "):
        load_reference(city)
