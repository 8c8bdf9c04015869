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

from dr.catalog import sets
from dr.catalog.loader import Loader, Prepared
from dr.catalog.model import Artifact, NewRun, Run, SetRecord, from_epoch, to_epoch
from dr.catalog.schema import migrate
from dr.catalog.store import (
    ARTIFACT_COLUMNS,
    RUN_COLUMNS,
    connect,
    row_to_artifact,
    row_to_run,
    transaction,
)
from dr.errors import CatalogError, NotFoundError
from dr.model.sets import BackupSet

if TYPE_CHECKING:
    from dr.catalog.model import ImportReport
    from dr.model.inventory import Inventory


def _default_where(run: Prepared) -> str:
    return f"run {run.set_name} {from_epoch(run.started).isoformat()}"


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

    def last_ended(self, until: datetime | None = None) -> dict[tuple[str, str], datetime]:
        """When the newest successful (or warning) run of each set and type ended (by
        ``until``, when given: what was known at that time)."""
        limit = to_epoch(until) if until is not None else 2**62
        rows = self.conn.execute(
            "SELECT set_name, backup_type, MAX(ended) FROM runs WHERE status != 'failed' "
            "AND ended <= ? GROUP BY set_name, backup_type",
            (limit,),
        )
        return {(name, kind): from_epoch(ended) for name, kind, ended in rows}

    def counts(self) -> dict[str, int]:
        """Row counts per table (used by reports and by tests proving nothing changed)."""
        tables = ("backup_sets", "runs", "artifacts", "stream_backups")
        return {t: self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}

    # -- writes ------------------------------------------------------------------------

    def record_run(self, run: NewRun) -> Run:
        """Record one run and its artifacts in one transaction, Exchange rules enforced."""
        with transaction(self.conn):
            loader = Loader(self.conn, _default_where)
            loader.add_all([run])
        if loader.last_id is None:
            raise CatalogError(
                f"run {run.key} is already in the catalog",
                hint="a run is identified by set, host, start time and type",
            )
        return self.run(loader.last_id)

    def record_runs(
        self, runs: Sequence[NewRun], where: Callable[[Prepared], str] = _default_where
    ) -> tuple[int, int, int, list[str]]:
        """Record many runs in one transaction (oldest first); runs already present are skipped.

        Returns (added, skipped, artifacts added, streams recorded as copy instead of full).
        """
        with transaction(self.conn):
            loader = Loader(self.conn, where)
            loader.add_all(sorted(runs, key=lambda r: (r.ended, r.started)))
        return loader.added, loader.skipped, loader.artifacts, loader.converted

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


def mark_expired_in(conn: sqlite3.Connection, artifact_ids: list[int], run_ids: list[int]) -> int:
    """Mark rows expired inside the caller's transaction; runs left with nothing live too,
    and every stream backup of a touched run that has no live artifact left."""
    changed = 0
    touched = set(run_ids)
    if artifact_ids:
        cur = conn.executemany(
            "UPDATE artifacts SET expired = 1 WHERE id = ? AND expired = 0",
            [(i,) for i in artifact_ids],
        )
        changed += cur.rowcount
        for i in range(0, len(artifact_ids), 500):
            chunk = artifact_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT DISTINCT run_id FROM artifacts WHERE id IN ({marks})"
            touched.update(row[0] for row in conn.execute(sql, chunk))
    if run_ids:
        cur = conn.executemany(
            "UPDATE artifacts SET expired = 1 WHERE run_id = ? AND expired = 0",
            [(i,) for i in run_ids],
        )
        changed += cur.rowcount
    conn.executemany(
        "UPDATE stream_backups SET expired = 1 WHERE run_id = ? AND expired = 0 AND NOT EXISTS "
        "(SELECT 1 FROM artifacts a WHERE a.run_id = stream_backups.run_id "
        "AND a.storage_group = stream_backups.storage_group AND a.expired = 0)",
        [(i,) for i in sorted(touched)],
    )
    conn.execute(
        "UPDATE runs SET expired = 1 WHERE expired = 0 AND NOT EXISTS "
        "(SELECT 1 FROM artifacts a WHERE a.run_id = runs.id AND a.expired = 0) "
        "AND EXISTS (SELECT 1 FROM artifacts a WHERE a.run_id = runs.id)"
    )
    return changed
