"""The block map of one version of a block-mode file: for every block, where it is stored.

Every version keeps a complete map, so a restore reads exactly one map whatever the chain
length. Layout (little-endian), stored as a blob of type "map" (compressed, encrypted)::

    "DRMAP001" | block size (4) | file size (8) | blocks n (4) | super-blocks r (4)
    r x super-block id (32)
    n x block hash (16)            keyed HMAC-SHA256 of the block, truncated
    n x super-block number (4)     index into the list above
    n x offset in super-block (4)

Columns instead of rows let zstd shrink the two integer columns to almost nothing (they
are runs of small steps); the hash column is what remains: 16 bytes a block.

Super-block numbers are stable along a chain: a delta keeps its base's list, appends the
super-blocks it adds and blanks (all-zero id) the ones no block uses any more. So a map
changes only where blocks changed, and the map itself is stored as content-defined
chunks (FastCDC, 16 KiB average): where a version changed a region of the file, only the
map chunks covering that region are new; the rest dedupe against the previous map.

Format 2 adds the **map patch** (:class:`MapPatch`): pages changed at random touch every
piece of a complete map (a 20 GiB database has 2.6 M blocks of 8 KiB, and 1 % of them
changed is about ten in every 16 KiB piece), so a delta's entry names the complete map of
its checkpoint (an earlier version's, shared) and one patch holding every entry that
changed since that checkpoint. A restore reads the checkpoint and one patch, whatever the
chain's depth; a delta whose patch would cover more than :data:`PATCH_LIMIT` of the
blocks stores a complete map again (the compaction)::

    "DRMAPP01" | block size (4) | file size (8) | blocks n (4) | super-blocks r (4)
    | checkpoint's super-blocks r0 (4) | blanked t (4) | entries k (4)
    (r - r0) x super-block id (32)  the slots after the checkpoint's (all-zero: blanked)
    t x slot number (4)             checkpoint slots no block uses any more
    k x block number (4)            ascending
    k x block hash (16) | k x super-block number (4) | k x offset in super-block (4)
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAGIC = b"DRMAP001"
HEAD = struct.Struct("<8sIQII")
HASH_LEN = 16
NO_SUPER = bytes(32)  # a blanked slot of the super-block list
MAP_CDC = {"avg": 16 << 10, "min": 4 << 10, "max": 64 << 10}
PATCH_MAGIC = b"DRMAPP01"
PATCH_HEAD = struct.Struct("<8sIQIIIII")
PATCH_LIMIT = 8  # a patch covers at most 1/8 of the blocks; past that, a complete map


class MapFormatError(ValueError):
    pass


@dataclass
class BlockMap:
    block_size: int
    file_size: int
    hashes: bytes  # n x 16
    supers: list[bytes]  # super-block ids
    super_of: array  # type: ignore[type-arg]  # 'I' per block
    offset_in: array  # type: ignore[type-arg]  # 'I' per block
    #: as read: the blocks its patch set since the checkpoint (None: a complete map), and
    #: how many super-block slots the checkpoint had
    patched: array | None = None  # type: ignore[type-arg]
    checkpoint_supers: int | None = None

    @property
    def blocks(self) -> int:
        return len(self.super_of)

    def block_hash(self, i: int) -> bytes:
        return self.hashes[i * HASH_LEN : (i + 1) * HASH_LEN]

    def block_len(self, i: int) -> int:
        return min(self.block_size, self.file_size - i * self.block_size)

    def encode(self) -> bytes:
        head = HEAD.pack(MAGIC, self.block_size, self.file_size, self.blocks, len(self.supers))
        return b"".join([head, *self.supers, self.hashes, _le(self.super_of), _le(self.offset_in)])

    @classmethod
    def decode(cls, data: bytes) -> BlockMap:
        if len(data) < HEAD.size:
            raise MapFormatError("block map too short")
        magic, block_size, file_size, n, r = HEAD.unpack_from(data)
        if magic != MAGIC or len(data) != HEAD.size + 32 * r + (HASH_LEN + 8) * n:
            raise MapFormatError("not a block map")
        pos = HEAD.size
        supers = [data[pos + 32 * i : pos + 32 * (i + 1)] for i in range(r)]
        pos += 32 * r
        hashes = data[pos : pos + HASH_LEN * n]
        pos += HASH_LEN * n
        super_of = _array(data[pos : pos + 4 * n])
        offset_in = _array(data[pos + 4 * n : pos + 8 * n])
        return cls(block_size, file_size, hashes, supers, super_of, offset_in)


@dataclass
class MapPatch:
    """What changed in a map since its checkpoint (complete map): see the module's text."""

    block_size: int
    file_size: int
    blocks: int
    base_supers: int  # r0: the checkpoint's slots
    tail: list[bytes]  # the slots after them
    blanked: array  # type: ignore[type-arg]  # checkpoint slots now unused
    index: array  # type: ignore[type-arg]  # ascending block numbers
    hashes: bytes
    super_of: array  # type: ignore[type-arg]
    offset_in: array  # type: ignore[type-arg]

    def encode(self) -> bytes:
        r = self.base_supers + len(self.tail)
        head = PATCH_HEAD.pack(PATCH_MAGIC, self.block_size, self.file_size, self.blocks, r,
                               self.base_supers, len(self.blanked), len(self.index))  # fmt: skip
        columns = [_le(self.blanked), _le(self.index), self.hashes]
        return b"".join([head, *self.tail, *columns, _le(self.super_of), _le(self.offset_in)])

    @classmethod
    def decode(cls, data: bytes) -> MapPatch:
        if len(data) < PATCH_HEAD.size:
            raise MapFormatError("block map patch too short")
        magic, block_size, file_size, n, r, r0, t, k = PATCH_HEAD.unpack_from(data)
        if (
            magic != PATCH_MAGIC
            or r < r0
            or len(data) != PATCH_HEAD.size + 32 * (r - r0) + 4 * t + (HASH_LEN + 12) * k
        ):
            raise MapFormatError("not a block map patch")
        pos = PATCH_HEAD.size
        tail = [data[pos + 32 * i : pos + 32 * (i + 1)] for i in range(r - r0)]
        pos += 32 * (r - r0)
        blanked = _array(data[pos : pos + 4 * t])
        pos += 4 * t
        index = _array(data[pos : pos + 4 * k])
        hashes = data[pos + 4 * k : pos + (4 + HASH_LEN) * k]
        pos += (4 + HASH_LEN) * k
        super_of = _array(data[pos : pos + 4 * k])
        offset_in = _array(data[pos + 4 * k : pos + 8 * k])
        return cls(block_size, file_size, n, r0, tail, blanked, index, hashes, super_of, offset_in)


