"""Round trips: every file kind and every delta mode restores byte-identical."""

from __future__ import annotations

import os
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dr.errors import ParameterError, PolicyError
from dr.store.backup import BackupOptions, run_backup
from dr.store.chunking import auto_block_size, check_compiled, ese_page_size
from dr.store.repository import Repository
from dr.store.restore import restore_version, safe_target

from .conftest import page_file, random_bytes, rewrite_pages, tree_digest


def backup(repo: Repository, src: Path, **kw: object) -> dict:
    return run_backup(repo, BackupOptions("s", src, **kw))  # type: ignore[arg-type]


def restored(repo: Repository, version: str, tmp: Path) -> dict[str, bytes]:
    out = tmp / f"out-{version}"
    restore_version(repo, version, out)
    return tree_digest(out)


def by_path(manifest: dict, rel: str) -> dict:
    return next(f for f in manifest["files"] if f["path"] == rel)


def test_fastcdc_is_the_compiled_implementation() -> None:
    assert check_compiled()


def test_every_file_kind_round_trips(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "deep" / "er").mkdir(parents=True)
    (src / "empty.txt").write_bytes(b"")
    (src / "small.txt").write_bytes(b"hello " * 100)
    (src / "deep" / "er" / "SystemState.bkf").write_bytes(random_bytes(5 << 20, 1))
    page_file(src / "Priv1.edb", 300, seed=2)
    (src / "E00.log").write_bytes(random_bytes(1 << 20, 3))
    m = backup(repo, src)
    modes = {f["path"]: f["mode"] for f in m["files"]}
    assert modes == {
        "E00.log": "cdc",
        "Priv1.edb": "block",
        "deep/er/SystemState.bkf": "cdc",
        "empty.txt": "cdc",
        "small.txt": "cdc",
    }
    assert restored(repo, m["id"], tmp_path) == tree_digest(src)


