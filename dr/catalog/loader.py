"""Recording runs in batches, inside the caller's transaction (imports, rebuilds, one run).

Runs arrive one at a time, oldest first per stream, as :class:`Prepared` values: the checked
fields, times as epoch seconds and each artifact as a plain row in :data:`ART_FIELDS` order
(a manifest reader builds them directly; :func:`prepare` turns a :class:`NewRun` into one).
They are gathered into batches; for a batch the catalog is asked once which runs it already
holds (those are skipped: importing a file twice changes nothing; an import into an empty
catalog has nothing to ask about), every other run passes the Exchange rules in order
(:mod:`dr.catalog.admission`) and is handed to a writer as a :data:`Staged` tuple: its id,
key, compression, recorded type, the run and what the rules admitted. Run ids are handed out
here (the writer's transaction holds the write lock), so artifacts can be written in the
same batch as their run. Memory is one batch plus constant state per stream.

The writer (:class:`InlineWriter` here, or :class:`dr.catalog.writer.ProcessWriter`, which
writes in a second process while this one reads and checks) turns staged runs into rows
(:func:`build_rows`) and inserts them several rows per statement.

Python's sqlite3 module adapts ``None`` through its adapter protocol on every bind, which
costs more than the insert of a small row; rows therefore carry :data:`NULL` where a value
is missing in a column that may be empty, and the statements turn it back into SQL NULL
(``NULLIF``). No real value can be :data:`NULL`: it is the smallest 64-bit integer, and
every whole-number field is ≥ 0. Columns that must never be empty get ``None`` as it is, so
SQLite's NOT NULL constraint refuses it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import Any, NamedTuple, Protocol

from dr.catalog import admission, sets
from dr.catalog.model import NewArtifact, NewRun, SetRecord, from_epoch, to_epoch
from dr.catalog.schema import create_secondary_indexes, drop_secondary_indexes
from dr.errors import CatalogError, ManifestError

BATCH = 4000
_KEY_QUERY_CHUNK = 500
#: Rows per INSERT statement: one statement per row spends most of its time starting and
#: resetting the statement; 32 rows share that (a smaller statement takes the remainder).
ROWS_PER_STATEMENT = 32

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


class _Table(NamedTuple):
    """An INSERT for ``rows`` rows at a time; ``nullable`` columns go through NULLIF."""

    name: str
    columns: tuple[str, ...]
    nullable: frozenset[str]

    def insert(self, rows: int) -> str:
        marks = ",".join(f"NULLIF(?,{NULL})" if c in self.nullable else "?" for c in self.columns)
        values = ",".join([f"({marks})"] * rows)
        return f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES {values}"


RUNS = _Table(
    "runs",
    (
        "id", "set_name", "host", "backup_type", "started", "ended", "status", "error",
        "source", "compression", "run_key",
    ),
    frozenset({"error"}),
)  # fmt: skip
STREAMS = _Table(
    "stream_backups",
    (
        "run_id", "storage_group", "backup_type", "at", "log_prefix", "first_gen", "last_gen",
        "log_signature", "circular_logging", "database_mounted",
    ),
    frozenset({"log_prefix", "first_gen", "last_gen", "log_signature"}),
)  # fmt: skip
ARTIFACTS = _Table(
    "artifacts",
    ("run_id", "host", "backup_type", *ART_FIELDS[:_STORED_FIELDS]),
    frozenset(ART_FIELDS[:_STORED_FIELDS]) - {"kind", "name", "size", "stored_size"},
)
TABLES = (RUNS, STREAMS, ARTIFACTS)


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


#: A run ready to write: (id, key, compression, recorded type, the run's Prepared fields,
#: admitted streams as (storage group, recorded type, StreamFacts) tuples). Plain tuples:
#: they may cross a pipe.
Staged = tuple[int, str, str, str, tuple[Any, ...], tuple[tuple[str, str, Any], ...]]
Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


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


class Repeated(Exception):
    """The runs' unique key refused a staged run (its :class:`Prepared` fields as a tuple):
    the same run was recorded earlier in this transaction (as ``existing``)."""

    def __init__(self, run: tuple[Any, ...], existing: int) -> None:
        super().__init__(run)
        self.run = run
        self.existing = existing


class Writer(Protocol):
    """Where a loader's staged runs go; everything happens in one transaction."""

    def start(self) -> int:
        """The first free run id (the write lock is held from here on)."""
        ...

    def write(self, staged: list[Staged]) -> None: ...

    def finish(self) -> None:
        """Everything is written (indexes back); the caller commits."""
        ...


