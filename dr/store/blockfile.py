"""Block-mode files (databases, images): the in-file delta of A5.

A chain starts with a full: every block stored, in 1 MiB super-blocks at fixed places (so
a full of an unchanged file dedupes completely). A delta hashes every block, compares the
hashes with the base version's map and stores only the changed blocks, grouped into
super-blocks of at most 256 KiB; the new map takes every other entry from the base map,
so each version's map is complete and a restore reads one map whatever the chain length.
When ``max_changed_percent`` of the blocks changed, the file starts a new chain instead.

In a format-2 repository blocks are the database's page at any size (format 1 doubled
them for files past 4 GiB to bound the map), and a delta stores its map as a patch over
its checkpoint's complete map: the entries changed since, not a whole new map (see
``dr.store.blockmap``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from array import array
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dr.store.blockmap import HASH_LEN, NO_SUPER, PATCH_LIMIT, BlockMap, make_patch, map_chunks
from dr.store.chains import file_delta_kind
from dr.store.chunking import auto_block_size
from dr.store.format import BLOB_MAP, BLOB_SUPER, PATCHED_MAPS
from dr.store.lock import refresh

if TYPE_CHECKING:
    from dr.store.backup import BackupOptions, _Context

READ_SIZE = 8 << 20
SUPER_FULL = 1 << 20  # a full groups blocks into 1 MiB super-blocks
SUPER_DELTA = 256 << 10  # changed blocks are grouped up to 256 KiB


def store_block_file(
    ctx: _Context, path: Path, rel: str, size: int, head: bytes, base: dict[str, Any] | None
) -> dict[str, Any]:
    block_size = _block_size(ctx.opts, size, head, base, _format(ctx) >= PATCHED_MAPS)
    kind, reason, base_map = file_delta_kind(ctx, base, block_size)
    changed_idx: list[int] = []
    if base_map is None:
        new_map, sha = full_pass(ctx, path, rel, block_size)
        changed = new_map.blocks
    else:
        hashes, sha = hash_pass(ctx, path, block_size)
        changed_idx = changed_blocks(hashes, base_map)
        total = max(1, len(hashes) // HASH_LEN)
        if 100.0 * len(changed_idx) / total >= ctx.opts.max_changed_percent:
            kind, reason = "full", f"{100 * len(changed_idx) // total}% of blocks changed"
            new_map, sha = full_pass(ctx, path, rel, block_size)
            changed = new_map.blocks
        else:
            new_map = delta_pass(ctx, path, rel, size, block_size, hashes, base_map, changed_idx)
            changed = len(changed_idx)
    patch = _patch(ctx, base_map, new_map, changed_idx) if kind != "full" else None
    if patch is None:
        map_ref, patch_ref = store_map(ctx, new_map.encode(), rel), None
    else:
        map_ref, patch_ref = base["map"], store_map(ctx, patch, rel)  # type: ignore[index]
    refresh(ctx.lock_path)
    entry = _block_entry(ctx, path, rel, size, sha, kind, reason, base, new_map, map_ref, changed)
    if patch_ref is not None:
        entry["map_patch"] = patch_ref
    return entry


def _format(ctx: _Context) -> int:
    return int(ctx.repo.config.get("version", 1))


def _patch(
    ctx: _Context, base_map: BlockMap | None, new_map: BlockMap, changed: list[int]
) -> bytes | None:
    """The delta's map as a patch over its base's checkpoint (format 2), or None when a
    complete map is due: a format-1 repository, or a patch past 1/PATCH_LIMIT of the blocks."""
    if base_map is None or _format(ctx) < PATCHED_MAPS or base_map.checkpoint_supers is None:
        return None
    n = new_map.blocks
    since = sorted({i for i in (base_map.patched or ()) if i < n}.union(changed))
    if len(since) * PATCH_LIMIT > n:
        return None
    return make_patch(new_map, since, base_map.checkpoint_supers).encode()


def store_map(ctx: _Context, encoded: bytes, rel: str) -> list[list[Any]]:
    """Store an encoded map (or patch) as content-defined pieces; return [[blob id hex,
    length], ...]."""
    pieces = []
    for piece in map_chunks(encoded, ctx.repo.keys.chunker_seed):
        blob_id = ctx.repo.keys.blob_id(piece)
        ctx.sink.put(blob_id, BLOB_MAP, piece, rel)
        pieces.append([blob_id.hex(), len(piece)])
    return pieces


def _block_entry(
    ctx: _Context,
    path: Path,
    rel: str,
    size: int,
    sha: str,
    kind: str,
    reason: str | None,
    base: dict[str, Any] | None,
    new_map: BlockMap,
    map_ref: list[list[Any]],
    changed: int,
) -> dict[str, Any]:
    full = kind == "full"
    chain = {
        "full": ctx.version_id if full else base["chain"]["full"],  # type: ignore[index]
        "depth": 0 if full else base["chain"]["depth"] + 1,  # type: ignore[index]
        "base": None if full else base["version"],  # type: ignore[index]
    }
    return {
        "path": rel,
        "size": size,
        "sha256": sha,
        "mode": "block",
        "delta": kind,
        "reason": reason,
        "block_size": new_map.block_size,
        "blocks": new_map.blocks,
        "changed_blocks": changed,
        "map": map_ref,
        "chain": chain,
        "stored": 0,  # filled in by build_manifest once the blobs are written
    }


def _block_size(
    opts: BackupOptions, size: int, head: bytes, base: dict[str, Any] | None, paged: bool
) -> int:
    """Fixed by the set, else kept from the running chain, else chosen from the file: the
    page size at any file size (``paged``, format 2), else doubled for huge files."""
    if isinstance(opts.block_size, int):
        return opts.block_size
    if base is not None and base.get("mode") == "block":
        return int(base["block_size"])
    return auto_block_size(size, head, bounded=not paged)


class _StreamSha256:
    """SHA-256 of a file, computed on a second thread while the caller hashes its blocks.

    hashlib releases the GIL on large buffers, so the whole-file digest costs no wall time
    on a second core. One update runs at a time, in order.
    """

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.last: Future[None] | None = None

    def update(self, data: bytes | memoryview) -> None:
        if self.last is not None:
            self.last.result()
        self.last = self.pool.submit(self.sha.update, data)

    def hexdigest(self) -> str:
        if self.last is not None:
            self.last.result()
        self.pool.shutdown()
        return self.sha.hexdigest()


def _iter_blocks(path: Path, block_size: int, read_size: int) -> Iterator[bytes]:
    read_size -= read_size % block_size
    with open(path, "rb") as fh:
        while buf := fh.read(read_size):
            yield buf


def _hash_blocks(id_key: bytes, buf: bytes, block_size: int) -> bytes:
    view = memoryview(buf)
    return b"".join(
        hmac.digest(id_key, view[o : o + block_size], "sha256")[:HASH_LEN]
        for o in range(0, len(buf), block_size)
    )


def full_pass(ctx: _Context, path: Path, rel: str, block_size: int) -> tuple[BlockMap, str]:
    """Store every block, in 1 MiB super-blocks at fixed places (so unchanged fulls dedupe)."""
    sha, hashes, supers = _StreamSha256(), bytearray(), []
    super_of, offset_in = array("I"), array("I")
    size = 0
    per_super = max(block_size, SUPER_FULL - SUPER_FULL % block_size)
    for buf in _iter_blocks(path, block_size, per_super):
        sha.update(buf)
        hashes += _hash_blocks(ctx.repo.keys.id_key, buf, block_size)
        count = (len(buf) + block_size - 1) // block_size
        super_of.extend([len(supers)] * count)
        offset_in.extend(range(0, len(buf), block_size))
        blob_id = ctx.repo.keys.blob_id(buf)
        ctx.sink.put(blob_id, BLOB_SUPER, buf, rel)
        supers.append(blob_id)
        size += len(buf)
        ctx.progress(len(buf))
    return BlockMap(block_size, size, bytes(hashes), supers, super_of, offset_in), sha.hexdigest()


def hash_pass(ctx: _Context, path: Path, block_size: int) -> tuple[bytes, str]:
    sha, hashes = _StreamSha256(), bytearray()
    for buf in _iter_blocks(path, block_size, READ_SIZE):
        sha.update(buf)
        hashes += _hash_blocks(ctx.repo.keys.id_key, buf, block_size)
        ctx.progress(len(buf))
    return bytes(hashes), sha.hexdigest()


def changed_blocks(hashes: bytes, base: BlockMap) -> list[int]:
    """Blocks whose hash differs from the base map's (or that the base does not have)."""
    n = len(hashes) // HASH_LEN
    old = base.hashes
    return [
        i
        for i in range(n)
        if hashes[i * HASH_LEN : (i + 1) * HASH_LEN] != old[i * HASH_LEN : (i + 1) * HASH_LEN]
    ]


