"""Reading reference-data files into models, one record at a time.

Each record is validated on its own so that a pydantic error can be reported
as "this file, this record, this field" rather than as a wall of locations.
JSON files are either an array of records or one document; the grid, being a
long table, is CSV.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from shared.reference.errors import ReferenceDataError

ModelT = TypeVar("ModelT", bound=BaseModel)

# Fields that identify a record to a human, in order of preference.
_IDENTITY_FIELDS = ("id", "code", "day", "level", "name_en")


@dataclass(frozen=True)
class Record(Generic[ModelT]):
    """A validated record and how to point at it in an error message."""

    label: str  # "record 7 (code 'E0102')" or, in a CSV file, "line 9 (code '...')"
    model: ModelT


def read_records(directory: Path, name: str, model: type[ModelT]) -> list[Record[ModelT]]:
    """A JSON file holding an array of records."""
    raw = _read_json(directory, name)
    if not isinstance(raw, list):
        raise ReferenceDataError(name, None, None, "must be a JSON array of records")
    out = []
    for index, item in enumerate(raw):
        label = _label(f"record {index}", item)
        out.append(Record(label, _validate(name, label, model, item)))
    return out


def read_document(directory: Path, name: str, model: type[ModelT]) -> ModelT:
    """A JSON file holding one object; errors inside its lists name the list item."""
    raw = _read_json(directory, name)
    if not isinstance(raw, dict):
        raise ReferenceDataError(name, None, None, "must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(first["loc"])
        # ("holidays", 2, "last") reads better as record holidays[2], field 'last'.
        if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int):
            items = raw.get(loc[0])
            item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
            record: str | None = _label(f"record {loc[0]}[{loc[1]}]", item)
            loc = loc[2:]
        else:
            record = None
        raise ReferenceDataError(
            name, record, _field_path(loc), _problem(first, error.error_count())
        ) from None


def read_csv_records(directory: Path, name: str, model: type[ModelT]) -> list[Record[ModelT]]:
    """A CSV file with a header row; empty cells count as absent."""
    path = directory / name
    if not path.is_file():
        raise ReferenceDataError(name, None, None, f"missing from {directory}")
    out = []
    # utf-8-sig: a file saved from a spreadsheet often starts with a BOM.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise ReferenceDataError(name, None, None, "has no header row")
        for row in reader:
            label = _label(f"line {reader.line_num}", row)
            if None in row:
                raise ReferenceDataError(
                    name,
                    label,
                    None,
                    f"has more values than the header's {len(reader.fieldnames)} columns",
                )
            present = {key: value for key, value in row.items() if value not in (None, "")}
            out.append(Record(label, _validate(name, label, model, present)))
    return out


def _read_json(directory: Path, name: str) -> Any:
    path = directory / name
    if not path.is_file():
        raise ReferenceDataError(name, None, None, f"missing from {directory}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ReferenceDataError(name, None, None, f"is not UTF-8 text: {error}") from None
    except json.JSONDecodeError as error:
        raise ReferenceDataError(
            name,
            None,
            None,
            f"is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None


def _validate(name: str, label: str, model: type[ModelT], item: Any) -> ModelT:
    try:
        return model.model_validate(item)
    except ValidationError as error:
        first = error.errors()[0]
        raise ReferenceDataError(
            name, label, _field_path(tuple(first["loc"])), _problem(first, error.error_count())
        ) from None


def _label(base: str, item: Any) -> str:
    if isinstance(item, dict):
        for key in _IDENTITY_FIELDS:
            value = item.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return f"{base} ({key} {value!r})"
    return base


def _field_path(loc: tuple[Any, ...]) -> str | None:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or None


def _problem(error: Any, count: int) -> str:
    if error["type"] == "value_error":
        # Our own validators' messages, without pydantic's "Value error, " prefix.
        text = str(error["ctx"]["error"])
    else:
        text = str(error["msg"])
        given = error.get("input")
        if error["type"] != "missing" and isinstance(given, str | int | float | bool):
            text += f" (got {given!r})"
    if count > 1:
        text += f" (and {count - 1} more problem{'s' if count > 2 else ''} in this record)"
    return text
