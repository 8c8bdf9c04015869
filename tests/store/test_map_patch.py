"""Format 2: page-sized blocks at any file size, and a delta's map stored as a patch over
its checkpoint's complete map (compacted into a complete map again past 1/8 of the blocks).
Format-1 repositories keep storing complete maps and bounded block sizes."""

from __future__ import annotations

import json
import random
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dr.errors import StoreError
from dr.store.blockmap import (
    NO_SUPER,
    PATCH_LIMIT,
    BlockMap,
    MapFormatError,
    MapPatch,
    apply_patch,
    load_map,
    make_patch,
)
from dr.store.chunking import auto_block_size
from dr.store.format import CONFIG_NAME
from dr.store.repository import Repository, read_config
from dr.store.verify import verify

from .conftest import page_file, rewrite_pages, tree_digest
from .test_roundtrip import backup, by_path, restored

PAGES = 4000


def _map(n: int, supers: int, seed: int) -> BlockMap:
    rnd = random.Random(seed)
    return BlockMap(
        8192,
        n * 8192,
        rnd.randbytes(16 * n),
        [rnd.randbytes(32) for _ in range(supers)],
        array("I", (rnd.randrange(supers) for _ in range(n))),
        array("I", (rnd.randrange(1 << 20) for _ in range(n))),
    )


def _same(a: BlockMap, b: BlockMap) -> bool:
    return (a.block_size, a.file_size, a.hashes, a.supers, list(a.super_of), list(a.offset_in)) == (
        b.block_size, b.file_size, b.hashes, b.supers, list(b.super_of), list(b.offset_in),
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    grow=st.integers(-50, 50),
    seed=st.integers(0, 10**6),
    share=st.floats(0, 1),
)
def test_a_patch_turns_its_checkpoint_into_the_new_map(
    n: int, grow: int, seed: int, share: float
) -> None:
    """Any new map (grown, shrunk, blocks moved to new or blanked super-blocks) comes back
    exactly from the checkpoint and the patch of the blocks that differ, through bytes."""
    rnd = random.Random(seed)
    checkpoint = _map(n, 5, seed)
    m = max(1, n + grow)
    new = _map(m, 5, seed)
    new.supers = [NO_SUPER if rnd.random() < 0.3 else s for s in checkpoint.supers]
    new.supers += [rnd.randbytes(32) for _ in range(rnd.randrange(3))]
    used = [i for i, s in enumerate(new.supers) if s != NO_SUPER] or [len(new.supers)]
    if used == [len(new.supers)]:
        new.supers.append(rnd.randbytes(32))
    new.super_of = array("I", (rnd.choice(used) for _ in range(m)))
    keep = [i for i in range(min(n, m)) if rnd.random() > share]
    for i in keep:  # unchanged since the checkpoint
        new.hashes = new.hashes[: 16 * i] + checkpoint.block_hash(i) + new.hashes[16 * (i + 1) :]
        new.super_of[i], new.offset_in[i] = checkpoint.super_of[i], checkpoint.offset_in[i]
    changed = sorted(set(range(m)) - set(keep))
    patch = MapPatch.decode(make_patch(new, changed, len(checkpoint.supers)).encode())
    rebuilt = apply_patch(checkpoint, patch)
    assert _same(rebuilt, new)
    assert list(rebuilt.patched or []) == changed


def test_a_patch_that_leaves_a_grown_block_out_is_refused() -> None:
    checkpoint = _map(10, 2, 1)
    new = _map(12, 2, 2)
    new.supers = list(checkpoint.supers)
    patch = make_patch(new, [3, 10], len(checkpoint.supers))  # block 11 is nowhere
    with pytest.raises(MapFormatError, match="does not cover"):
        apply_patch(checkpoint, MapPatch.decode(patch.encode()))
    with pytest.raises(MapFormatError):
        MapPatch.decode(patch.encode()[:-1])


def test_the_block_is_the_page_at_any_size_in_format_2() -> None:
    head = bytearray(8192)
    assert auto_block_size(2 << 40, b"", bounded=False) == 8192  # 2 TiB of 8 KiB pages
    assert auto_block_size(2 << 40, bytes(head), bounded=False) == 8192
    assert auto_block_size(64 << 30, b"") > 8192  # format 1: doubled, as before


def _rounds(repo: Repository, src: Path, rounds: int, share: float) -> list[dict]:
    """A full, then ``rounds`` deltas each rewriting ``share`` of the pages at random."""
    rnd = random.Random(7)
    page_file(src / "db.edb", PAGES, seed=1)
    made = [backup(repo, src)]
    for r in range(rounds):
        rewrite_pages(src / "db.edb", rnd.sample(range(PAGES), int(PAGES * share)), version=r + 2)
        made.append(backup(repo, src, backup_type="incremental"))
    return made