def _runs(changed: list[int], blocks_per_super: int) -> Iterator[list[int]]:
    """Group changed block numbers into super-blocks of at most ``blocks_per_super``."""
    group: list[int] = []
    for i in changed:
        if len(group) >= blocks_per_super:
            yield group
            group = []
        group.append(i)
    if group:
        yield group


def delta_pass(
    ctx: _Context,
    path: Path,
    rel: str,
    size: int,
    block_size: int,
    hashes: bytes,
    base: BlockMap,
    changed: list[int],
) -> BlockMap:
    """Store the changed blocks; the new map takes every other entry from the base map."""
    n = len(hashes) // HASH_LEN
    ref = [base.supers[base.super_of[i]] for i in range(min(n, base.blocks))]
    off = list(base.offset_in[: min(n, base.blocks)])
    ref += [b""] * (n - len(ref))
    off += [0] * (n - len(off))
    with open(path, "rb") as fh:
        for group in _runs(changed, max(1, SUPER_DELTA // block_size)):
            parts = [os.pread(fh.fileno(), block_size, i * block_size) for i in group]
            data = b"".join(parts)
            blob_id = ctx.repo.keys.blob_id(data)
            ctx.sink.put(blob_id, BLOB_SUPER, data, rel)
            pos = 0
            for i, part in zip(group, parts, strict=True):
                ref[i], off[i] = blob_id, pos
                pos += len(part)
    return _compact(block_size, size, hashes, ref, off, base)


def _compact(
    block_size: int, size: int, hashes: bytes, ref: list[bytes], off: list[int], base: BlockMap
) -> BlockMap:
    """Number super-blocks stably: the base's slots first (blanked when unused), then new."""
    supers = list(base.supers)
    numbers = {s: i for i, s in enumerate(supers) if s != NO_SUPER}
    for r in ref:
        if r not in numbers:
            numbers[r] = len(supers)
            supers.append(r)
    super_of = array("I", (numbers[r] for r in ref))
    used = set(super_of)
    supers = [s if i in used else NO_SUPER for i, s in enumerate(supers)]
    return BlockMap(block_size, size, hashes, supers, super_of, array("I", off))
