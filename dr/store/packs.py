"""Pack files: many encrypted blobs in one file of about 16 MiB, with a header at the end.

Layout (docs/repository-format.md, "Packs")::

    "DRPACK01" | salt(16) | record 1 | ... | record N | header record | len(4, LE) | "DRPKEND1"
    record   = nonce(12, counter) | AES-256-GCM(ciphertext + tag)
    header   = N x (blob id 32 | type 1 | offset 8 | length 4 | plain length 4)

The header sits at the end so a pack is written as a stream, and the index can be rebuilt
from packs alone. A pack's file name is the SHA-256 of its bytes, so ``sha256sum`` checks it
without the key.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dr.store.crypto import AuthenticationFailed, MasterKeys, aad, counter_nonce
from dr.store.format import (
    DATA_DIR,
    NONCE_LEN,
    PACK_END_MAGIC,
    PACK_MAGIC,
    PACK_SALT_LEN,
    write_atomic,
)

HEADER_ENTRY = struct.Struct("<32sBQII")
TRAILER = struct.Struct("<I8s")
PREAMBLE_LEN = len(PACK_MAGIC) + PACK_SALT_LEN
HEADER_NONCE = 0


@dataclass(frozen=True)
class BlobEntry:
    """Where one blob lives: its pack, the record's offset and length, its plaintext size."""

    blob_id: bytes
    blob_type: int
    pack: str
    offset: int
    length: int
    plain_len: int


def pack_path(root: Path, name: str) -> Path:
    return root / DATA_DIR / name[:2] / name


class PackWriter:
    """Collects sealed blobs; :meth:`finish` writes the pack durably and returns its entries."""

    def __init__(self, keys: MasterKeys) -> None:
        self.keys = keys
        self.salt = os.urandom(PACK_SALT_LEN)
        self.cipher = keys.object_cipher(self.salt, "pack")
        self.parts: list[bytes] = [PACK_MAGIC, self.salt]
        self.size = PREAMBLE_LEN
        self.entries: list[tuple[bytes, int, int, int, int]] = []

    def add(self, blob_id: bytes, blob_type: int, packed: bytes, plain_len: int) -> int:
        """Seal ``packed`` (codec byte + payload) into the pack; return the record's size."""
        nonce = counter_nonce(len(self.entries) + 1)
        record = nonce + self.cipher.encrypt(nonce, packed, aad("blob", blob_id))
        self.entries.append((blob_id, blob_type, self.size, len(record), plain_len))
        self.parts.append(record)
        self.size += len(record)
        return len(record)

    def __len__(self) -> int:
        return len(self.entries)

    def finish(self, root: Path) -> list[BlobEntry]:
        header = b"".join(HEADER_ENTRY.pack(*e) for e in self.entries)
        nonce = counter_nonce(HEADER_NONCE)
        record = nonce + self.cipher.encrypt(nonce, header, aad("pack-header", b""))
        self.parts += [record, TRAILER.pack(len(record), PACK_END_MAGIC)]
        data = b"".join(self.parts)
        self.parts = []  # the joined copy is all that is written: one pack in memory, not two
        name = hashlib.sha256(data).hexdigest()
        write_atomic(pack_path(root, name), data)
        return [BlobEntry(e[0], e[1], name, e[2], e[3], e[4]) for e in self.entries]


class PackReader:
    """Reads blobs of one pack; keeps the pack's cipher so many blobs cost one key derivation."""

    def __init__(self, keys: MasterKeys, path: Path) -> None:
        self.path = path
        self.fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        preamble = self.fh.read(PREAMBLE_LEN)
        if len(preamble) != PREAMBLE_LEN or preamble[: len(PACK_MAGIC)] != PACK_MAGIC:
            self.fh.close()
            raise AuthenticationFailed("not a pack (bad magic)")
        self.cipher = keys.object_cipher(preamble[len(PACK_MAGIC) :], "pack")

    def read_record(self, entry: BlobEntry) -> bytes:
        """The decrypted record (codec byte + payload) of one blob (safe across threads)."""
        return self.open_record(entry, os.pread(self.fh.fileno(), entry.length, entry.offset))

    def open_record(self, entry: BlobEntry, record: bytes) -> bytes:
        """Decrypt a record already read from this pack (``record``: its bytes)."""
        if len(record) != entry.length:
            raise AuthenticationFailed("pack truncated")
        try:
            return self.cipher.decrypt(
                record[:NONCE_LEN], record[NONCE_LEN:], aad("blob", entry.blob_id)
            )
        except Exception as exc:  # InvalidTag, or a malformed record
            raise AuthenticationFailed("blob does not authenticate") from exc

    def header(self) -> list[BlobEntry]:
        """The pack's own list of blobs (used to rebuild the index)."""
        size = os.fstat(self.fh.fileno()).st_size
        if size < PREAMBLE_LEN + TRAILER.size:
            raise AuthenticationFailed("pack truncated")
        self.fh.seek(size - TRAILER.size)
        length, magic = TRAILER.unpack(self.fh.read(TRAILER.size))
        if magic != PACK_END_MAGIC or length > size - PREAMBLE_LEN - TRAILER.size:
            raise AuthenticationFailed("pack truncated (no trailer)")
        self.fh.seek(size - TRAILER.size - length)
        record = self.fh.read(length)
        try:
            plain = self.cipher.decrypt(
                record[:NONCE_LEN], record[NONCE_LEN:], aad("pack-header", b"")
            )
        except Exception as exc:
            raise AuthenticationFailed("pack header does not authenticate") from exc
        return list(_entries(plain, self.path.name))

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> PackReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _entries(plain: bytes, name: str) -> Iterator[BlobEntry]:
    for blob_id, blob_type, offset, length, plain_len in HEADER_ENTRY.iter_unpack(plain):
        yield BlobEntry(blob_id, blob_type, name, offset, length, plain_len)


def list_packs(root: Path) -> dict[str, Path]:
    """Every finished pack file in the repository, by name (temporary files excluded)."""
    found: dict[str, Path] = {}
    data = root / DATA_DIR
    if not data.is_dir():
        return found
    for sub in sorted(data.iterdir()):
        if sub.is_dir():
            for path in sub.iterdir():
                if not path.name.startswith("."):
                    found[path.name] = path
    return found
