"""The index: which pack holds which blob, kept in encrypted index files.

Each backup writes one index file for the packs it wrote, after those packs are durable and
before its manifest; prune writes one new index file that supersedes the ones it removes.
An index file's name is the SHA-256 of its bytes. Its plaintext is, per pack,
``pack name (32 raw bytes) | count (4, LE) | count x pack-header entry``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dr.store.crypto import AuthenticationFailed, MasterKeys, open_object, seal_object
from dr.store.format import INDEX_DIR, write_atomic
from dr.store.packs import HEADER_ENTRY, BlobEntry

PACK_HEAD = struct.Struct("<32sI")


@dataclass
class Index:
    """Blob id -> location, with the index files it was read from."""

    blobs: dict[bytes, BlobEntry] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    damaged_files: dict[str, str] = field(default_factory=dict)

    def add(self, entries: Iterable[BlobEntry]) -> None:
        for entry in entries:
            self.blobs.setdefault(entry.blob_id, entry)

    def packs(self) -> dict[str, list[BlobEntry]]:
        by_pack: dict[str, list[BlobEntry]] = {}
        for entry in self.blobs.values():
            by_pack.setdefault(entry.pack, []).append(entry)
        return by_pack


def encode(entries: Iterable[BlobEntry]) -> bytes:
    by_pack: dict[str, list[BlobEntry]] = {}
    for entry in entries:
        by_pack.setdefault(entry.pack, []).append(entry)
    out = bytearray()
    for pack in sorted(by_pack):
        rows = sorted(by_pack[pack], key=lambda e: e.offset)
        out += PACK_HEAD.pack(bytes.fromhex(pack), len(rows))
        for e in rows:
            out += HEADER_ENTRY.pack(e.blob_id, e.blob_type, e.offset, e.length, e.plain_len)
    return bytes(out)


def decode(plain: bytes) -> list[BlobEntry]:
    entries: list[BlobEntry] = []
    pos = 0
    while pos < len(plain):
        raw_name, count = PACK_HEAD.unpack_from(plain, pos)
        pos += PACK_HEAD.size
        name = raw_name.hex()
        for i in range(count):
            row = HEADER_ENTRY.unpack_from(plain, pos + i * HEADER_ENTRY.size)
            entries.append(BlobEntry(row[0], row[1], name, row[2], row[3], row[4]))
        pos += count * HEADER_ENTRY.size
    return entries


def write_index(root: Path, keys: MasterKeys, entries: Iterable[BlobEntry]) -> str:
    """Seal and write one index file durably; return its name."""
    sealed = seal_object(keys, "index", b"", encode(entries))
    name = hashlib.sha256(sealed).hexdigest()
    write_atomic(root / INDEX_DIR / name, sealed)
    return name


def index_names(root: Path) -> list[str]:
    folder = root / INDEX_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def load_index(root: Path, keys: MasterKeys) -> Index:
    """Read every index file; a damaged one is recorded, not fatal (verify reports it)."""
    index = Index()
    for name in index_names(root):
        try:
            sealed = (root / INDEX_DIR / name).read_bytes()
            if hashlib.sha256(sealed).hexdigest() != name:
                raise AuthenticationFailed("content does not match its name")
            index.add(decode(open_object(keys, "index", b"", sealed)))
            index.files.append(name)
        except (AuthenticationFailed, struct.error, ValueError) as exc:
            index.damaged_files[name] = str(exc)
    return index