def test_incremental_stores_only_changed_pages(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", 512, seed=1)
    first = backup(repo, src)
    before = tree_digest(src)
    rewrite_pages(src / "db.edb", [3, 200, 201, 511], version=2)
    second = backup(repo, src)
    entry = by_path(second, "db.edb")
    assert second["backup_type"] == "incremental"
    assert entry["delta"] == "incremental" and entry["changed_blocks"] == 4
    assert entry["stored"] < 4 * 8192 + 8192  # four pages (compressed) and a small map
    assert restored(repo, first["id"], tmp_path) == before
    assert restored(repo, second["id"], tmp_path) == tree_digest(src)


def test_differential_is_against_the_full(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", 256, seed=1)
    full = backup(repo, src)
    rewrite_pages(src / "db.edb", [1], version=2)
    backup(repo, src, backup_type="incremental")
    rewrite_pages(src / "db.edb", [2], version=2)
    diff = backup(repo, src, backup_type="differential")
    entry = by_path(diff, "db.edb")
    assert diff["backup_type"] == "differential" and diff["base"] == full["id"]
    assert entry["changed_blocks"] == 2 and entry["chain"]["depth"] == 1
    assert restored(repo, diff["id"], tmp_path) == tree_digest(src)


def test_half_the_blocks_changed_starts_a_new_chain(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", 200, seed=1)
    backup(repo, src)
    rewrite_pages(src / "db.edb", list(range(100)), version=2)
    m = backup(repo, src)
    entry = by_path(m, "db.edb")
    assert entry["delta"] == "full" and "50% of blocks changed" in entry["reason"]
    assert entry["chain"]["full"] == m["id"]
    assert restored(repo, m["id"], tmp_path) == tree_digest(src)


def test_chain_reaching_max_deltas_becomes_a_full(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", 130, seed=1)
    types = []
    for v in range(5):
        rewrite_pages(src / "db.edb", [v], version=v + 2)
        types.append(backup(repo, src, max_deltas=2)["backup_type"])
    assert types == ["full", "incremental", "incremental", "full", "incremental"]


def test_weekly_differential_day_is_honoured(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", 130, seed=1)
    thursday = datetime(2026, 11, 19, 21, 0, tzinfo=UTC)
    friday = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    kw = {"differential": "weekly", "differential_day": "fri"}
    backup(repo, src, at=thursday.replace(hour=1), **kw)
    assert backup(repo, src, at=thursday, **kw)["backup_type"] == "incremental"
    assert backup(repo, src, at=friday, **kw)["backup_type"] == "differential"
    assert backup(repo, src, at=friday.replace(hour=22), **kw)["backup_type"] == "incremental"


def test_incremental_without_a_full_is_stored_as_full_and_says_why(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"x")
    m = backup(repo, src, backup_type="incremental")
    assert m["backup_type"] == "full" and "incremental requested" in m["reason"]


def test_unchanged_forced_full_adds_almost_nothing(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", 400, seed=1)
    (src / "x.bkf").write_bytes(random_bytes(2 << 20, 5))
    first = backup(repo, src)
    again = backup(repo, src, backup_type="full")
    assert again["stored"] < first["stored"] / 50


def test_compression_levels_apply_per_run(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "t.txt").write_bytes(b"".join(b"row %d some text\n" % i for i in range(100000)))
    fast = backup(repo, src, compression="fast")
    assert fast["compression"] == "fast" and fast["stored"] < fast["size"] / 3
    (src / "t.txt").write_bytes(b"".join(b"line %d other text\n" % i for i in range(100000)))
    normal = backup(repo, src, compression="normal")
    assert normal["compression"] == "normal"
    assert restored(repo, normal["id"], tmp_path) == tree_digest(src)


def test_ese_header_gives_the_page_size() -> None:
    head = bytearray(4096)
    head[4:8] = b"\xef\xcd\xab\x89"
    struct.pack_into("<I", head, 236, 32768)
    assert ese_page_size(bytes(head)) == 32768
    assert auto_block_size(300 << 20, bytes(head)) == 32768
    assert auto_block_size(300 << 20, b"") == 8192
    assert auto_block_size(64 << 30, b"") > 8192  # huge files keep the map bounded


def test_encryption_setting_is_fixed_at_set_creation(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"x")
    backup(repo, src, encryption="aes-256-gcm")
    with pytest.raises(PolicyError):
        backup(repo, src, encryption="none")


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "C:\\x", "./../x"])
def test_restore_refuses_paths_escaping_the_target(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ParameterError):
        safe_target(tmp_path, bad)


def test_restore_refuses_a_manifest_with_an_escaping_path(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"x")
    m = backup(repo, src)
    m["files"][0]["path"] = "../escaped"
    m["id"] = m["id"][:-1] + "f"
    repo.write_manifest(m)
    with pytest.raises(ParameterError):
        restore_version(repo, m["id"], tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_unchanged_size_and_old_mtime_skips_reading_unless_rehash(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    f = src / "config.xml"
    f.write_bytes(b"<a>1</a>")
    old = (1_700_000_000, 1_700_000_000)
    os.utime(f, old)
    backup(repo, src)
    f.write_bytes(b"<a>2</a>")  # same size, mtime put back: indistinguishable by metadata
    os.utime(f, old)
    skipped = backup(repo, src)
    assert by_path(skipped, "config.xml")["unchanged"] is True
    assert restored(repo, skipped["id"], tmp_path)["config.xml"] == b"<a>1</a>"
    reread = backup(repo, src, rehash=True)
    assert restored(repo, reread["id"], tmp_path)["config.xml"] == b"<a>2</a>"


def test_recently_modified_file_is_always_read(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    f = src / "hot.txt"
    f.write_bytes(b"one")
    backup(repo, src)
    st = f.stat()
    f.write_bytes(b"two")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, but racy: too recent
    m = backup(repo, src)
    assert "unchanged" not in by_path(m, "hot.txt")
    assert restored(repo, m["id"], tmp_path)["hot.txt"] == b"two"


def test_history_reads_back_to_the_last_full_only(repo: Repository, tmp_path: Path) -> None:
    from dr.store.backup import set_history

    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"x")
    kinds = ["full", "incremental", "full", "incremental", "incremental"]
    ids = [backup(repo, src, backup_type=k)["id"] for k in kinds]
    run_backup(repo, BackupOptions("other", src))  # another set, newest of all
    assert [m["id"] for m in set_history(repo, "s")] == ids[2:]


def test_map_of_a_region_change_dedupes_against_the_previous_map(
    repo_v1: Repository, tmp_path: Path
) -> None:
    """Format 1 (a complete map with every version; format 2 patches: test_map_patch)."""
    repo = repo_v1
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", 12000, seed=1, page=4096)  # a map of about a dozen pieces
    first = backup(repo, src, block_size=4096)
    rewrite_pages(src / "db.edb", list(range(0, 12000, 400)), version=2, page=4096)
    scattered = backup(repo, src, block_size=4096)
    rewrite_pages(src / "db.edb", list(range(6000, 6030)), version=3, page=4096)
    region = backup(repo, src, block_size=4096)
    assert by_path(region, "db.edb")["changed_blocks"] == 30
    assert by_path(scattered, "db.edb")["changed_blocks"] == 30

    def new_pieces(m: dict, before: dict) -> int:  # map pieces not in the previous map
        old = {h for h, _ in by_path(before, "db.edb")["map"]}
        return sum(1 for h, _ in by_path(m, "db.edb")["map"] if h not in old)

    # where the pieces fall depends on the repository's chunker key; the proportions do not:
    # changes spread over the file rewrite more pieces than one region does, and a region
    # change always reuses part of the previous map
    pieces = len(by_path(region, "db.edb")["map"])
    spread, local = new_pieces(scattered, first), new_pieces(region, scattered)
    assert local < spread and local < pieces, (local, spread, pieces)
    assert len(by_path(region, "db.edb")["map"]) > 3  # the map is stored in pieces
    assert restored(repo, region["id"], tmp_path) == tree_digest(src)
