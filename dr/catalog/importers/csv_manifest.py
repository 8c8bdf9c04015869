"""The CSV manifest: one artifact per row, rows of one run grouped by ``run_id``.

The first line names the columns (any order; see docs/catalog.md). Run columns (set, host,
type, start, end, status, error, source, compression) must agree on every row of a run. A
run without artifacts (a failed run) is one row with an empty ``kind``. Empty cells mean
"not given".
"""

from __future__ import annotations

import csv
import io

from dr.catalog.importers.records import RawRecord, RawRun
from dr.errors import ManifestError, Problem

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


def read(text: str, file: str) -> list[RawRun]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise ManifestError(f"{file}: empty CSV manifest", hint="the first line names the columns")
    columns = [h.strip() for h in header]
    _check_header(columns, file)
    runs: dict[str, RawRun] = {}
    problems: list[Problem] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        problems.extend(_add_row(runs, dict(zip(columns, row, strict=False)), line, file))
    if problems:
        raise ManifestError(
            f"{file}: {len(problems)} invalid rows; nothing was imported", problems=problems
        )
    return list(runs.values())


def _check_header(columns: list[str], file: str) -> None:
    known = {"run_id", *RUN_COLUMNS, *ARTIFACT_COLUMNS}
    unknown = [c for c in columns if c not in known]
    missing = [c for c in ("run_id", "set", "host", "type", "start", "end") if c not in columns]
    problems = [Problem("unknown column", file, 1, field=c) for c in unknown]
    problems += [Problem("required column is missing", file, 1, field=c) for c in missing]
    if problems:
        raise ManifestError(f"{file}: bad header line", problems=problems)


def _add_row(runs: dict[str, RawRun], row: dict[str, str], line: int, file: str) -> list[Problem]:
    run_id = row.get("run_id", "").strip()
    if not run_id:
        return [Problem("every row needs a run_id", file, line, field="run_id")]
    values = {k: v.strip() for k, v in row.items() if k in RUN_COLUMNS and v.strip()}
    existing = runs.get(run_id)
    if existing is None:
        runs[run_id] = existing = RawRun(record=RawRecord(data=values, line=line))
    elif values != existing.record.data:
        column = next(c for c in RUN_COLUMNS if values.get(c) != existing.record.data.get(c))
        message = (
            f"differs from line {existing.record.line} of the same run {run_id!r} "
            "(a run's columns must agree on every row)"
        )
        return [Problem(message, file, line, field=column)]
    if row.get("kind", "").strip():
        data, problems = _artifact(row, line, file)
        existing.artifacts.append(RawRecord(data=data, line=line))
        return problems
    return []


def _artifact(row: dict[str, str], line: int, file: str) -> tuple[dict[str, object], list[Problem]]:
    data: dict[str, object] = {}
    problems = []
    for column in ARTIFACT_COLUMNS:
        cell = row.get(column, "").strip()
        if not cell:
            continue
        try:
            data[column] = _convert(column, cell)
        except ValueError as exc:
            problems.append(Problem(str(exc), file, line, field=column))
    return data, problems


def _convert(column: str, cell: str) -> object:
    if column in _INTS:
        try:
            return int(cell)
        except ValueError:
            raise ValueError(f"{cell!r} is not a whole number") from None
    if column in _BOOLS:
        if cell.lower() in _TRUE:
            return True
        if cell.lower() in _FALSE:
            return False
        raise ValueError(f"{cell!r} is not true or false")
    return cell