def test_deltas_store_patches_over_one_checkpoint_and_restore_exactly(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    made = _rounds(repo, src, 3, 0.01)
    entries = [by_path(m, "db.edb") for m in made]
    assert entries[0].get("map_patch") is None
    for e in entries[1:]:  # each delta names the full's map and adds one patch
        assert e["delta"] == "incremental" and e["map"] == entries[0]["map"]
        assert e["map_patch"] and e["block_size"] == 8192
    assert restored(repo, made[-1]["id"], tmp_path) == tree_digest(src)
    maps = [load_map(repo.read_blob, e) for e in entries]
    # the patch is cumulative: the last one holds every block changed since the full
    since = set(maps[1].patched or ()) | set(maps[2].patched or ())
    assert since <= set(maps[3].patched or ()) and len(since) >= 2 * PAGES // 100 - 3
    assert len(maps[3].patched or ()) >= 3 * PAGES // 100 - 5
    assert verify(repo, read_data=True).ok


def test_a_patch_past_an_eighth_of_the_blocks_is_compacted_into_a_complete_map(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    made = _rounds(repo, src, 4, 0.05)  # 5 % a round: the third round's patch is past 1/8
    entries = [by_path(m, "db.edb") for m in made]
    patched = [bool(e.get("map_patch")) for e in entries]
    assert patched[:3] == [False, True, True] and False in patched[3:], patched
    again = patched.index(False, 1)
    assert entries[again]["delta"] == "incremental"  # still a delta: only its map is complete
    assert entries[again]["map"] != entries[0]["map"]
    for e in entries[again + 1 :]:  # later patches build on the new checkpoint
        assert e["map"] == entries[again]["map"]
    for m in made:
        assert load_map(repo.read_blob, by_path(m, "db.edb")).blocks == PAGES
    assert restored(repo, made[-1]["id"], tmp_path) == tree_digest(src)
    last = load_map(repo.read_blob, entries[-1])
    assert last.patched is None or len(last.patched) * PATCH_LIMIT <= last.blocks


def test_a_file_that_grows_and_shrinks_between_patches_restores_exactly(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", PAGES, seed=1)
    backup(repo, src)
    with open(src / "db.edb", "ab") as fh:  # grown by 30 pages
        fh.write(random.Random(3).randbytes(30 * 8192))
    grown = backup(repo, src, backup_type="incremental")
    with open(src / "db.edb", "r+b") as fh:  # then cut 100 pages short
        fh.truncate((PAGES - 100) * 8192 + 100)
    shrunk = backup(repo, src, backup_type="incremental")
    assert by_path(grown, "db.edb").get("map_patch") and by_path(shrunk, "db.edb").get("map_patch")
    assert restored(repo, shrunk["id"], tmp_path) == tree_digest(src)


def test_a_format_1_repository_keeps_complete_maps(repo_v1: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    made = _rounds(repo_v1, src, 2, 0.01)
    assert read_config(repo_v1.root)["version"] == 1
    for m in made:
        assert by_path(m, "db.edb").get("map_patch") is None
    assert restored(repo_v1, made[-1]["id"], tmp_path) == tree_digest(src)


def test_a_repository_newer_than_this_dr_is_refused_with_what_to_do(repo: Repository) -> None:
    path = repo.root / CONFIG_NAME
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "version": 99}))
    with pytest.raises(StoreError, match="format 99 is newer than this dr") as caught:
        read_config(repo.root)
    assert "dr release" in (caught.value.hint or "")


def test_prune_of_an_older_chain_keeps_every_checkpoint_and_patch_the_kept_chain_reads(
    repo: Repository, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from dr.store.backup import BackupOptions, run_backup
    from dr.store.prune import prune

    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", PAGES, seed=1)
    t0, ids = datetime(2026, 1, 1, tzinfo=UTC), []
    for v in range(6):  # two chains: a full and two patched deltas each
        rewrite_pages(src / "db.edb", list(range(v * 13, PAGES, 97)), version=v + 2)
        kind = "full" if v % 3 == 0 else "incremental"
        opts = BackupOptions("s", src, backup_type=kind, at=t0 + timedelta(v))
        ids.append(run_backup(repo, opts)["id"])
    report = prune(repo, keep_last=1, keep_days=None, at=t0 + timedelta(10))
    assert sorted(report.expired) == sorted(ids[:3]) and report.bytes_freed > 0
    assert by_path(repo.read_manifest(ids[5]), "db.edb").get("map_patch")
    assert verify(repo, read_data=True).ok
    assert restored(repo, ids[5], tmp_path) == tree_digest(src)
