"""kill -9 during `dr backup run` and `dr store prune`, at every durability point in turn.

``DR_STORE_CRASH_AT=N`` makes the command SIGKILL itself at its N-th durability point (before
or after a rename, before an unlink), so each iteration stops at a different place. After
every kill: verify passes, the stale lock does not block the next command, and every
version committed before the kill restores byte-identical.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dr.store.backup import BackupOptions, run_backup
from dr.store.repository import Repository, open_repository
from dr.store.restore import restore_version
from dr.store.verify import verify

from .conftest import PASSPHRASE, page_file, random_bytes, rewrite_pages, tree_digest

pytestmark = pytest.mark.slow
ITERATIONS = 20


def dr(args: list[str], tmp: Path, crash_at: int | None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env.update(
        DR_KDF_PROFILE="fast",
        DR_KEY_DIR=str(tmp / "keys"),
        DR_PASSPHRASE=PASSPHRASE,
        DR_WORKSPACE=str(tmp / "no-workspace"),
    )
    if crash_at is not None:
        env["DR_STORE_CRASH_AT"] = str(crash_at)
    proc = subprocess.run(
        [sys.executable, "-m", "dr", *args], env=env, cwd=tmp, capture_output=True, timeout=120
    )
    assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.decode()
    return proc.returncode


def check(repo_root: Path, expected: dict[str, dict[str, bytes]], tmp: Path, all_: bool) -> None:
    repo = open_repository(repo_root, PASSPHRASE)
    report = verify(repo, read_data=all_)
    assert report.ok, report.to_dict()
    present = repo.version_ids()
    chosen = present if all_ else present[:1] + present[-1:]
    for vid in chosen:
        out = tmp / "restores" / f"{vid}-{len(os.listdir(tmp / 'restores'))}"
        restore_version(repo, vid, out)
        assert tree_digest(out) == expected[vid]
    repo.close()


def make_source(tmp: Path) -> Path:
    src = tmp / "src"
    src.mkdir()
    page_file(src / "db.edb", 160, seed=1)
    (src / "state.bkf").write_bytes(random_bytes(600_000, 1))
    return src


def test_kill_during_backup(repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "restores").mkdir()
    src = make_source(tmp_path)
    expected = {run_backup(repo, BackupOptions("s", src))["id"]: tree_digest(src)}
    kills = 0
    for i in range(ITERATIONS):
        rewrite_pages(src / "db.edb", [i, 150 - i], version=i + 2)
        (src / "state.bkf").write_bytes(random_bytes(300_000, i) + random_bytes(300_000, 1))
        before = set(repo.version_ids())
        crash_at = None if i % 5 == 4 else (i % 8) + 1
        rc = dr(
            ["backup", "run", "s", "--from", str(src), "--repo", str(repo.root)], tmp_path, crash_at
        )
        kills += rc != 0
        for vid in set(repo.version_ids()) - before:
            expected[vid] = tree_digest(src)  # committed just before (or without) the kill
        check(repo.root, expected, tmp_path, all_=False)
    assert kills >= ITERATIONS // 2
    check(repo.root, expected, tmp_path, all_=True)


def test_kill_during_prune(repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "restores").mkdir()
    src = make_source(tmp_path)
    expected: dict[str, dict[str, bytes]] = {}
    kills = 0
    for i in range(ITERATIONS):
        for j in range(2):
            rewrite_pages(src / "db.edb", [(i * 3 + j) % 160], version=i * 2 + j + 2)
            (src / "state.bkf").write_bytes(random_bytes(600_000, i * 2 + j))
            kind = "full" if j == 0 else "incremental"
            m = run_backup(repo, BackupOptions("s", src, backup_type=kind))
            expected[m["id"]] = tree_digest(src)
        crash_at = (i % 10) + 1
        prune = ["store", "prune", "--keep-last", "2", "--yes", "--repo", str(repo.root)]
        rc = dr(prune, tmp_path, crash_at)
        kills += rc != 0
        repo.reload_index()
        check(repo.root, expected, tmp_path, all_=False)
    assert kills >= ITERATIONS // 2
    prune = ["store", "prune", "--keep-last", "2", "--yes", "--repo", str(repo.root)]
    assert dr(prune, tmp_path, None) == 0
    check(repo.root, expected, tmp_path, all_=True)
    assert len(repo.version_ids()) == 2
