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
    """The blobs holding a file entry's map, in order."""
    return [bytes.fromhex(h) for h, _ in entry["map"]]


def load_map(read_blob: Callable[[bytes], bytes], entry: dict[str, Any]) -> BlockMap:
    """Read and decode a file entry's map (MapFormatError if it does not fit together)."""
    data = b"".join(read_blob(blob_id) for blob_id in map_blob_ids(entry))
    return BlockMap.decode(data)


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
