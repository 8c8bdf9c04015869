"""Every version's manifest carries its whole catalog record; a rebuild restores it exactly.

The remote path records facts the store cannot see in the files (``eseutil /mh`` header
state, Log Required, signatures); after losing the workspace, ``rebuild-catalog`` must give
back the same rows, field by field.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from dr.backup.run import run_remote_backup
from dr.catalog import Catalog
from dr.model.sets import BackupSet
from dr.store.backup import BackupOptions, run_backup
from dr.store.catalog_link import rebuild, record
from dr.store.repair import catalog_documents
from dr.store.repository import Repository
from tests.backup.conftest import Lab, estate, make_lab  # noqa: F401  (fixtures)

RUN_COLUMNS = "set_name, host, backup_type, started, ended, status, error, source, compression"
ARTIFACT_COLUMNS = (
    "kind, host, storage_group, database, name, size, stored_size, sha256, location, state, "
    "log_required_first, log_required_last, db_signature, log_prefix, first_gen, last_gen, "
    "log_signature, mailbox, item_count, expired"
)


def catalog_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog's runs, artifacts and stream backups without their row ids."""
    conn = sqlite3.connect(path)
    try:
        runs = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started").fetchall()
        arts = conn.execute(
            f"SELECT r.started, {', '.join('a.' + c.strip() for c in ARTIFACT_COLUMNS.split(','))}"
            " FROM artifacts a JOIN runs r ON r.id = a.run_id ORDER BY r.started, a.name"
        ).fetchall()
        streams = conn.execute(
            "SELECT r.started, s.storage_group, s.backup_type, s.at, s.log_prefix, s.first_gen,"
            " s.last_gen, s.log_signature FROM stream_backups s JOIN runs r ON r.id = s.run_id"
            " ORDER BY r.started, s.storage_group"
        ).fetchall()
    finally:
        conn.close()
    return {"runs": runs, "artifacts": arts, "streams": streams}


def rebuilt_rows(repo: Repository, path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with Catalog.open(path) as catalog:
        added, skipped = rebuild(catalog, catalog_documents(repo))
    assert skipped == 0 and added > 0
    return catalog_rows(path)


def test_remote_runs_rebuild_with_header_and_log_facts(make_lab, tmp_path: Path) -> None:  # noqa: F811
    lab: Lab = make_lab("EX2016")
    bset = next(s for s in lab.inventory.backup_sets if s.name == "ex2016-exchange")
    run_remote_backup(lab.context(), bset, "full")
    lab.sim.workload("DB01", 3)
    run_remote_backup(lab.context(), bset, "incremental")
    original = catalog_rows(tmp_path / "catalog-EX2016.sqlite")
    edb = [a for a in original["artifacts"] if a[1] == "database"]
    assert edb and all(a[10] and a[11] and a[13] and a[17] for a in edb)  # state, LR, sigs
    assert any(a[15] is not None for a in original["artifacts"])  # log generations

    rebuilt = rebuilt_rows(lab.repo, tmp_path / "rebuilt.sqlite")
    for table in ("runs", "artifacts", "streams"):
        assert rebuilt[table] == original[table], table


def test_local_runs_rebuild_with_log_generations(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "logs" / "E0000000001.log").write_bytes(b"l" * 5000)
    (src / "logs" / "E0000000002.log").write_bytes(b"m" * 5000)
    (src / "notes.txt").write_text("hello")
    opts = BackupOptions(
        "s", src, host="EX1", storage_group="EX1/SG", set_definition=_files_set("s", "EX1")
    )
    manifest = run_backup(repo, opts)
    original_path = tmp_path / "original.sqlite"
    with Catalog.open(original_path) as catalog:
        catalog.register_set(BackupSet.model_validate(_files_set("s", "EX1")))
        record(catalog, manifest["catalog"])
    original = catalog_rows(original_path)
    assert {a[14:17] for a in original["artifacts"] if a[1] == "logs"} == {
        ("E00", 1, 1),
        ("E00", 2, 2),
    }
    assert rebuilt_rows(repo, tmp_path / "rebuilt.sqlite") == original


def _files_set(name: str, host: str) -> dict[str, Any]:
    return {"name": name, "host": host, "type": "files"}