def build_rows(staged: Sequence[Staged]) -> Rows:
    """The runs, stream_backups and artifacts rows of a batch of staged runs."""
    runs: list[tuple[Any, ...]] = []
    streams: list[tuple[Any, ...]] = []
    artifacts: list[tuple[Any, ...]] = []
    unnull = _UNNULL
    for run_id, key, compression, run_type, run, admitted in staged:
        set_name, host, requested, started, ended, status, error, source, _, arts, _ = run
        runs.append(
            (run_id, set_name, host, run_type, started, ended, status, unnull(error, error),
             source, compression, key)
        )  # fmt: skip
        for sg, kind, f in admitted:
            streams.append(
                (run_id, sg, kind, ended, unnull(f[1], f[1]), unnull(f[2], f[2]),
                 unnull(f[3], f[3]), unnull(f[4], f[4]), int(f[5]), int(f[6]))
            )  # fmt: skip
        recorded = {sg: kind for sg, kind, _ in admitted}  # an artifact's stream's type
        for a in arts:
            typed = recorded.get(a[1], requested)
            artifacts.append(
                (run_id, host, typed, a[0], unnull(a[1], a[1]), unnull(a[2], a[2]), a[3],
                 a[4], a[5], *map(unnull, a[6:18], a[6:18]))
            )  # fmt: skip
    return runs, streams, artifacts


def insert_rows(conn: sqlite3.Connection, rows: Rows) -> None:
    """Insert a batch's rows, :data:`ROWS_PER_STATEMENT` at a time (runs first)."""
    for table, table_rows in zip(TABLES, rows, strict=True):
        whole = len(table_rows) - len(table_rows) % ROWS_PER_STATEMENT
        if whole:
            conn.executemany(_statement(table, ROWS_PER_STATEMENT), _grouped(table_rows, whole))
        if whole < len(table_rows):
            conn.executemany(_statement(table, 1), table_rows[whole:])


_STATEMENTS: dict[tuple[str, int], str] = {}


def _statement(table: _Table, rows: int) -> str:
    found = _STATEMENTS.get((table.name, rows))
    if found is None:
        found = _STATEMENTS[(table.name, rows)] = table.insert(rows)
    return found


def _grouped(rows: list[tuple[Any, ...]], whole: int) -> Iterator[tuple[Any, ...]]:
    step, flat = ROWS_PER_STATEMENT, chain.from_iterable
    for i in range(0, whole, step):
        yield tuple(flat(rows[i : i + step]))


def recorded_ids(conn: sqlite3.Connection, keys: list[str]) -> dict[str, int]:
    """Ids of the runs among ``keys`` (run keys) the connection sees recorded."""
    found: dict[str, int] = {}
    for i in range(0, len(keys), _KEY_QUERY_CHUNK):
        chunk = keys[i : i + _KEY_QUERY_CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT run_key, id FROM runs WHERE run_key IN ({marks})"
        found.update(conn.execute(sql, chunk).fetchall())
    return found


def find_repeat(conn: sqlite3.Connection, staged: Sequence[Staged]) -> Repeated | None:
    """After the unique key refused a batch: the staged run that repeats one recorded
    earlier (the rows of the batch before it are in, with the ids they were given)."""
    found = recorded_ids(conn, [s[1] for s in staged])
    for run_id, key, _, _, run, _ in staged:
        if found.get(key, run_id) != run_id:
            return Repeated(run, found[key])
    return None


class InlineWriter:
    """Writes on the loader's own connection, inside the caller's transaction.

    ``bulk``: a load into an empty catalog drops the secondary indexes and builds them again
    at the end (building an index once from sorted data is much cheaper than updating it a
    million times). ``explain``: a refused unique key is explained as :class:`Repeated`.
    """

    def __init__(self, conn: sqlite3.Connection, bulk: bool = False, explain: bool = False):
        self.conn = conn
        self.bulk = bulk
        self.explain = explain
        self.rebuild_indexes = False

    def start(self) -> int:
        first_id = int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0])
        self.rebuild_indexes = self.bulk and first_id == 0
        if self.rebuild_indexes:
            drop_secondary_indexes(self.conn)
        return first_id + 1

    def write(self, staged: list[Staged]) -> None:
        try:
            insert_rows(self.conn, build_rows(staged))
        except sqlite3.IntegrityError:
            repeated = find_repeat(self.conn, staged) if self.explain else None
            if repeated is not None:
                raise repeated from None
            raise

    def finish(self) -> None:
        if self.rebuild_indexes:
            create_secondary_indexes(self.conn)
            self.rebuild_indexes = False


