"""The one error a broken reference-data set raises, naming file, record and field."""

from __future__ import annotations


class ReferenceDataError(ValueError):
    """A reference-data file is missing, unreadable or inconsistent.

    The message reads ``<file> <record>: field '<field>': <problem>``, e.g.
    ``categories.json record 7 (code 'E0102'): field 'limits.handle.unit': Input
    should be 'minutes', 'hours', ...``, so whoever edits the data can go
    straight to the line. ``record`` and ``field`` are ``None`` when the
    problem is with the file as a whole.
    """

    def __init__(self, file: str, record: str | None, field: str | None, problem: str) -> None:
        self.file = file
        self.record = record
        self.field = field
        self.problem = problem
        where = file if record is None else f"{file} {record}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {problem}")
