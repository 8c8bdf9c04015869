"""On-disk constants of the repository and the one durable-write primitive everything uses.

Every file the repository gains is written the same way: a temporary name in the final
directory, ``fsync`` of the file, ``rename`` to the final name, ``fsync`` of the directory.
A reader therefore sees either the old state or the whole new file, never a torn one
(docs/repository-format.md, "Crash safety").

``DR_STORE_CRASH_AT=N`` makes the process kill itself with SIGKILL at the N-th durability
point (counted from 1). The crash tests use it to stop a backup or a prune at every
interesting place, reproducibly.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT_VERSION = 2
PATCHED_MAPS = 2  # the format from which a delta's block map is a patch (blockmap.MapPatch)
CONFIG_NAME = "config"
DATA_DIR = "data"
INDEX_DIR = "index"
MANIFEST_DIR = "manifests"
LOCK_DIR = "locks"
TMP_SUFFIX = ".tmp"

PACK_MAGIC = b"DRPACK01"
PACK_END_MAGIC = b"DRPKEND1"
PACK_SALT_LEN = 16
NONCE_LEN = 12
TAG_LEN = 16
DEFAULT_PACK_SIZE = 16 << 20

# blob types, as stored in pack headers and index files
BLOB_CHUNK = 0  # a content-defined chunk (or a whole small file)
BLOB_SUPER = 1  # a super-block: consecutive changed blocks of a block-mode file
BLOB_MAP = 2  # a piece of a file version's complete block map, or of its map patch

# zstd levels behind the set's compression setting (A4)
COMPRESSION_LEVELS = {"fast": 1, "normal": 3}

CRASH_ENV = "DR_STORE_CRASH_AT"
_crash_counter = 0


def durable_point(label: str = "") -> None:
    """Mark a place where a crash must leave the repository usable (see module doc)."""
    global _crash_counter
    target = os.environ.get(CRASH_ENV)
    if not target:
        return
    _crash_counter += 1
    if _crash_counter == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either nothing or the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    durable_point(f"before rename {path.name}")
    os.replace(tmp, path)
    fsync_dir(path.parent)
    durable_point(f"after rename {path.name}")


def remove_durably(path: Path) -> None:
    """Delete one file and make the deletion durable (missing is fine: prune may resume)."""
    durable_point(f"before unlink {path.name}")
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def new_version_id(at: datetime) -> str:
    """Readable, sortable by time, unique: ``20261122T104200Z-3fa1c2``."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def dumps(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
