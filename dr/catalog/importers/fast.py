"""The happy path of the CSV field checks: a run of good rows becomes a Prepared run directly.

A year of log backups is a million rows that are nearly all good, and most of their cells
repeat (set, host, kind, item name, storage group, prefix). :class:`FastRows` checks a run's
rows against the same rules as :mod:`dr.catalog.importers.records` without building a dict
per row: the run columns other than the times are checked once per distinct combination (by
the very functions the slow path uses), text cells once per distinct value, whole numbers
with ``int``, times with ``datetime.fromisoformat``.

It only ever says "good, here is the run" or "not sure": anything unusual (a bad value, but
also a value that is merely written unusually, such as a padded time) returns None and the
run goes through the full checks, which name every problem with its line and field or
accept the value. So this module can only be faster, never more lenient; a property test
holds it to giving the same catalog as the full checks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from dr.catalog.importers.fields import (
    ARTIFACT_FIELDS,
    FUTURE_SLACK,
    MAX_INT,
    RUN_FIELDS,
    check_fields,
)
from dr.catalog.importers.records import set_problems
from dr.catalog.loader import ART_FIELDS, Prepared
from dr.catalog.model import ARTIFACT_KINDS, STREAM_KINDS, SetRecord
from dr.errors import ManifestError

if TYPE_CHECKING:
    from dr.catalog.importers.resolve import Resolver

Row = list[str]
Convert = Callable[[str], Any]
_KINDS = frozenset(ARTIFACT_KINDS)
_MEMO_LIMIT = 4096
_BAD = object()
_new = tuple.__new__  # a named tuple without its Python-level constructor
_parse = datetime.fromisoformat
_POS = {name: i for i, name in enumerate(ART_FIELDS)}
_KIND, _SG, _DB, _NAME = _POS["kind"], _POS["storage_group"], _POS["database"], _POS["name"]
_SIZE, _STORED = _POS["size"], _POS["stored_size"]
_PREFIX, _FIRST, _LAST = _POS["log_prefix"], _POS["first_gen"], _POS["last_gen"]
_REQ_FIRST, _REQ_LAST = _POS["log_required_first"], _POS["log_required_last"]
_MOUNTED, _CIRCULAR = _POS["mounted"], _POS["circular_logging"]
_MINIMUM = {
    "size": 0,
    "stored_size": 0,
    "log_required_first": 0,
    "log_required_last": 0,
    "item_count": 0,
    "first_gen": 1,
    "last_gen": 1,
}


class _Bad(Exception):
    """A cell or run the fast path does not vouch for; the full checks take over."""


def _memo(name: str, slow: Callable[[str], Any]) -> Convert:
    """A cell checked by the full checks once per distinct value."""
    seen: dict[str, Any] = {}
    check = ARTIFACT_FIELDS[name]

    def convert(cell: str) -> Any:
        found = seen.get(cell, _BAD)
        if found is _BAD:
            stripped = cell.strip()
            found = check(slow(stripped)) if stripped else None
            if name == "log_prefix" and found is not None:
                found = found.upper()
            if len(seen) < _MEMO_LIMIT:
                seen[cell] = found
        return found

    return convert


class FastRows:
    """``fast(rows) -> Prepared | None`` for the rows of one run (first line first)."""

    def __init__(
        self,
        layout: Any,
        sets: dict[str, SetRecord],
        resolve: Resolver,
        slow: Callable[[str], Callable[[str], Any]],
    ) -> None:
        names = [name for _, name in layout.run]
        self.run_cells = itemgetter(*(i for i, _ in layout.run))
        self.start, self.end = names.index("start"), names.index("end")
        self.latest = datetime.now(UTC) + FUTURE_SLACK  # later than this: not a past run
        static = [(i, name) for i, name in layout.run if name not in ("start", "end")]
        self.static_cells = _getter([i for i, _ in static])
        self.static_names = [name for _, name in static]
        self.kind = layout.kind
        columns = [(i, name) for i, name, _ in layout.artifact_columns]
        # whole numbers: int() and the minimum, here; the rest checked once per distinct value
        self.numbers = [(i, _POS[name], _MINIMUM[name]) for i, name in columns if name in _MINIMUM]
        texts = [(i, name) for i, name in columns if name not in _MINIMUM]
        self.texts = [(_POS[name], _memo(name, slow(name))) for _, name in texts]
        self.text_cells = _getter([i for i, _ in texts])
        self.sets = sets
        self.resolve = resolve
        self.runs: dict[tuple[str, ...], tuple[Any, ...] | None] = {}
        self.templates: dict[str, dict[tuple[str, ...], list[Any]]] = {}  # per host

    def __call__(self, rows: list[tuple[int, Row]]) -> Prepared | None:
        try:
            return self._run(rows)
        except (_Bad, ValueError, TypeError, ManifestError):
            return None

    def _run(self, rows: list[tuple[int, Row]]) -> Prepared | None:
        line, first = rows[0]
        cells = self.run_cells(first)
        for _, row in rows[1:]:
            if self.run_cells(row) != cells:
                raise _Bad
        key = self.static_cells(first)
        fields = self.runs.get(key) or self._static(key)
        start, end = _parse(cells[self.start]), _parse(cells[self.end])
        if start.tzinfo is None or end.tzinfo is None or end < start or end > self.latest:
            raise _Bad  # no zone, or in the future: the full checks say so
        host = fields[1]
        kind, templates = self.kind, self.templates.setdefault(host, {})
        if kind is None:
            artifacts: tuple[tuple[Any, ...], ...] = ()
        elif len(rows) == 1:
            artifacts = (self._artifact(first, host, templates),) if first[kind] else ()
        else:
            artifacts = tuple(self._artifact(row, host, templates) for _, row in rows if row[kind])
        set_name, _, backup_type, status, error, source, compression = fields
        return _new(Prepared, (
            set_name, host, backup_type, int(start.timestamp()), int(end.timestamp()),
            status, error, source, compression, artifacts, line,
        ))  # fmt: skip

    def _static(self, key: tuple[str, ...]) -> tuple[Any, ...]:
        """set, host, type, status, error, source, compression; checked once per combination."""
        if key not in self.runs:
            self.runs[key] = self._check_static(key) if len(self.runs) < _MEMO_LIMIT else None
        found = self.runs[key]
        if found is None:
            raise _Bad
        return found

    def _check_static(self, key: tuple[str, ...]) -> tuple[Any, ...] | None:
        data = {n: c.strip() for n, c in zip(self.static_names, key, strict=True) if c.strip()}
        values, problems = check_fields(data, RUN_FIELDS, ("set", "host", "type"))
        if problems or set_problems(values["set"], values["host"], self.sets):
            return None
        return (
            values["set"],
            values["host"],
            values["type"],
            values.get("status", "success"),
            values.get("error"),
            values.get("source", "import"),
            values.get("compression"),
        )

    def _artifact(
        self, row: Row, host: str, templates: dict[tuple[str, ...], list[Any]]
    ) -> tuple[Any, ...]:
        """The artifact's row: its text cells checked once per combination, numbers here."""
        key = self.text_cells(row)
        values = templates.get(key)
        if values is None:
            values = self._template(key, host, templates)
        values = values.copy()
        for i, position, minimum in self.numbers:
            cell = row[i]
            if cell:
                number = int(cell)
                if number < minimum or number > MAX_INT:
                    raise _Bad
                values[position] = number
        if values[_SIZE] is None:
            raise _Bad
        # records._range_problems, as a yes or no: both ends of a range or neither, in order
        low, high = values[_FIRST], values[_LAST]
        if low is None:
            if high is not None or values[_KIND] == "logs":
                raise _Bad
        elif high is None or high < low:
            raise _Bad
        low, high = values[_REQ_FIRST], values[_REQ_LAST]
        if low is None:
            if high is not None:
                raise _Bad
        elif high is None or high < low:
            raise _Bad
        if values[_STORED] is None:
            values[_STORED] = values[_SIZE]
        return tuple(values)

    def _template(
        self, key: tuple[str, ...], host: str, templates: dict[tuple[str, ...], list[Any]]
    ) -> list[Any]:
        """An artifact's text and flag fields, checked and resolved (numbers left empty)."""
        values: list[Any] = [None] * len(ART_FIELDS)
        for (position, convert), cell in zip(self.texts, key, strict=True):
            values[position] = convert(cell)
        kind = values[_KIND]
        if kind not in _KINDS or values[_NAME] is None:
            raise _Bad
        if (kind == "logs" and values[_PREFIX] is None) or (
            kind in STREAM_KINDS and not values[_SG]
        ):
            raise _Bad
        sg, db = self.resolve(host, values[_SG], values[_DB])
        values[_SG], values[_DB] = sg, db
        if values[_MOUNTED] is None:
            values[_MOUNTED] = True
        if sg is not None and values[_CIRCULAR] is None:
            values[_CIRCULAR] = self.resolve.circular_logging(sg)
        if len(templates) < _MEMO_LIMIT:
            templates[key] = values
        return values


def _getter(indices: list[int]) -> Callable[[Row], tuple[str, ...]]:
    """itemgetter that always gives a tuple (itemgetter of one index gives the item)."""
    if len(indices) == 1:
        only = indices[0]
        return lambda row: (row[only],)
    return itemgetter(*indices) if indices else lambda row: ()
