"""Recording runs in batches, inside the caller's transaction (imports, rebuilds, one run).

Runs arrive one at a time, oldest first per stream, as :class:`Prepared` values: the checked
fields, times as epoch seconds and each artifact as a plain row in :data:`ART_FIELDS` order
(a manifest reader builds them directly; :func:`prepare` turns a :class:`NewRun` into one).
They are gathered into batches; for a batch the catalog is asked once which runs it already
holds (those are skipped: importing a file twice changes nothing; an import into an empty
catalog has nothing to ask about), every other run passes the Exchange rules in order
(:mod:`dr.catalog.admission`), and the rows are written with ``executemany``. Run ids are
handed out here (the transaction holds the write lock), so artifacts can be written in the
same batch as their run. Memory is one batch plus constant state per stream.

Python's sqlite3 module adapts ``None`` through its adapter protocol on every bind, which
costs more than the insert of a small row; rows therefore carry :data:`NULL` where a value
is missing and the statements turn it back into SQL NULL (``NULLIF``). No real value can be
:data:`NULL`: it is the smallest 64-bit integer, and every whole-number field is ≥ 0.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from dr.catalog import admission, sets
from dr.catalog.model import NewArtifact, NewRun, SetRecord, from_epoch, to_epoch
from dr.catalog.schema import create_secondary_indexes, drop_secondary_indexes
from dr.errors import ManifestError

BATCH = 4000
_KEY_QUERY_CHUNK = 500

#: The order of an artifact row in a :class:`Prepared` run. The first 18 are stored as they
#: are; ``mounted`` and ``circular_logging`` only feed the Exchange rules.
ART_FIELDS = (
    "kind",
    "storage_group",
    "database",
    "name",
    "size",
    "stored_size",
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
KIND, SG, DB, NAME, SIZE, STORED = range(6)
PREFIX, FIRST, LAST, SIGNATURE = range(12, 16)
MOUNTED, CIRCULAR = 18, 19
_STORED_FIELDS = 18

#: Stands for SQL NULL in a bound row (see the module docstring).
NULL = -(2**63)
_UNNULL = {None: NULL}.get


def _insert(table: str, columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    marks = ",".join(f"NULLIF(?,{NULL})" for _ in names)
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"


_INSERT_RUN = _insert(
    "runs",
    "id, set_name, host, backup_type, started, ended, status, error, source, compression, run_key",
)
_INSERT_ARTIFACT = _insert(
    "artifacts", "run_id, host, backup_type, " + ", ".join(ART_FIELDS[:_STORED_FIELDS])
)
_INSERT_STREAM = _insert(
    "stream_backups",
    "run_id, storage_group, backup_type, at, log_prefix, first_gen, last_gen, log_signature, "
    "circular_logging, database_mounted",
)


class Prepared(NamedTuple):
    """A checked run ready to record; ``artifacts`` are rows in :data:`ART_FIELDS` order."""

    set_name: str
    host: str
    backup_type: str
    started: int  # epoch seconds
    ended: int
    status: str
    error: str | None
    source: str
    compression: str | None  # None: the set's compression when the run started
    artifacts: tuple[tuple[Any, ...], ...]
    line: int | None

    @property
    def key(self) -> str:
        """What makes a run the same run when a manifest is imported again."""
        return f"{self.set_name}|{self.host.upper()}|{self.started}|{self.backup_type}"


def prepare(run: NewRun) -> Prepared:
    """The :class:`Prepared` form of a run built in code (a backup, a rebuild, a test)."""
    return Prepared(
        run.set_name,
        run.host,
        run.backup_type,
        to_epoch(run.started),
        to_epoch(run.ended),
        run.status,
        run.error,
        run.source,
        run.compression,
        tuple(artifact_row(a) for a in run.artifacts),
        run.line,
    )


def artifact_row(a: NewArtifact) -> tuple[Any, ...]:
    stored = a.stored_size if a.stored_size is not None else a.size
    return (
        a.kind, a.storage_group, a.database, a.name, a.size, stored, a.sha256, a.location,
        a.state, a.log_required_first, a.log_required_last, a.db_signature, a.log_prefix,
        a.first_gen, a.last_gen, a.log_signature, a.mailbox, a.item_count,
        a.database_mounted, a.circular_logging,
    )  # fmt: skip


Where = Callable[[Prepared], str]
_Admitted = dict[str, tuple[str, Any]]
_Rows = tuple[list[Any], list[Any], list[Any]]


class _SetInfo:
    """A set record and its compression changes as (epoch, compression), oldest first."""

    __slots__ = ("changes", "record")

    def __init__(self, record: SetRecord) -> None:
        self.record = record
        self.changes = [(to_epoch(c.effective), c.compression) for c in record.compression_history]

    def compression_at(self, started: int) -> str:
        """As :meth:`SetRecord.compression_at`: later changes do not apply."""
        current = self.changes[0][1] if self.changes else "fast"
        for effective, compression in self.changes:
            if effective <= started:
                current = compression
        return current


class Loader:
    """Batched writer of runs; call :meth:`add` per run and :meth:`finish` at the end.

    ``refuse_repeats``: a run given twice to this loader is an error (a manifest that lists
    a run twice, or splits a CSV run's rows) rather than a silent skip.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        where: Where,
        refuse_repeats: bool = False,
        bulk: bool = False,
    ) -> None:
        self.conn = conn
        self.where = where
        self.refuse_repeats = refuse_repeats
        self.histories = admission.Histories(conn)
        self.first_id = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]) + 1
        self.next_id = self.first_id
        self.pending: list[Prepared] = []
        self.added = self.skipped = self.artifacts = 0
        self.converted: list[str] = []
        self.last_id: int | None = None
        self.set_info: dict[str, _SetInfo] = {}
        self.rebuild_indexes = bulk and self.first_id == 1
        if self.rebuild_indexes:
            drop_secondary_indexes(conn)

    def finish(self) -> None:
        """Write what is pending and put back any index a bulk load dropped."""
        self.flush()
        if self.rebuild_indexes:
            create_secondary_indexes(self.conn)
            self.rebuild_indexes = False

    def add(self, run: NewRun) -> None:
        self.add_prepared(prepare(run))

    def add_prepared(self, run: Prepared) -> None:
        self.pending.append(run)
        if len(self.pending) >= BATCH:
            self.flush()

    def add_all(self, runs: Sequence[NewRun]) -> None:
        for run in runs:
            self.add(run)
        self.finish()

    def flush(self) -> None:
        if not self.pending:
            return
        keys = [run.key for run in self.pending]
        existing = self._existing(keys)
        rows: _Rows = ([], [], [])
        staged: list[tuple[Prepared, str, int]] = []
        for run, key in zip(self.pending, keys, strict=True):
            if key in existing:
                self._repeat(run, existing[key])
                continue
            existing[key] = self.next_id
            staged.append((run, key, self.next_id))
            self._stage(run, key, rows)
        self.pending.clear()
        self.write(rows, staged)

    def write(self, rows: _Rows, staged: list[tuple[Prepared, str, int]]) -> None:
        """Insert one batch's rows."""
        try:
            self.conn.executemany(_INSERT_RUN, rows[0])
        except sqlite3.IntegrityError:
            self.explain_conflict(staged)
            raise
        self.conn.executemany(_INSERT_STREAM, rows[1])
        self.conn.executemany(_INSERT_ARTIFACT, rows[2])

    def _trusts_unique_key(self) -> bool:
        """An import into an empty catalog refuses repeats, and every run it could repeat is
        its own: the runs' unique key catches them without a query per batch."""
        return self.refuse_repeats and self.first_id == 1

    def _existing(self, keys: list[str]) -> dict[str, int]:
        """Ids of the runs among ``keys`` already in the catalog."""
        if self.next_id == 1 or self._trusts_unique_key():
            return {}
        return self._query_keys(keys)

    def _query_keys(self, keys: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for i in range(0, len(keys), _KEY_QUERY_CHUNK):
            chunk = keys[i : i + _KEY_QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT run_key, id FROM runs WHERE run_key IN ({marks})"
            found.update(self.conn.execute(sql, chunk).fetchall())
        return found

    def explain_conflict(self, staged: list[tuple[Prepared, str, int]]) -> None:
        """After the unique key refused a run of the batch: name the run that repeats one
        recorded earlier (the rows of the batch before it are in, with the ids they were
        given; the whole transaction is about to be rolled back)."""
        if not self._trusts_unique_key():
            return
        found = self._query_keys([key for _, key, _ in staged])
        for run, key, run_id in staged:
            if found.get(key, run_id) != run_id:
                self._repeat(run, found[key])

    def _repeat(self, run: Prepared, run_id: int) -> None:
        if self.refuse_repeats and run_id >= self.first_id:
            raise ManifestError(
                f"{self.where(run)}: run: the same run (set {run.set_name}, host {run.host}, "
                f"start {from_epoch(run.started).isoformat()}, type {run.backup_type}) is "
                "listed earlier in this file; nothing was imported",
                hint="list each run once (in a CSV manifest, keep the rows of a run together)",
            )
        self.skipped += 1

    def _stage(self, run: Prepared, key: str, rows: _Rows) -> None:
        info = self._set(run)
        admitted: _Admitted = {}
        if run.status != "failed":
            admitted = admission.admit_prepared(self.histories, run, self.where)
        run_id = self.last_id = self.next_id
        self.next_id += 1
        compression = run.compression or info.compression_at(run.started)
        run_type = _run_type(run.backup_type, admitted)
        rows[0].append(
            (run_id, run.set_name, run.host, run_type, run.started, run.ended, run.status,
             _UNNULL(run.error, run.error), run.source, compression, key)
        )  # fmt: skip
        for sg, (kind, f) in admitted.items():
            rows[1].append(_stream_row(run_id, sg, kind, run.ended, f))
            if kind != run.backup_type:
                self.converted.append(sg)
        rows[2].extend(_artifact_rows(run_id, run, admitted))
        self.added += 1
        self.artifacts += len(run.artifacts)

    def _set(self, run: Prepared) -> _SetInfo:
        found = self.set_info.get(run.set_name)
        if found is not None:
            return found
        record = self.histories.sets.get(run.set_name) or sets.load_one(self.conn, run.set_name)
        if record is None:
            raise ManifestError(
                f"{self.where(run)}: set: unknown backup set {run.set_name!r}",
                hint="declare it under backup_sets in the inventory, or run `dr set add`",
            )
        self.histories.sets[run.set_name] = record
        found = self.set_info[run.set_name] = _SetInfo(record)
        return found


def _run_type(requested: str, admitted: _Admitted) -> str:
    """The run's recorded type: a copy when every stream was admitted as a copy."""
    if not admitted:
        return requested
    if len(admitted) == 1:  # most runs: one stream
        return next(iter(admitted.values()))[0]
    kinds = {kind for kind, _ in admitted.values()}
    return kinds.pop() if len(kinds) == 1 else requested


def _artifact_rows(run_id: int, run: Prepared, admitted: _Admitted) -> list[tuple[Any, ...]]:
    """Each artifact's row, recorded as the type its stream was admitted as (if any)."""
    found = []
    for a in run.artifacts:
        recorded = admitted[a[SG]][0] if a[SG] in admitted else run.backup_type
        row = (run_id, run.host, recorded, *a[:_STORED_FIELDS])
        found.append(tuple(map(_UNNULL, row, row)))
    return found


def _stream_row(run_id: int, sg: str, kind: str, ended: int, f: Any) -> tuple[Any, ...]:
    row = (
        run_id,
        sg,
        kind,
        ended,
        f.log_prefix,
        f.first_gen,
        f.last_gen,
        f.log_signature,
        int(f.circular_logging),
        int(f.database_mounted),
    )
    return tuple(map(_UNNULL, row, row))