Where = Callable[[Prepared], str]


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
    """Batched recorder of runs; call :meth:`add` per run and :meth:`finish` at the end.

    ``refuse_repeats``: a run given twice to this loader is an error (a manifest that lists
    a run twice, or splits a CSV run's rows) rather than a silent skip. ``bulk``: see
    :class:`InlineWriter`. ``writer``: where the rows go (default: this connection).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        where: Where,
        refuse_repeats: bool = False,
        bulk: bool = False,
        writer: Writer | None = None,
    ) -> None:
        self.conn = conn
        self.where = where
        self.refuse_repeats = refuse_repeats
        self.writer: Writer = writer or InlineWriter(conn, bulk, explain=refuse_repeats)
        self.histories = admission.Histories(conn)
        self.first_id = self.next_id = 0  # 0: not started; the writer says (first flush)
        self.pending: list[Prepared] = []
        self.added = self.skipped = self.artifacts = 0
        self.converted: list[str] = []
        self.last_id: int | None = None
        self.set_info: dict[str, _SetInfo] = {}

    def finish(self) -> None:
        """Write what is pending; the writer puts back any index a bulk load dropped."""
        self.flush()
        if not self.first_id:
            self.first_id = self.next_id = self.writer.start()
        self._written(self.writer.finish)

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
        if not self.first_id:
            self.first_id = self.next_id = self.writer.start()
        keys = [run.key for run in self.pending]
        existing = self._existing(keys)
        staged: list[Staged] = []
        for run, key in zip(self.pending, keys, strict=True):
            if key in existing:
                self._repeat(run, existing[key])
                continue
            existing[key] = self.next_id
            staged.append(self._stage(run, key))
        self.pending.clear()
        if staged:
            self._written(self.writer.write, staged)

    def _written(self, step: Callable[..., None], *args: Any) -> None:
        """A writer's step; a repeated run it reports (maybe batches later, from another
        process) is named as the manifest's line that repeats an earlier one."""
        try:
            step(*args)
        except Repeated as repeated:
            run = Prepared(*repeated.run)
            self._repeat(run, repeated.existing)
            raise CatalogError(
                f"{self.where(run)}: run {run.key} conflicts with run {repeated.existing}, "
                "recorded in this same transaction; nothing was recorded",
                hint="report this as a bug; the catalog is unchanged",
            ) from None

    def _trusts_unique_key(self) -> bool:
        """An import into an empty catalog refuses repeats, and every run it could repeat is
        its own: the runs' unique key catches them without a query per batch."""
        return self.refuse_repeats and self.first_id == 1

    def _existing(self, keys: list[str]) -> dict[str, int]:
        """Ids of the runs among ``keys`` already in the catalog."""
        if self.next_id == 1 or self._trusts_unique_key():
            return {}
        return recorded_ids(self.conn, keys)

    def _repeat(self, run: Prepared, run_id: int) -> None:
        if self.refuse_repeats and run_id >= self.first_id:
            raise ManifestError(
                f"{self.where(run)}: run: the same run (set {run.set_name}, host {run.host}, "
                f"start {from_epoch(run.started).isoformat()}, type {run.backup_type}) is "
                "listed earlier in this file; nothing was imported",
                hint="list each run once (in a CSV manifest, keep the rows of a run together)",
            )
        self.skipped += 1

    def _stage(self, run: Prepared, key: str) -> Staged:
        info = self._set(run)
        admitted: tuple[tuple[str, str, Any], ...] = ()
        if run.status != "failed":
            admitted = admission.admit_prepared(self.histories, run, self.where)
            for sg, kind, _ in admitted:
                if kind != run.backup_type:
                    self.converted.append(sg)
        run_id = self.last_id = self.next_id
        self.next_id += 1
        self.added += 1
        self.artifacts += len(run.artifacts)
        compression = run.compression or info.compression_at(run.started)
        run_type = _run_type(run.backup_type, admitted)
        # a plain tuple: a batch may cross a pipe, and a tuple unpickles without a call
        return (run_id, key, compression, run_type, tuple(run), admitted)

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


def _run_type(requested: str, admitted: tuple[tuple[str, str, Any], ...]) -> str:
    """The run's recorded type: a copy when every stream was admitted as a copy."""
    if not admitted:
        return requested
    if len(admitted) == 1:  # most runs: one stream
        return admitted[0][1]
    kinds = {kind for _, kind, _ in admitted}
    return kinds.pop() if len(kinds) == 1 else requested
