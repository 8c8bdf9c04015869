"""The catalog's schema as an ordered list of migrations.

Migration ``n`` (1-based) takes a catalog from version ``n - 1`` to ``n``. Each is applied
in its own transaction together with the version bump, so a crash leaves the catalog at a
version it really has. A catalog whose version is newer than this list is refused: an older
dr must not write into a layout it does not know.
"""

from __future__ import annotations

import sqlite3

from dr.errors import CatalogError

_V1 = """
CREATE TABLE backup_sets (
    name        TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    type        TEXT NOT NULL,
    definition  TEXT NOT NULL,            -- the set as JSON, as last updated
    encryption  TEXT NOT NULL,            -- the encryption block as JSON, fixed at creation
    created     INTEGER NOT NULL
);
CREATE TABLE set_compression (
    id          INTEGER PRIMARY KEY,
    set_name    TEXT NOT NULL REFERENCES backup_sets(name) ON DELETE CASCADE,
    compression TEXT NOT NULL,
    effective   INTEGER NOT NULL          -- runs starting at or after this use it
);
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    set_name    TEXT NOT NULL REFERENCES backup_sets(name),
    host        TEXT NOT NULL,
    backup_type TEXT NOT NULL CHECK (backup_type IN ('full','copy','incremental','differential')),
    started     INTEGER NOT NULL,
    ended       INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('success','warning','failed')),
    error       TEXT,
    source      TEXT NOT NULL,
    compression TEXT NOT NULL,
    run_key     TEXT NOT NULL UNIQUE
);
CREATE TABLE artifacts (
    id                 INTEGER PRIMARY KEY,
    run_id             INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind               TEXT NOT NULL,
    host               TEXT NOT NULL,
    storage_group      TEXT,
    database           TEXT,
    name               TEXT NOT NULL,
    size               INTEGER NOT NULL,
    stored_size        INTEGER NOT NULL,
    sha256             TEXT,
    location           TEXT,
    state              TEXT,
    log_required_first INTEGER,
    log_required_last  INTEGER,
    db_signature       TEXT,
    log_prefix         TEXT,
    first_gen          INTEGER,
    last_gen           INTEGER,
    log_signature      TEXT,
    mailbox            TEXT,
    item_count         INTEGER,
    expired            INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE stream_backups (
    run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    storage_group    TEXT NOT NULL,
    backup_type      TEXT NOT NULL,
    at               INTEGER NOT NULL,
    log_prefix       TEXT,
    first_gen        INTEGER,
    last_gen         INTEGER,
    log_signature    TEXT,
    circular_logging INTEGER NOT NULL,
    database_mounted INTEGER NOT NULL,
    PRIMARY KEY (storage_group, run_id)
);
"""

_V2 = """
ALTER TABLE artifacts ADD COLUMN backup_type TEXT NOT NULL DEFAULT 'full';
UPDATE artifacts SET backup_type = (SELECT backup_type FROM runs WHERE runs.id = artifacts.run_id);
ALTER TABLE runs ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
CREATE TABLE expiries (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,          -- when `dr retention apply` ran
    policy_time INTEGER NOT NULL,          -- the --at it evaluated
    artifacts   INTEGER NOT NULL
);
ALTER TABLE artifacts ADD COLUMN expiry_id INTEGER REFERENCES expiries(id);
"""

_V3 = """
CREATE INDEX artifacts_by_run ON artifacts(run_id);
CREATE INDEX artifacts_by_sg ON artifacts(storage_group, kind) WHERE storage_group IS NOT NULL;
CREATE INDEX artifacts_by_db ON artifacts(database) WHERE database IS NOT NULL;
CREATE INDEX runs_by_set ON runs(set_name, started);
CREATE INDEX runs_by_host ON runs(host, started);
CREATE INDEX stream_backups_by_run ON stream_backups(run_id);
"""