def make_patch(new: BlockMap, since: list[int], base_supers: int) -> MapPatch:
    """The patch that turns the checkpoint (``base_supers`` slots) into ``new``: the entries
    of the blocks ``since`` (ascending; every block changed since the checkpoint, and every
    block past its end), the slots added after the checkpoint's and the ones blanked."""
    index = array("I", since)
    hashes = b"".join(new.hashes[i * HASH_LEN : (i + 1) * HASH_LEN] for i in since)
    blanked = array("I", (i for i in range(base_supers) if new.supers[i] == NO_SUPER))
    return MapPatch(new.block_size, new.file_size, new.blocks, base_supers,
                    new.supers[base_supers:], blanked, index, hashes,
                    array("I", (new.super_of[i] for i in since)),
                    array("I", (new.offset_in[i] for i in since)))  # fmt: skip


def apply_patch(checkpoint: BlockMap, patch: MapPatch) -> BlockMap:
    """The complete map: the checkpoint's entries, then the patch's over them."""
    n, width = patch.blocks, checkpoint.blocks
    if patch.block_size != checkpoint.block_size or patch.base_supers != len(checkpoint.supers):
        raise MapFormatError("block map patch does not fit its checkpoint")
    index = patch.index
    grown = sum(1 for i in index if i >= width)
    if (
        any(b >= a for a, b in zip(index[1:], index, strict=False))
        or (index and index[-1] >= n)
        or grown != max(0, n - width)
    ):
        raise MapFormatError("block map patch does not cover the file")
    hashes = bytearray(checkpoint.hashes[: n * HASH_LEN].ljust(n * HASH_LEN, b"\0"))
    super_of = array("I", checkpoint.super_of[:n]) + array("I", bytes(4 * max(0, n - width)))
    offset_in = array("I", checkpoint.offset_in[:n]) + array("I", bytes(4 * max(0, n - width)))
    for j, i in enumerate(index):
        hashes[i * HASH_LEN : (i + 1) * HASH_LEN] = patch.hashes[j * HASH_LEN : (j + 1) * HASH_LEN]
        super_of[i], offset_in[i] = patch.super_of[j], patch.offset_in[j]
    supers = list(checkpoint.supers)
    for slot in patch.blanked:
        if slot >= len(supers):
            raise MapFormatError("block map patch blanks a slot its checkpoint lacks")
        supers[slot] = NO_SUPER
    supers += patch.tail
    if super_of and max(super_of) >= len(supers):
        raise MapFormatError("block map patch names a super-block it does not list")
    return BlockMap(patch.block_size, patch.file_size, bytes(hashes), supers, super_of,
                    offset_in, patched=index, checkpoint_supers=patch.base_supers)  # fmt: skip


