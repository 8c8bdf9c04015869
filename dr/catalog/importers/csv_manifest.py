"""The CSV manifest: one artifact per row, the rows of one run next to each other.

The first line names the columns (any order; see docs/catalog.md). Rows with the same
``run_id`` that follow each other make one run; their run columns (set, host, type, start,
end, status, error, source, compression) must agree. A run without artifacts (a failed run)
is one row with an empty ``kind``. Empty cells mean "not given". The file is read row by
row, so its size does not matter; a run whose rows are split up by another run's shows up
as the same run twice and is refused when it is recorded.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dr.catalog.importers.fast import FastRows
from dr.catalog.importers.records import RawRecord, RawRun
from dr.catalog.importers.source import Source
from dr.catalog.loader import Prepared
from dr.catalog.model import SetRecord
from dr.errors import ManifestError, Problem

if TYPE_CHECKING:
    from dr.catalog.importers.resolve import Resolver

RUN_COLUMNS = ("set", "host", "type", "start", "end", "status", "error", "source", "compression")
ARTIFACT_COLUMNS = (
    "kind",
    "name",
    "size",
    "stored_size",
    "storage_group",
    "database",
    "sha256",
    "location",
    "state",
    "log_required_first",
    "log_required_last",
    "db_signature",
    "log_prefix",
    "first_gen",
    "last_gen",
    "log_signature",
    "mailbox",
    "item_count",
    "mounted",
    "circular_logging",
)
_INTS = {
    "size",
    "stored_size",
    "log_required_first",
    "log_required_last",
    "first_gen",
    "last_gen",
    "item_count",
}
_BOOLS = {"mounted", "circular_logging"}
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


def _as_int(cell: str) -> Any:
    """A whole number, or the cell as written (the field check then names the problem)."""
    try:
        return int(cell)
    except ValueError:
        return cell


def _as_bool(cell: str) -> Any:
    lowered = cell.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return cell


def _converter(column: str) -> Callable[[str], Any]:
    if column in _INTS:
        return _as_int
    if column in _BOOLS:
        return _as_bool
    return str


class _Layout:
    """Where each column is, worked out once from the header line."""

    def __init__(self, columns: list[str], file: str) -> None:
        _check_header(columns, file)
        self.width = len(columns)
        self.run_id = columns.index("run_id")
        self.run = [(columns.index(c), c) for c in RUN_COLUMNS if c in columns]
        self.kind = columns.index("kind") if "kind" in columns else None
        self.artifact_columns = [
            (columns.index(c), c, _converter(c)) for c in ARTIFACT_COLUMNS if c in columns
        ]

    def run_values(self, row: list[str]) -> dict[str, str]:
        return {name: cell for i, name in self.run if (cell := row[i].strip())}

    def artifact(self, row: list[str]) -> dict[str, Any] | None:
        if self.kind is None or not row[self.kind].strip():
            return None
        return {
            name: convert(cell)
            for i, name, convert in self.artifact_columns
            if (cell := row[i].strip())
        }


def read(
    source: Source,
    file: str,
    sets: dict[str, SetRecord] | None = None,
    resolve: Resolver | None = None,
) -> Iterator[RawRun | Prepared]:
    """Every run of the manifest, in file order.

    Given the sets and the resolver, a run whose rows pass the fast checks
    (:mod:`dr.catalog.importers.fast`) comes out already prepared; every other run comes
    out raw, for the full checks to accept or to explain.
    """
    reader = csv.reader(source.lines())
    header = next(reader, None)
    if not header:
        raise ManifestError(f"{file}: empty CSV manifest", hint="the first line names the columns")
    layout = _Layout([h.strip() for h in header], file)
    fast = None if sets is None or resolve is None else FastRows(layout, sets, resolve, _converter)
    for rows in _groups(reader, layout):
        prepared = fast(rows) if fast is not None else None
        yield prepared if prepared is not None else _raw(layout, rows, file)


def _groups(reader: Any, layout: _Layout) -> Iterator[list[tuple[int, list[str]]]]:
    """The rows of each run with their line numbers: rows with the same run_id in a row."""
    group: list[tuple[int, list[str]]] = []
    current_id = None
    width, id_column = layout.width, layout.run_id
    for row in reader:
        if len(row) < width:
            if not any(cell.strip() for cell in row):
                continue
            row = row + [""] * (width - len(row))
        run_id = row[id_column].strip()
        if group and run_id and run_id == current_id:
            group.append((reader.line_num, row))
            continue
        if group:
            yield group
        group, current_id = [(reader.line_num, row)], run_id
    if group:
        yield group


def _raw(layout: _Layout, rows: list[tuple[int, list[str]]], file: str) -> RawRun:
    line, row = rows[0]
    run_id = row[layout.run_id].strip()
    run = _start(layout, row, run_id, line, file)
    for line, row in rows[1:]:
        _continue(run, layout, row, run_id, line, file)
    return run


def _start(layout: _Layout, row: list[str], run_id: str, line: int, file: str) -> RawRun:
    run = RawRun(record=RawRecord(data=layout.run_values(row), line=line))
    if not run_id:
        run.problems.append(Problem("every row needs a run_id", file, line, field="run_id"))
    data = layout.artifact(row)
    if data is not None:
        run.artifacts.append(RawRecord(data=data, line=line))
    return run


def _continue(
    run: RawRun, layout: _Layout, row: list[str], run_id: str, line: int, file: str
) -> None:
    values = layout.run_values(row)
    if values != run.record.data:  # only for the second and later rows of a run
        column = next(c for c in RUN_COLUMNS if values.get(c) != run.record.data.get(c))
        message = (
            f"differs from line {run.record.line} of the same run {run_id!r} "
            "(a run's columns must agree on every row)"
        )
        run.problems.append(Problem(message, file, line, field=column))
    data = layout.artifact(row)
    if data is not None:
        run.artifacts.append(RawRecord(data=data, line=line))


def _check_header(columns: list[str], file: str) -> None:
    known = {"run_id", *RUN_COLUMNS, *ARTIFACT_COLUMNS}
    unknown = [c for c in columns if c not in known]
    missing = [c for c in ("run_id", "set", "host", "type", "start", "end") if c not in columns]
    twice = sorted({c for c in columns if columns.count(c) > 1})
    problems = [Problem("unknown column", file, 1, field=c) for c in unknown]
    problems += [Problem("required column is missing", file, 1, field=c) for c in missing]
    problems += [Problem("column appears twice — keep one", file, 1, field=c) for c in twice]
    if problems:
        raise ManifestError(f"{file}: bad header line", problems=problems)
