"""Locks: a live holder blocks a conflicting operation; a dead one's lock is removed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dr.errors import RepositoryLocked
from dr.store.backup import BackupOptions, run_backup
from dr.store.lock import locked
from dr.store.repository import Repository


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_exclusive_lock_blocks_backup_and_names_the_holder(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"x")
    with (
        locked(repo.root, exclusive=True, operation="prune"),
        pytest.raises(RepositoryLocked, match="locked by prune on"),
    ):
        run_backup(repo, BackupOptions("s", src))
    assert repo.version_ids() == []
    run_backup(repo, BackupOptions("s", src))  # released afterwards


def test_shared_locks_coexist(repo: Repository) -> None:
    with (
        locked(repo.root, exclusive=False, operation="backup"),
        locked(repo.root, exclusive=False, operation="restore"),
    ):
        pass
    with (
        locked(repo.root, exclusive=False, operation="backup"),
        pytest.raises(RepositoryLocked),
        locked(repo.root, exclusive=True, operation="prune"),
    ):
        pass


def test_lock_of_a_dead_process_is_removed(repo: Repository) -> None:
    stale = repo.root / "locks" / "deadbeef.json"
    stale.write_text(
        json.dumps(
            {
                "host": socket.gethostname(),
                "pid": dead_pid(),
                "time": 0,
                "exclusive": True,
                "operation": "prune",
            }
        )
    )
    with locked(repo.root, exclusive=True, operation="prune"):
        assert not stale.exists()
    assert list((repo.root / "locks").iterdir()) == []