def used_supers(block_map: BlockMap) -> list[bytes]:
    """The super-blocks the map's blocks use (blanked slots left out)."""
    return [s for s in block_map.supers if s != NO_SUPER]


def map_chunks(data: bytes, seed: int) -> list[bytes]:
    """Cut an encoded map into content-defined pieces (each stored as one blob)."""
    import pyfastcdc

    if len(data) <= MAP_CDC["min"]:
        return [data]
    cdc = pyfastcdc.FastCDC(
        MAP_CDC["avg"], min_size=MAP_CDC["min"], max_size=MAP_CDC["max"], seed=seed
    )
    return [bytes(c.data) for c in cdc.cut_buf(data)]


def map_blob_ids(entry: dict[str, Any]) -> list[bytes]:
    """The blobs holding a file entry's map, in order: its (checkpoint's) complete map,
    then its patch when it has one."""
    return [bytes.fromhex(h) for h, _ in entry["map"] + (entry.get("map_patch") or [])]


def load_map(read_blob: Callable[[bytes], bytes], entry: dict[str, Any]) -> BlockMap:
    """Read and decode a file entry's map, its patch applied (MapFormatError if it does not
    fit together). A complete map comes back with ``checkpoint_supers`` set to its slots."""
    data = b"".join(read_blob(bytes.fromhex(h)) for h, _ in entry["map"])
    complete = BlockMap.decode(data)
    if not entry.get("map_patch"):
        complete.checkpoint_supers = len(complete.supers)
        return complete
    patch = b"".join(read_blob(bytes.fromhex(h)) for h, _ in entry["map_patch"])
    return apply_patch(complete, MapPatch.decode(patch))


def expected_blocks(file_size: int, block_size: int) -> int:
    return (file_size + block_size - 1) // block_size


def _le(values: array) -> bytes:  # type: ignore[type-arg]
    if array("I").itemsize != 4:  # pragma: no cover - every platform we support has 4
        raise MapFormatError("unsupported platform")
    copy = array("I", values)
    if struct.pack("=I", 1) != struct.pack("<I", 1):  # pragma: no cover - big-endian hosts
        copy.byteswap()
    return copy.tobytes()


def _array(raw: bytes) -> array:  # type: ignore[type-arg]
    values = array("I")
    values.frombytes(raw)
    if struct.pack("=I", 1) != struct.pack("<I", 1):  # pragma: no cover
        values.byteswap()
    return values