#: The runs table again, with its CHECK constraints written as comparisons. SQLite builds a
#: temporary table for an ``IN (...)`` list each time a statement runs, and ``executemany``
#: runs the INSERT once per row: the old constraints tripled the cost of recording a run.
#: Same columns, same rules, same rows; its indexes are rebuilt with it.
_V4 = """
CREATE TABLE runs_v4 (
    id          INTEGER PRIMARY KEY,
    set_name    TEXT NOT NULL REFERENCES backup_sets(name),
    host        TEXT NOT NULL,
    backup_type TEXT NOT NULL CHECK (backup_type = 'full' OR backup_type = 'copy'
                                     OR backup_type = 'incremental'
                                     OR backup_type = 'differential'),
    started     INTEGER NOT NULL,
    ended       INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status = 'success' OR status = 'warning'
                                     OR status = 'failed'),
    error       TEXT,
    source      TEXT NOT NULL,
    compression TEXT NOT NULL,
    run_key     TEXT NOT NULL UNIQUE,
    expired     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO runs_v4 (id, set_name, host, backup_type, started, ended, status, error, source,
                     compression, run_key, expired)
    SELECT id, set_name, host, backup_type, started, ended, status, error, source,
           compression, run_key, expired FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v4 RENAME TO runs;
CREATE INDEX runs_by_set ON runs(set_name, started);
CREATE INDEX runs_by_host ON runs(host, started);
"""

#: Whether a stream's backup still has a live artifact, kept with the artifacts' flags by
#: ``mark_expired_in``: retention reads the live versions of a stream without looking up
#: the artifacts of each of them (a third of planning retention for a year of backups).
_V5 = """
ALTER TABLE stream_backups ADD COLUMN expired INTEGER NOT NULL DEFAULT 0;
UPDATE stream_backups SET expired = 1 WHERE NOT EXISTS (
    SELECT 1 FROM artifacts a WHERE a.run_id = stream_backups.run_id
    AND a.storage_group = stream_backups.storage_group AND a.expired = 0);
"""

#: A plan asks for one host's artifacts of one kind (its system state, its metabase, its
#: mail-level backups): ``upper(host)`` because host names compare without case, as the
#: planner compares them. Without it every such question scans the whole table.
_V6 = """
CREATE INDEX artifacts_by_kind_host ON artifacts(kind, upper(host));
"""

#: Ordered; never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6)
LATEST = len(MIGRATIONS)


def _indexes(script: str) -> tuple[tuple[str, str], ...]:
    statements = [s.strip() for s in script.split(";") if s.strip()]
    return tuple((s.split()[2], s) for s in statements if s.startswith("CREATE INDEX"))


#: (name, CREATE statement) of every secondary index. A bulk load into an empty catalog
#: drops them inside its transaction and creates them again before it commits: building an
#: index once from sorted data is much cheaper than updating it a million times.
SECONDARY_INDEXES: tuple[tuple[str, str], ...] = _indexes(_V3) + _indexes(_V6)


def drop_secondary_indexes(conn: sqlite3.Connection) -> None:
    for name, _ in SECONDARY_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")


def create_secondary_indexes(conn: sqlite3.Connection) -> None:
    for _, statement in SECONDARY_INDEXES:
        conn.execute(statement.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).fetchone()
    if row is None:
        return 0
    found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(found[0] or 0)


def migrate(conn: sqlite3.Connection, path: str, target: int = LATEST) -> int:
    """Bring the catalog to ``target``; one transaction per migration. Returns the version."""
    version = current_version(conn)
    if version > LATEST:
        raise CatalogError(
            f"{path}: catalog schema version {version} is newer than this dr understands "
            f"({LATEST})",
            hint="upgrade dr; an older dr must not write into a newer catalog",
        )
    for number in range(version + 1, target + 1):
        _apply(conn, number)
    return max(version, target)


def _apply(conn: sqlite3.Connection, number: int) -> None:
    """One migration with foreign keys off, as SQLite asks for a table rebuild (dropping the
    old runs table must not cascade into the artifacts); the keys are checked before the
    commit and switched back on after it."""
    script = MIGRATIONS[number - 1]
    statements = [s.strip() for s in script.split(";") if s.strip()]
    enforced = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        for statement in statements:
            conn.execute(statement)
        _check_foreign_keys(conn, number)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")


def _check_foreign_keys(conn: sqlite3.Connection, number: int) -> None:
    broken = conn.execute("PRAGMA foreign_key_check").fetchone()
    if broken is not None:
        raise CatalogError(
            f"migration {number} would leave row {broken[1]} of {broken[0]} pointing at a "
            f"missing {broken[2]} row; the catalog is unchanged",
            hint="restore the catalog from a copy or rebuild it with `dr store rebuild-catalog`",
        )
