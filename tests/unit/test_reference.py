"""Reference data: the sample city loads and meets its counts, lookups work, and
every kind of broken file fails naming the file, the record and the field."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.reference import (
    ENV_VAR,
    FILES,
    SAMPLE_CITY_DIR,
    AreaClass,
    AssignmentOrder,
    CategoryKind,
    DepartmentKind,
    ReferenceData,
    ReferenceDataError,
    TimeUnit,
    load_reference,
)


@pytest.fixture(scope="module")
def sample() -> ReferenceData:
    return load_reference(SAMPLE_CITY_DIR)


# -- the sample city ----------------------------------------------------------


def test_sample_city_meets_the_counts(sample: ReferenceData) -> None:
    kinds = {category.kind for category in sample.categories}
    assert len(sample.categories) >= 40
    assert kinds == {CategoryKind.COMPONENT, CategoryKind.EVENT}
    assert len(sample.cells) >= 500
    assert len(sample.streets) >= 4
    assert len(sample.communities) >= 12
    assert len(sample.departments) >= 10
    assert sample.district.code == "320508"


def test_sample_categories_cover_every_standard_major(sample: ReferenceData) -> None:
    majors = {(category.kind, category.major) for category in sample.categories}
    assert {major for kind, major in majors if kind is CategoryKind.COMPONENT} == {
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
    }
    assert {major for kind, major in majors if kind is CategoryKind.EVENT} == {
        "01",
        "02",
        "03",
        "04",
        "05",
    }
    rubbish = sample.category("E0102")
    assert rubbish is not None
    assert sample.major_of(rubbish).name_zh == "市容环境"


def test_sample_limits_follow_the_domain_values(sample: ReferenceData) -> None:
    def handle(code: str) -> tuple[float, TimeUnit]:
        category = sample.category(code)
        assert category is not None
        return category.limits.handle.value, category.limits.handle.unit

    assert handle("E0102") == (4, TimeUnit.WORKING_HOURS)  # exposed rubbish
    assert handle("E0104") == (2, TimeUnit.WORKING_HOURS)  # dirty road
    assert handle("E0505") == (4, TimeUnit.WORKING_HOURS)  # waterlogging
    assert handle("E0306") == (2, TimeUnit.WORKING_DAYS)  # muck
    assert handle("C0405") == (5, TimeUnit.WORKING_DAYS)  # green space
    assert handle("C0101") == (6, TimeUnit.HOURS)  # manhole cover, natural time
    for category in sample.categories:
        assert sample.department(category.owner_department) is not None


def test_category_helpers(sample: ReferenceData) -> None:
    rubbish = sample.category("E0102")
    cover = sample.category("C0101")
    assert rubbish is not None and cover is not None
    assert rubbish.handle_limit(AreaClass.A).value == 2
    assert rubbish.handle_limit("B") == rubbish.limits.handle
    assert rubbish.handle_limit(None) == rubbish.limits.handle
    assert cover.is_urgent and not rubbish.is_urgent
    assert cover.assignment_order is AssignmentOrder.OWNER_FIRST
    assert rubbish.assignment_order is AssignmentOrder.LOCALITY_FIRST
    assert cover.duplicates.enabled
    assert sample.category("0101") is None


def test_sample_calendar_is_the_2026_notice(sample: ReferenceData) -> None:
    holidays = {
        (h.name_en, h.first.isoformat(), h.last.isoformat()) for h in sample.calendar.holidays
    }
    assert holidays == {
        ("New Year's Day", "2026-01-01", "2026-01-03"),
        ("Spring Festival", "2026-02-15", "2026-02-23"),
        ("Qingming Festival", "2026-04-04", "2026-04-06"),
        ("Labour Day", "2026-05-01", "2026-05-05"),
        ("Dragon Boat Festival", "2026-06-19", "2026-06-21"),
        ("Mid-Autumn Festival", "2026-09-25", "2026-09-27"),
        ("National Day", "2026-10-01", "2026-10-07"),
    }
    makeup = {m.day.isoformat() for m in sample.calendar.makeup_working_days}
    assert makeup == {
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    }
    assert sample.calendar.timezone == "Asia/Shanghai"


def test_sample_scoring_and_supervision_defaults(sample: ReferenceData) -> None:
    scoring = sample.scoring
    assert [(t.indicator.value, t.weight, t.complement) for t in scoring.department.terms] == [
        ("closure_rate", 30, False),
        ("on_time_rate", 30, False),
        ("rework_rate", 30, True),
        ("satisfaction_rate", 10, False),
    ]
    assert scoring.department.deductions.per_rework_order == 0.2
    assert scoring.department.deductions.per_repeated_verification_failure == 0.5
    assert scoring.department.deductions.repeated_failure_threshold == 3
    assert [(t.indicator.value, t.weight) for t in scoring.area.terms] == [
        ("response_rate", 10),
        ("closure_rate", 50),
        ("satisfaction_rate", 40),
    ]
    assert scoring.satisfaction.basically_satisfied_factor == 0.9
    assert [scoring.band_for(s) for s in (100, 90, 89.99, 75, 60, 59.9, 40, 39.9, 0)] == list(
        "AABBCDDEE"
    )

    supervision = sample.supervision
    assert supervision.warning_share == 0.8
    assert [n.level for n in supervision.notice_ladder] == [1, 2, 3]
    assert supervision.notice(4) is None
    assert supervision.rebound.window_days == 30
    assert supervision.lookback.after_days == 7


def test_loading_is_fast() -> None:
    began = time.perf_counter()
    load_reference(SAMPLE_CITY_DIR)
    assert time.perf_counter() - began < 1.0


# -- places and lookups ---------------------------------------------------------


def test_cell_at_finds_a_known_cell(sample: ReferenceData) -> None:
    cell = sample.cell("32050800100101")
    assert cell is not None
    lat, lon = cell.centre
    assert sample.cell_at(lat, lon) is cell
    assert sample.community_of(cell).name_zh == "大儒社区"
    assert sample.street_of(cell).name_zh == "平江街道"
    office = sample.street_office(cell.street)
    assert office.kind is DepartmentKind.STREET_OFFICE and office.street == cell.street


def test_cell_at_finds_every_cell_from_its_centre(sample: ReferenceData) -> None:
    for cell in sample.cells:
        assert sample.cell_at(*cell.centre) is cell
        assert cell.contains(*cell.centre)


def test_cell_at_returns_none_outside_the_city(sample: ReferenceData) -> None:
    grid = sample.district.grid
    assert sample.cell_at(0.0, 0.0) is None
    assert sample.cell_at(grid.origin_lat + 0.0001, grid.origin_lon - 0.0001) is None  # just west
    assert sample.cell_at(grid.origin_lat - 0.0001, grid.origin_lon + 0.01) is None  # just south
    # The south-west corner of the lattice lies outside the city's rounded outline.
    corner = (grid.origin_lat + grid.cell_lat_deg / 2, grid.origin_lon + grid.cell_lon_deg / 2)
    assert sample.cell_at(*corner) is None
    assert sample.cell_at(math.nan, grid.origin_lon) is None
    assert sample.cell_at(math.inf, math.inf) is None


def test_codes_nest(sample: ReferenceData) -> None:
    for cell in sample.cells:
        assert len(cell.code) == 14
        assert cell.code.startswith(cell.community) and cell.community.startswith(cell.street)
        assert cell.street.startswith(sample.district.code)
        assert sample.community_of(cell).street == cell.street
    for street in sample.streets:
        assert sample.street_office(street.code).street == street.code


def test_lookups_of_unknown_keys(sample: ReferenceData) -> None:
    assert sample.cell("32050800100199") is None
    assert sample.department("no-such-department") is None
    assert sample.channel("hotline_12345") is not None
    assert sample.channel("pigeon") is None
    with pytest.raises(KeyError):
        sample.street_office("320508999")


# -- REFERENCE_DATA_DIR -----------------------------------------------------------


def copy_of_sample(tmp_path: Path) -> Path:
    target = tmp_path / "city"
    shutil.copytree(SAMPLE_CITY_DIR, target)
    return target


def edit_json(directory: Path, name: str, change: Callable[[Any], None]) -> None:
    path = directory / name
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def edit_csv(directory: Path, name: str, change: Callable[[list[dict[str, str]]], None]) -> None:
    path = directory / name
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0])
    change(rows)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def test_reference_data_dir_replaces_the_whole_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    city = copy_of_sample(tmp_path)
    edit_json(city, "district.json", lambda data: data.update(name_en="Another District"))
    edit_json(city, "categories.json", lambda data: data.pop())
    monkeypatch.setenv(ENV_VAR, str(city))
    loaded = load_reference()
    assert loaded.directory == city
    assert loaded.district.name_en == "Another District"
    assert len(loaded.categories) == len(load_reference(SAMPLE_CITY_DIR).categories) - 1


def test_reference_data_dir_does_not_fall_back_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    city = copy_of_sample(tmp_path)
    (city / "channels.json").unlink()
    monkeypatch.setenv(ENV_VAR, str(city))
    with pytest.raises(ReferenceDataError, match=r"^channels\.json: missing from "):
        load_reference()


def test_reference_data_dir_must_be_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(ReferenceDataError, match="is not a directory"):
        load_reference()


def test_every_file_of_the_set_is_read(tmp_path: Path) -> None:
    assert sorted(FILES) == sorted(
        p.name for p in SAMPLE_CITY_DIR.iterdir() if p.suffix in (".json", ".csv")
    )
    for name in FILES:
        city = tmp_path / name
        shutil.copytree(SAMPLE_CITY_DIR, city)
        (city / name).unlink()
        with pytest.raises(ReferenceDataError) as caught:
            load_reference(city)
        assert caught.value.file == name


# -- broken files ---------------------------------------------------------------


def sample_json(name: str) -> Any:
    return json.loads((SAMPLE_CITY_DIR / name).read_text(encoding="utf-8"))


CATEGORY_7 = sample_json("categories.json")[7]["code"]
CATEGORY_3 = sample_json("categories.json")[3]["code"]


def _set(path: list[Any], value: Any) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


JSON_BREAKAGES = [
    pytest.param(
        "categories.json",
        _set([7, "limits", "handle", "unit"], "fortnights"),
        f"record 7 (code '{CATEGORY_7}')",
        "limits.handle.unit",
        "'working_days'",
        id="bad-field-value",
    ),
    pytest.param(
        "categories.json",
        _set([3, "owner_department"], "no-such-department"),
        f"record 3 (code '{CATEGORY_3}')",
        "owner_department",
        "unknown department 'no-such-department'",
        id="unknown-department",
    ),
    pytest.param(
        "departments.json",
        lambda data: data.append(dict(data[0])),
        f"record {len(sample_json('departments.json'))} (id 'water-affairs')",
        "id",
        "duplicate 'water-affairs' (first at record 0",
        id="duplicate-id",
    ),
    pytest.param(
        "categories.json",
        _set([7, "code"], "X" + CATEGORY_7),
        f"record 7 (code 'X{CATEGORY_7}')",
        "code",
        f"must be '{CATEGORY_7}'",
        id="malformed-category-code",
    ),
    pytest.param(
        "categories.json",
        lambda data: data.append(dict(data[0])),
        f"record {len(sample_json('categories.json'))} (code 'C0101')",
        "code",
        "duplicate",
        id="duplicate-category",
    ),
    pytest.param(
        "categories.json",
        lambda data: data[0].update(major="09", code="C0901"),
        "record 0 (code 'C0901')",
        "major",
        "no component major '09'",
        id="unknown-major",
    ),
    pytest.param(
        "categories.json",
        _set([0, "limits", "handle", "value"], 0),
        "record 0 (code 'C0101')",
        "limits.handle.value",
        "greater than 0",
        id="zero-limit",
    ),
    pytest.param(
        "streets.json",
        _set([2, "colour"], "red"),
        "record 2 (code '320508003')",
        "colour",
        "Extra inputs are not permitted",
        id="unknown-field",
    ),
    pytest.param(
        "streets.json",
        _set([1, "code"], "32050800"),
        "record 1 (code '32050800')",
        "code",
        "should match pattern",
        id="malformed-street-code",
    ),
    pytest.param(
        "communities.json",
        _set([5, "street"], "320508001"),
        "record 5 (code '320508002002')",
        "code",
        "does not start with its street '320508001'",
        id="community-outside-its-street",
    ),
    pytest.param(
        "departments.json",
        _set([0, "street"], "320508001"),
        "record 0 (id 'water-affairs')",
        "street",
        "only a street office has a street",
        id="line-department-with-street",
    ),
    pytest.param(
        "calendar.json",
        _set(["holidays", 1, "last"], "2026-02-30"),
        "record holidays[1] (name_en 'Spring Festival')",
        "last",
        "day value is outside expected range",
        id="calendar-date-does-not-parse",
    ),
    pytest.param(
        "calendar.json",
        _set(["makeup_working_days", 0, "day"], "2026-01-05"),
        "record makeup_working_days[0] (day '2026-01-05')",
        "day",
        "is a Monday, already a working day",
        id="makeup-day-on-a-weekday",
    ),
    pytest.param(
        "calendar.json",
        _set(["holidays", 6, "first"], "2027-10-01"),
        "record holidays[6] (name_en 'National Day')",
        "last",
        "must not be before first",
        id="holiday-ends-before-it-starts",
    ),
    pytest.param(
        "calendar.json",
        _set(["timezone"], "Asia/Atlantis"),
        None,
        "timezone",
        "unknown time zone",
        id="unknown-time-zone",
    ),
    pytest.param(
        "scoring.json",
        _set(["department", "terms", 0, "weight"], 31),
        None,  # no list at the top of the path: the field path says where
        "department.terms",
        "weights must add up to 100, not 101",
        id="weights-do-not-add-up",
    ),
    pytest.param(
        "supervision.json",
        _set(["notice_ladder", 1, "level"], 3),
        None,
        "notice_ladder",
        "levels must be 1, 2, ... in order",
        id="notice-ladder-out-of-order",
    ),
]


@pytest.mark.parametrize(("name", "change", "record", "field", "problem"), JSON_BREAKAGES)
def test_broken_json_names_file_record_and_field(
    tmp_path: Path,
    name: str,
    change: Callable[[Any], None],
    record: str | None,
    field: str | None,
    problem: str,
) -> None:
    city = copy_of_sample(tmp_path)
    edit_json(city, name, change)
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(city)
    error = caught.value
    assert (error.file, error.record, error.field) == (name, record, field)
    assert problem in error.problem
    message = str(error)
    assert message.startswith(name)
    if error.record is not None:
        assert error.record in message
    assert f"field '{error.field}'" in message


def test_message_shape(tmp_path: Path) -> None:
    city = copy_of_sample(tmp_path)
    edit_json(city, "categories.json", _set([7, "limits", "handle", "unit"], "fortnights"))
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(city)
    assert str(caught.value).startswith(
        f"categories.json record 7 (code '{CATEGORY_7}'): "
        "field 'limits.handle.unit': Input should be "
    )
    assert str(caught.value).endswith("(got 'fortnights')")


CSV_BREAKAGES = [
    pytest.param(
        lambda rows: rows[4].update(code=rows[4]["code"][:13]),
        "code",
        "should match pattern",
        id="malformed-cell-code",
    ),
    pytest.param(
        lambda rows: rows[4].update(code=rows[4]["code"][:9] + "002" + rows[4]["code"][12:]),
        "code",
        "does not start with its community",
        id="cell-code-disagrees-with-community",
    ),
    pytest.param(
        lambda rows: rows[4].update(area_class="D"),
        "area_class",
        "Input should be 'A', 'B' or 'C'",
        id="bad-area-class",
    ),
    pytest.param(
        lambda rows: rows[4].update(min_lon=str(float(rows[4]["min_lon"]) + 0.0003)),
        "min_lon",
        "is not on the grid",
        id="cell-off-the-lattice",
    ),
    pytest.param(
        lambda rows: rows[4].update(row=rows[3]["row"], col=rows[3]["col"]),
        "row",
        "duplicate",
        id="two-cells-in-one-place",
    ),
    pytest.param(
        lambda rows: rows[4].update(code=rows[3]["code"]),
        "code",
        "duplicate",
        id="duplicate-cell-code",
    ),
    pytest.param(
        lambda rows: rows[4].update(
            street="320508009", community="320508009001", code="32050800900101"
        ),
        "community",
        "unknown community '320508009001'",
        id="unknown-community",
    ),
    pytest.param(
        lambda rows: rows[4].update(row=""),
        "row",
        "Field required",
        id="empty-cell",
    ),
]


@pytest.mark.parametrize(("change", "field", "problem"), CSV_BREAKAGES)
def test_broken_grid_names_line_and_field(
    tmp_path: Path, change: Callable[[list[dict[str, str]]], None], field: str, problem: str
) -> None:
    city = copy_of_sample(tmp_path)
    edit_csv(city, "grid_cells.csv", change)
    changed = list(
        csv.DictReader(io.StringIO((city / "grid_cells.csv").read_text(encoding="utf-8")))
    )[4]
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(city)
    error = caught.value
    assert error.file == "grid_cells.csv"
    # Data row 4 is line 6 of the file: the header is line 1.
    assert error.record == f"line 6 (code '{changed['code']}')"
    assert error.field == field
    assert problem in error.problem


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    city = copy_of_sample(tmp_path)
    (city / "supervision.json").write_text('{"warning_share": 0.8,', encoding="utf-8")
    with pytest.raises(
        ReferenceDataError, match=r"^supervision\.json: is not valid JSON: .* line 1 column"
    ):
        load_reference(city)


def test_wrong_top_level_shape(tmp_path: Path) -> None:
    city = copy_of_sample(tmp_path)
    (city / "channels.json").write_text('{"id": "hotline_12345"}', encoding="utf-8")
    with pytest.raises(
        ReferenceDataError, match=r"^channels\.json: must be a JSON array of records$"
    ):
        load_reference(city)


def test_street_without_office(tmp_path: Path) -> None:
    city = copy_of_sample(tmp_path)
    edit_json(city, "departments.json", lambda data: data.pop())  # street-shuangta
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(city)
    assert (caught.value.file, caught.value.record, caught.value.field) == (
        "streets.json",
        "record 3 (code '320508004')",
        "code",
    )
    assert "has no street office" in caught.value.problem


def test_community_without_cells(tmp_path: Path) -> None:
    city = copy_of_sample(tmp_path)
    edit_csv(
        city,
        "grid_cells.csv",
        lambda rows: rows.__setitem__(
            slice(None), [row for row in rows if row["community"] != "320508004004"]
        ),
    )
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(city)
    assert (caught.value.file, caught.value.record, caught.value.field) == (
        "communities.json",
        "record 15 (code '320508004004')",
        "code",
    )
