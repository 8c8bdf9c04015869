"""A backup reads the set's newest manifest only, however long the chain already is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dr.store.backup import BackupOptions, run_backup, set_history
from dr.store.repository import Repository

from .conftest import page_file, rewrite_pages

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def test_backup_reads_one_manifest_whatever_the_chain_length(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "note.txt").write_text("v0")
    ids = [run_backup(repo, BackupOptions("s", src, backup_type="full", at=T0))["id"]]
    for n in range(1, 7):  # one a day: versions of one second would all be read
        (src / "note.txt").write_text(f"v{n}")
        ids.append(run_backup(repo, BackupOptions("s", src, at=T0 + timedelta(n)))["id"])
    reads: list[str] = []
    original = repo.read_manifest

    def counting(vid: str) -> dict:
        reads.append(vid)
        return original(vid)

    monkeypatch.setattr(repo, "read_manifest", counting)
    from dr.store import backup as backup_module

    backup_module._CACHE.clear()
    history = set_history(repo, "s")
    assert [m["id"] for m in history] == ids
    assert reads == [ids[-1]]  # the newest carries the heads of the six before it
    last = run_backup(repo, BackupOptions("s", src, at=T0 + timedelta(7)))
    assert last["backup_type"] == "incremental" and last["base"] == ids[-1]
    assert [h["id"] for h in last["chain"]] == [*ids, last["id"]]


def test_differential_over_heads_builds_on_the_full(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", 300, seed=3)
    full = run_backup(repo, BackupOptions("s", src, backup_type="full"))
    for v in range(3):
        rewrite_pages(src / "db.edb", [v * 10], version=v + 2)
        run_backup(repo, BackupOptions("s", src, backup_type="incremental"))
    diff = run_backup(repo, BackupOptions("s", src, backup_type="differential"))
    entry = next(f for f in diff["files"] if f["path"] == "db.edb")
    assert diff["base"] == full["id"] and entry["changed_blocks"] == 3
