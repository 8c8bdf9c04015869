"""The catalog of backup sets, runs and artifacts (FEATURES A1–A12).

``Catalog`` is the one object the rest of dr uses to read and write what was backed up.
Reads return frozen values (:mod:`dr.catalog.model`); writes are single transactions, and
runs of Exchange sets pass the Exchange backup rules before they are stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dr.catalog import admission, sets
from dr.catalog.model import Artifact, NewArtifact, NewRun, Run, SetRecord, to_epoch
from dr.catalog.schema import migrate
from dr.catalog.store import (
    ARTIFACT_COLUMNS,
    RUN_COLUMNS,
    connect,
    row_to_artifact,
    row_to_run,
    transaction,
)
from dr.errors import CatalogError, ManifestError, NotFoundError
from dr.model.sets import BackupSet

if TYPE_CHECKING:
    from dr.catalog.model import ImportReport
    from dr.model.inventory import Inventory

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


def _default_where(run: NewRun) -> str:
    return f"run {run.set_name} {run.started.isoformat()}"


class Catalog:
    """An open catalog file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path | str) -> Catalog:
        """Open or create the catalog at ``path`` and bring its schema up to date."""
        path = Path(path)
        conn = connect(path)
        try:
            migrate(conn, str(path))
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise CatalogError(
                f"{path}: not a dr catalog ({exc})",
                hint="point --workspace at a dr workspace, or move the file aside",
            ) from exc
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- backup sets -------------------------------------------------------------------

    def sets(self) -> list[SetRecord]:
        return sets.load_all(self.conn)

    def set(self, name: str) -> SetRecord:
        found = sets.load_one(self.conn, name)
        if found is None:
            raise NotFoundError(
                f"no backup set named {name!r}",
                hint="`dr set show` lists the sets; `dr set add` creates one",
            )
        return found

    def register_set(self, definition: BackupSet, at: datetime | None = None) -> SetRecord:
        """Record a new set with the settings it is created with (encryption is fixed now)."""
        with transaction(self.conn):
            sets.insert(self.conn, definition, at or datetime.now(UTC))
        return self.set(definition.name)

    def update_set(self, definition: BackupSet, at: datetime | None = None) -> SetRecord:
        """Change a set; encryption changes are refused, compression applies from ``at`` on."""
        with transaction(self.conn):
            sets.update(self.conn, definition, at or datetime.now(UTC))
        return self.set(definition.name)

    def sync_sets(self, definitions: Iterable[BackupSet], at: datetime | None = None) -> list[str]:
        """Register sets the inventory declares and apply allowed changes; returns new names."""
        when = at or datetime.now(UTC)
        with transaction(self.conn):
            return sets.sync(self.conn, list(definitions), when)

    # -- reads -------------------------------------------------------------------------

    def runs(self, set_name: str | None = None, host: str | None = None) -> list[Run]:
        sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE 1=1"
        args: list[Any] = []
        if set_name is not None:
            sql += " AND set_name = ?"
            args.append(set_name)
        if host is not None:
            sql += " AND upper(host) = upper(?)"
            args.append(host)
        rows = self.conn.execute(sql + " ORDER BY started, id", args).fetchall()
        return [row_to_run(row) for row in rows]

    def run(self, run_id: int) -> Run:
        row = self.conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        found = row.fetchone()
        if found is None:
            raise NotFoundError(f"no run with id {run_id} in the catalog")
        return row_to_run(found)

    def artifacts(
        self,
        run_id: int | None = None,
        kind: str | None = None,
        storage_group: str | None = None,
        database: str | None = None,
        include_expired: bool = False,
    ) -> list[Artifact]:
        filters = {
            "run_id": run_id,
            "kind": kind,
            "storage_group": storage_group,
            "database": database,
        }
        sql = f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE 1=1"
        args: list[Any] = []
        for column, value in filters.items():
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if not include_expired:
            sql += " AND expired = 0"
        rows = self.conn.execute(sql + " ORDER BY run_id, id", args).fetchall()
        return [row_to_artifact(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Row counts per table (used by reports and by tests proving nothing changed)."""
        tables = ("backup_sets", "runs", "artifacts", "stream_backups")
        return {t: self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}

    # -- writes ------------------------------------------------------------------------

    def record_run(self, run: NewRun) -> Run:
        """Record one run and its artifacts in one transaction, Exchange rules enforced."""
        with transaction(self.conn):
            run_id, _ = self._insert(run, _default_where, admission.Histories(self.conn))
        if run_id is None:
            raise CatalogError(
                f"run {run.key} is already in the catalog",
                hint="a run is identified by set, host, start time and type",
            )
        return self.run(run_id)

    def record_runs(
        self, runs: Sequence[NewRun], where: Callable[[NewRun], str] = _default_where
    ) -> tuple[int, int, int, list[str]]:
        """Record many runs in one transaction (oldest first); runs already present are skipped.

        Returns (added, skipped, artifacts added, streams recorded as copy instead of full).
        """
        added = skipped = artifacts = 0
        converted: list[str] = []
        histories = admission.Histories(self.conn)
        with transaction(self.conn):
            for run in sorted(runs, key=lambda r: (r.ended, r.started)):
                run_id, copies = self._insert(run, where, histories)
                if run_id is None:
                    skipped += 1
                    continue
                added += 1
                artifacts += len(run.artifacts)
                converted.extend(copies)
        return added, skipped, artifacts, converted

    def import_file(
        self, path: Path, inventory: Inventory | None, fmt: str | None = None, **options: Any
    ) -> ImportReport:
        """Import a JSON / CSV manifest or `wbadmin get versions` text; all or nothing."""
        from dr.catalog.importers import import_file

        return import_file(self, Path(path), inventory, fmt, **options)

    def mark_expired(self, artifact_ids: Iterable[int] = (), run_ids: Iterable[int] = ()) -> int:
        """Mark artifacts (or every artifact of runs) expired, in one transaction."""
        with transaction(self.conn):
            return mark_expired_in(self.conn, list(artifact_ids), list(run_ids))

    # -- internals ---------------------------------------------------------------------

    def _insert(
        self, run: NewRun, where: Callable[[NewRun], str], histories: admission.Histories
    ) -> tuple[int | None, list[str]]:
        if self.conn.execute("SELECT 1 FROM runs WHERE run_key = ?", (run.key,)).fetchone():
            return None, []
        record = histories.sets.get(run.set_name) or sets.load_one(self.conn, run.set_name)
        if record is None:
            raise ManifestError(
                f"{where(run)}: set: unknown backup set {run.set_name!r}",
                hint="declare it under backup_sets in the inventory, or run `dr set add`",
            )
        histories.sets[run.set_name] = record
        admitted = {}
        if run.status != "failed":
            admitted = admission.admit_run(histories, run, where)
        run_type = _run_type(run.backup_type, admitted)
        compression = run.compression or record.compression_at(run.started)
        run_id = self._insert_run_row(run, run_type, compression)
        self._insert_streams(run_id, run, admitted)
        self.conn.executemany(
            _INSERT_ARTIFACT,
            [_artifact_row(run_id, run, a, admitted) for a in run.artifacts],
        )
        copies = [sg for sg, (kind, _) in admitted.items() if kind != run.backup_type]
        return run_id, copies

    def _insert_run_row(self, run: NewRun, run_type: str, compression: str) -> int:
        cursor = self.conn.execute(
            "INSERT INTO runs (set_name, host, backup_type, started, ended, status, error, "
            "source, compression, run_key) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                run.set_name,
                run.host,
                run_type,
                to_epoch(run.started),
                to_epoch(run.ended),
                run.status,
                run.error,
                run.source,
                compression,
                run.key,
            ),
        )
        return int(cursor.lastrowid or 0)

    def _insert_streams(
        self, run_id: int, run: NewRun, admitted: dict[str, tuple[str, Any]]
    ) -> None:
        rows = [
            (
                run_id,
                sg,
                kind,
                to_epoch(run.ended),
                f.log_prefix,
                f.first_gen,
                f.last_gen,
                f.log_signature,
                int(f.circular_logging),
                int(f.database_mounted),
            )
            for sg, (kind, f) in admitted.items()
        ]
        self.conn.executemany(_INSERT_STREAM, rows)


def _run_type(requested: str, admitted: dict[str, tuple[str, Any]]) -> str:
    """The run's recorded type: a copy when every stream was admitted as a copy."""
    kinds = {kind for kind, _ in admitted.values()}
    return kinds.pop() if len(kinds) == 1 else requested


def _artifact_row(
    run_id: int, run: NewRun, a: NewArtifact, admitted: dict[str, tuple[str, Any]]
) -> tuple[Any, ...]:
    backup_type = admitted.get(a.storage_group or "", (run.backup_type, None))[0]
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


def mark_expired_in(conn: sqlite3.Connection, artifact_ids: list[int], run_ids: list[int]) -> int:
    """Mark rows expired inside the caller's transaction; runs left with nothing live too."""
    changed = 0
    if artifact_ids:
        cur = conn.executemany(
            "UPDATE artifacts SET expired = 1 WHERE id = ? AND expired = 0",
            [(i,) for i in artifact_ids],
        )
        changed += cur.rowcount
    if run_ids:
        cur = conn.executemany(
            "UPDATE artifacts SET expired = 1 WHERE run_id = ? AND expired = 0",
            [(i,) for i in run_ids],
        )
        changed += cur.rowcount
    conn.execute(
        "UPDATE runs SET expired = 1 WHERE expired = 0 AND NOT EXISTS "
        "(SELECT 1 FROM artifacts a WHERE a.run_id = runs.id AND a.expired = 0) "
        "AND EXISTS (SELECT 1 FROM artifacts a WHERE a.run_id = runs.id)"
    )
    return changed
