"""Damage: verify names the damaged versions, restore refuses them, the others restore."""

from __future__ import annotations

from pathlib import Path

import pytest

from dr.errors import IntegrityError
from dr.store.backup import BackupOptions, run_backup
from dr.store.format import INDEX_DIR
from dr.store.packs import pack_path
from dr.store.repair import rebuild_index
from dr.store.repository import Repository
from dr.store.restore import restore_version
from dr.store.verify import verify

from .conftest import random_bytes, tree_digest


def two_sets(repo: Repository, tmp: Path) -> tuple[dict, dict, dict[str, bytes]]:
    """Version A (set a) and version B (set b) share nothing, each in its own packs."""
    srcs = {}
    out = []
    for name, seed in (("a", 1), ("b", 2)):
        src = tmp / f"src-{name}"
        src.mkdir()
        (src / "f.bkf").write_bytes(random_bytes(1 << 20, seed))
        srcs[name] = src
        out.append(run_backup(repo, BackupOptions(name, src)))
    return out[0], out[1], {k: tree_digest(v) for k, v in srcs.items()}  # type: ignore[return-value]


def packs_of(repo: Repository, manifest: dict) -> set[str]:
    ids = {bytes.fromhex(c[0]) for f in manifest["files"] for c in f["chunks"]}
    return {repo.index.blobs[i].pack for i in ids}


def assert_only_a_damaged(repo: Repository, a: dict, b: dict, tmp: Path, want: dict) -> None:
    report = verify(repo, read_data=True)
    assert report.damaged_versions == [a["id"]]
    with pytest.raises(IntegrityError) as err:
        restore_version(repo, a["id"], tmp / "out-a")
    assert a["id"] in err.value.message or "pack" in err.value.message
    assert not any((tmp / "out-a").rglob("f.bkf"))  # nothing half-written left in place
    restore_version(repo, b["id"], tmp / "out-b")
    assert tree_digest(tmp / "out-b") == want["b"]


def test_flipped_byte_in_a_pack(repo: Repository, tmp_path: Path) -> None:
    a, b, want = two_sets(repo, tmp_path)
    path = pack_path(repo.root, sorted(packs_of(repo, a))[0])
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    repo.close()
    assert not verify(repo, read_data=False).damaged_versions  # structure alone looks fine
    assert_only_a_damaged(repo, a, b, tmp_path, want)


def test_truncated_pack(repo: Repository, tmp_path: Path) -> None:
    a, b, want = two_sets(repo, tmp_path)
    path = pack_path(repo.root, sorted(packs_of(repo, a))[-1])
    path.write_bytes(path.read_bytes()[:1000])
    repo.close()
    assert verify(repo).damaged_versions == [a["id"]]
    assert_only_a_damaged(repo, a, b, tmp_path, want)


def test_deleted_index_file_then_repair(repo: Repository, tmp_path: Path) -> None:
    a, b, want = two_sets(repo, tmp_path)
    first_index = sorted((repo.root / INDEX_DIR).iterdir(), key=lambda p: p.stat().st_mtime_ns)
    first_index[0].unlink()  # the index file written by version A's backup
    repo.reload_index()
    report = verify(repo)
    assert report.damaged_versions == [a["id"]]
    with pytest.raises(IntegrityError):
        restore_version(repo, a["id"], tmp_path / "out-a")
    restore_version(repo, b["id"], tmp_path / "out-b")
    rebuild_index(repo)
    assert verify(repo, read_data=True).ok
    restore_version(repo, a["id"], tmp_path / "out-a2")
    assert tree_digest(tmp_path / "out-a2") == want["a"]


def test_damaged_manifest_is_named(repo: Repository, tmp_path: Path) -> None:
    a, _b, _ = two_sets(repo, tmp_path)
    path = repo.root / "manifests" / a["id"]
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # always a change (\x00 may not be)
    report = verify(repo)
    assert report.damaged_versions == [a["id"]]
    with pytest.raises(IntegrityError):
        restore_version(repo, a["id"], tmp_path / "out")


@pytest.mark.parametrize("read_data", [False, True])
def test_a_damaged_chunk_shared_by_versions_damages_every_one(
    repo: Repository, tmp_path: Path, read_data: bool
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "shared.bin").write_bytes(random_bytes(200_000, 5))
    versions = []
    for i in range(3):  # each version adds a file; all share shared.bin's chunk
        (src / f"new{i}.bin").write_bytes(random_bytes(1000, 10 + i))
        versions.append(run_backup(repo, BackupOptions("s", src))["id"])
    where = repo.index.blobs[bytes.fromhex(_chunk_of(repo, versions[0], "shared.bin"))]
    path = pack_path(repo.root, where.pack)
    if read_data:
        data = bytearray(path.read_bytes())
        data[where.offset + where.length // 2] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    repo.close()
    report = verify(repo, read_data=read_data)
    assert report.damaged_versions == sorted(versions)
    assert all(any("shared.bin" in p for p in report.versions[v]) for v in versions)


def _chunk_of(repo: Repository, vid: str, rel: str) -> str:
    return next(f for f in repo.read_manifest(vid)["files"] if f["path"] == rel)["chunks"][0][0]
