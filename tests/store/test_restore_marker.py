"""A restore writes new files under their own names inside a directory marked incomplete.

The marker ``.dr-restore-incomplete-VERSION`` is there from before the first file until
every file is written and checked. A file whose data is damaged or whose SHA-256 does not
match is never left under its name; the error names it. A killed restore leaves the
marker. An existing file is replaced only by a checked one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dr.errors import IntegrityError, ParameterError
from dr.store.backup import BackupOptions, run_backup
from dr.store.packs import pack_path
from dr.store.repository import Repository
from dr.store.restore import MARKER_PREFIX, restore_version

from .conftest import random_bytes, tree_digest

BIG = 3 << 20  # several content-defined chunks


def make_version(repo: Repository, tmp: Path) -> tuple[dict, dict[str, bytes]]:
    """Small files in two folders and one file of several chunks, all distinct."""
    src = tmp / "src"
    for i in range(6):
        folder = src / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.txt").write_bytes(random_bytes(2000 + i, i))
    (src / "big.bin").write_bytes(random_bytes(BIG, 99))
    return run_backup(repo, BackupOptions("s", src)), tree_digest(src)


def entry(manifest: dict, path: str) -> dict:
    return next(f for f in manifest["files"] if f["path"] == path)


def damage_chunk(repo: Repository, blob_hex: str) -> None:
    """Flip one byte inside the record of one blob (its pack no longer authenticates it)."""
    where = repo.index.blobs[bytes.fromhex(blob_hex)]
    path = pack_path(repo.root, where.pack)
    data = bytearray(path.read_bytes())
    data[where.offset + where.length // 2] ^= 0x01
    path.write_bytes(bytes(data))
    repo.close()


def with_new_id(repo: Repository, manifest: dict) -> str:
    """Commit ``manifest`` (changed by the caller) as another version; return its id."""
    suffix = "000000" if not manifest["id"].endswith("000000") else "111111"
    manifest["id"] = manifest["id"][:-6] + suffix
    repo.write_manifest(manifest)
    return manifest["id"]


def marker(out: Path, vid: str) -> Path:
    return out / f"{MARKER_PREFIX}{vid}"


def assert_present_files_are_right(out: Path, want: dict[str, bytes]) -> None:
    got = {k: v for k, v in tree_digest(out).items() if not k.startswith(MARKER_PREFIX)}
    assert all(want[path] == data for path, data in got.items())


def test_a_finished_restore_removes_its_marker(repo: Repository, tmp_path: Path) -> None:
    m, want = make_version(repo, tmp_path)
    restore_version(repo, m["id"], tmp_path / "out")
    assert tree_digest(tmp_path / "out") == want
    assert not marker(tmp_path / "out", m["id"]).exists()


@pytest.mark.parametrize("path", ["b/0.txt", "big.bin"])
def test_a_damaged_chunk_leaves_no_file_and_names_it(
    repo: Repository, tmp_path: Path, path: str
) -> None:
    m, want = make_version(repo, tmp_path)
    damage_chunk(repo, entry(m, path)["chunks"][-1][0])  # big.bin: after its first chunks
    out = tmp_path / "out"
    with pytest.raises(IntegrityError) as err:
        restore_version(repo, m["id"], out)
    assert path in err.value.message and "marked incomplete" in err.value.message
    assert not (out / path).exists()
    assert marker(out, m["id"]).exists()
    assert_present_files_are_right(out, want)


@pytest.mark.parametrize("path", ["a/1.txt", "big.bin"])
def test_a_wrong_sha256_leaves_no_file(repo: Repository, tmp_path: Path, path: str) -> None:
    m, want = make_version(repo, tmp_path)
    entry(m, path)["sha256"] = "0" * 64
    vid = with_new_id(repo, m)
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match="wrong SHA-256") as err:
        restore_version(repo, vid, out)
    assert path in err.value.message
    assert not (out / path).exists()
    assert marker(out, vid).exists()
    assert_present_files_are_right(out, want)


def test_a_failed_check_never_replaces_an_existing_file(repo: Repository, tmp_path: Path) -> None:
    m, _ = make_version(repo, tmp_path)
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "1.txt").write_bytes(b"precious")
    entry(m, "a/1.txt")["sha256"] = "0" * 64
    vid = with_new_id(repo, m)
    with pytest.raises(IntegrityError, match=r"a/1\.txt"):
        restore_version(repo, vid, out, overwrite=True)
    assert (out / "a" / "1.txt").read_bytes() == b"precious"
    assert not list(out.rglob("*.dr-partial"))


KILL_AFTER_FIRST_CHUNK = """
import os, signal, sys
from pathlib import Path
from dr.store.repository import open_repository
from dr.store.restore import restore_version

def tick(n):
    os.kill(os.getpid(), signal.SIGKILL)

restore_version(open_repository(Path(sys.argv[1])), sys.argv[2], Path(sys.argv[3]), tick)
"""


def test_a_killed_restore_leaves_the_marker(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(random_bytes(BIG, 7))
    m = run_backup(repo, BackupOptions("s", src))
    assert len(m["files"][0]["chunks"]) > 1
    out = tmp_path / "out"
    args = [str(repo.root), m["id"], str(out)]
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_CHUNK, *args], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert marker(out, m["id"]).exists()
    assert 0 < (out / "big.bin").stat().st_size < BIG  # killed half-way through the file

    with pytest.raises(ParameterError, match="already exists"):
        restore_version(repo, m["id"], out)
    restore_version(repo, m["id"], out, overwrite=True)
    assert tree_digest(out) == tree_digest(src)


def test_cli_names_the_damaged_file(repo: Repository, tmp_path: Path) -> None:
    m, _ = make_version(repo, tmp_path)
    damage_chunk(repo, entry(m, "a/3.txt")["chunks"][0][0])
    out = tmp_path / "out"
    args = ["store", "restore", m["id"], "--to", str(out), "--repo", str(repo.root)]
    proc = subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 6 and "Traceback" not in proc.stderr
    assert "E6300" in proc.stderr and "a/3.txt" in proc.stderr
    assert not (out / "a" / "3.txt").exists() and marker(out, m["id"]).exists()


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "C:\\x", "./../x"])
def test_a_path_escaping_the_target_is_refused(repo: Repository, tmp_path: Path, bad: str) -> None:
    m, _ = make_version(repo, tmp_path)
    m["files"][0]["path"] = bad
    vid = with_new_id(repo, m)
    out = tmp_path / "deep" / "out"
    with pytest.raises(ParameterError, match="escapes the target"):
        restore_version(repo, vid, out)
    assert os.listdir(out) == []  # refused before anything was written


def test_a_link_leading_outside_is_refused(repo: Repository, tmp_path: Path) -> None:
    m, _ = make_version(repo, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").symlink_to(elsewhere)
    with pytest.raises(ParameterError, match="outside the target"):
        restore_version(repo, m["id"], out)
    assert os.listdir(elsewhere) == []
