"""Recording runs in batches, inside the caller's transaction (imports, rebuilds, one run).

Runs arrive one at a time, oldest first per stream. They are gathered into batches; for a
batch the catalog is asked once which runs it already holds (those are skipped: importing
a file twice changes nothing), every other run passes the Exchange rules in order
(:mod:`dr.catalog.admission`), and the rows are written with ``executemany``. Run ids are
handed out here (the transaction holds the write lock), so artifacts can be written in the
same batch as their run. Memory is one batch plus constant state per stream.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from dr.catalog import admission, sets
from dr.catalog.model import NewArtifact, NewRun, to_epoch
from dr.catalog.schema import create_secondary_indexes, drop_secondary_indexes
from dr.errors import ManifestError

BATCH = 2000
_KEY_QUERY_CHUNK = 500

_INSERT_RUN = (
    "INSERT INTO runs (id, set_name, host, backup_type, started, ended, status, error, "
    "source, compression, run_key) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_ARTIFACT = (
    "INSERT INTO artifacts (run_id, kind, host, storage_group, database, name, size, "
    "stored_size, sha256, location, state, log_required_first, log_required_last, "
    "db_signature, log_prefix, first_gen, last_gen, log_signature, mailbox, item_count, "
    "backup_type) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_STREAM = (
    "INSERT INTO stream_backups (run_id, storage_group, backup_type, at, log_prefix, "
    "first_gen, last_gen, log_signature, circular_logging, database_mounted) "
    "VALUES (?,?,?,?,?,?,?,?,?,?)"
)

Where = Callable[[NewRun], str]
_Admitted = dict[str, tuple[str, Any]]


class Loader:
    """Batched writer of runs; call :meth:`add` per run and :meth:`flush` at the end.

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
        self.pending: list[NewRun] = []
        self.added = self.skipped = self.artifacts = 0
        self.converted: list[str] = []
        self.last_id: int | None = None
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
        rows: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        for run, key in zip(self.pending, keys, strict=True):
            if key in existing:
                self._repeat(run, existing[key])
                continue
            existing[key] = self.next_id
            self._stage(run, key, rows)
        self.pending.clear()
        self.conn.executemany(_INSERT_RUN, rows[0])
        self.conn.executemany(_INSERT_STREAM, rows[1])
        self.conn.executemany(_INSERT_ARTIFACT, rows[2])

    def _existing(self, keys: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for i in range(0, len(keys), _KEY_QUERY_CHUNK):
            chunk = keys[i : i + _KEY_QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT run_key, id FROM runs WHERE run_key IN ({marks})"
            found.update(self.conn.execute(sql, chunk).fetchall())
        return found

    def _repeat(self, run: NewRun, run_id: int) -> None:
        if self.refuse_repeats and run_id >= self.first_id:
            raise ManifestError(
                f"{self.where(run)}: run: the same run (set {run.set_name}, host {run.host}, "
                f"start {run.started.isoformat()}, type {run.backup_type}) is listed earlier "
                "in this file; nothing was imported",
                hint="list each run once (in a CSV manifest, keep the rows of a run together)",
            )
        self.skipped += 1

    def _stage(self, run: NewRun, key: str, rows: tuple[list[Any], list[Any], list[Any]]) -> None:
        record = self._set(run)
        admitted: _Admitted = {}
        if run.status != "failed":
            admitted = admission.admit_run(self.histories, run, self.where)
        run_id = self.last_id = self.next_id
        self.next_id += 1
        compression = run.compression or record.compression_at(run.started)
        run_type = _run_type(run.backup_type, admitted)
        ended = to_epoch(run.ended)
        rows[0].append(_run_row(run_id, run, run_type, compression, key, ended))
        rows[1].extend(
            _stream_row(run_id, sg, kind, ended, f) for sg, (kind, f) in admitted.items()
        )
        rows[2].extend(_artifact_row(run_id, run, a, admitted) for a in run.artifacts)
        self.added += 1
        self.artifacts += len(run.artifacts)
        self.converted.extend(sg for sg, (kind, _) in admitted.items() if kind != run.backup_type)

    def _set(self, run: NewRun) -> Any:
        known = self.histories.sets
        record = known.get(run.set_name) or sets.load_one(self.conn, run.set_name)
        if record is None:
            raise ManifestError(
                f"{self.where(run)}: set: unknown backup set {run.set_name!r}",
                hint="declare it under backup_sets in the inventory, or run `dr set add`",
            )
        known[run.set_name] = record
        return record


def _run_type(requested: str, admitted: _Admitted) -> str:
    """The run's recorded type: a copy when every stream was admitted as a copy."""
    kinds = {kind for kind, _ in admitted.values()}
    return kinds.pop() if len(kinds) == 1 else requested


def _run_row(
    run_id: int, run: NewRun, run_type: str, compression: str, key: str, ended: int
) -> tuple[Any, ...]:
    return (
        run_id,
        run.set_name,
        run.host,
        run_type,
        to_epoch(run.started),
        ended,
        run.status,
        run.error,
        run.source,
        compression,
        key,
    )


def _stream_row(run_id: int, sg: str, kind: str, ended: int, f: Any) -> tuple[Any, ...]:
    return (
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


def _artifact_row(run_id: int, run: NewRun, a: NewArtifact, admitted: _Admitted) -> tuple[Any, ...]:
    backup_type = admitted[a.storage_group][0] if a.storage_group in admitted else run.backup_type
    return (
        run_id,
        a.kind,
        run.host,
        a.storage_group,
        a.database,
        a.name,
        a.size,
        a.stored_size if a.stored_size is not None else a.size,
        a.sha256,
        a.location,
        a.state,
        a.log_required_first,
        a.log_required_last,
        a.db_signature,
        a.log_prefix,
        a.first_gen,
        a.last_gen,
        a.log_signature,
        a.mailbox,
        a.item_count,
        backup_type,
    )
