"""A restore never silently overwrites; an interrupted `dr store init` can be run again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dr.errors import ParameterError, StoreError
from dr.store.backup import BackupOptions, run_backup
from dr.store.repository import Repository, init_repository, open_repository
from dr.store.restore import restore_version

from .conftest import PASSPHRASE, random_bytes, tree_digest
from .test_crash import dr


def _version(repo: Repository, tmp_path: Path) -> tuple[str, dict[str, bytes]]:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "one.txt").write_bytes(random_bytes(3000, 1))
    (src / "two.bin").write_bytes(random_bytes(300_000, 2))
    return run_backup(repo, BackupOptions("s", src))["id"], tree_digest(src)


def test_existing_file_is_refused_and_nothing_is_written(repo: Repository, tmp_path: Path) -> None:
    vid, want = _version(repo, tmp_path)
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "one.txt").write_bytes(b"precious")
    with pytest.raises(ParameterError, match=r"a/one\.txt already exists.*refusing"):
        restore_version(repo, vid, out)
    assert (out / "a" / "one.txt").read_bytes() == b"precious"
    assert not (out / "two.bin").exists()  # refused before anything was written

    restore_version(repo, vid, out, overwrite=True)
    assert tree_digest(out) == want


def test_restore_into_a_directory_holding_other_files_is_fine(
    repo: Repository, tmp_path: Path
) -> None:
    vid, want = _version(repo, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "unrelated.txt").write_text("stays")
    restore_version(repo, vid, out)
    assert tree_digest(out) == {**want, "unrelated.txt": b"stays"}
    assert not [p for p in out.rglob("*.dr-partial")]


def test_cli_restore_refusal_is_one_line_with_the_overwrite_hint(
    repo: Repository, tmp_path: Path
) -> None:
    vid, _ = _version(repo, tmp_path)
    out = tmp_path / "out"
    restore_version(repo, vid, out)
    args = ["store", "restore", vid, "--to", str(out), "--repo", str(repo.root)]
    proc = subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "already exists" in proc.stderr and "--overwrite" in proc.stderr


@pytest.mark.parametrize("crash_at", [1, 2, 3, 4])
def test_interrupted_init_is_finished_by_running_it_again(tmp_path: Path, crash_at: int) -> None:
    root, key = tmp_path / "repo", tmp_path / "repo.key"
    dr(["store", "init", str(root), "--key-file", str(key)], tmp_path, crash_at)
    try:
        repo, _ = init_repository(root, PASSPHRASE, key_file=key)
        repo.close()
    except StoreError as exc:  # the kill came after the config was in place: init completed
        assert "already holds a dr repository" in exc.message
    repo = open_repository(root, PASSPHRASE, key_file=key)
    vid, want = _version(repo, tmp_path)
    restore_version(repo, vid, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == want


def test_a_directory_with_other_content_is_still_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "data" / "someone-elses.txt").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        init_repository(root, PASSPHRASE)
