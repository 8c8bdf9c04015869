"""Repository locks: shared for backup, restore and verify; exclusive for prune.

A lock is a file ``locks/<random>.json`` holding host, pid, time and whether it is exclusive,
created with O_EXCL. After creating its own, a process lists the others and backs off on a
conflict. A lock is stale — and removed automatically, with a note — when its process is gone
(same host, pid not alive) or it has not been refreshed for 30 minutes, so a backup killed
with ``kill -9`` never needs a manual unlock.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from dr.errors import RepositoryLocked
from dr.store.format import LOCK_DIR, fsync_dir

STALE_SECONDS = 30 * 60


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(info: dict[str, Any], mtime: float, now: float) -> bool:
    if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", 0))):
        return True
    return now - mtime > STALE_SECONDS


def _read(path: Path) -> tuple[dict[str, Any], float] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")), path.stat().st_mtime
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}, path.stat().st_mtime  # half-written by a killed process: judged by age


def _conflicts(folder: Path, own: Path, exclusive: bool) -> list[dict[str, Any]]:
    now = time.time()
    holders = []
    for path in sorted(folder.glob("*.json")):
        if path == own:
            continue
        read = _read(path)
        if read is None:
            continue
        info, mtime = read
        if is_stale(info, mtime, now):
            path.unlink(missing_ok=True)
            continue
        if exclusive or info.get("exclusive"):
            holders.append(info)
    return holders


@contextmanager
def locked(root: Path, *, exclusive: bool, operation: str) -> Iterator[Path]:
    """Hold a lock on the repository at ``root`` for the ``with`` block."""
    folder = root / LOCK_DIR
    folder.mkdir(exist_ok=True)
    own = folder / f"{secrets.token_hex(8)}.json"
    info = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "time": time.time(),
        "exclusive": exclusive,
        "operation": operation,
    }
    fd = os.open(own, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    try:
        holders = _conflicts(folder, own, exclusive)
        if holders:
            h = holders[0]
            raise RepositoryLocked(
                f"{root} is locked by {h.get('operation', '?')} on {h.get('host')} "
                f"(pid {h.get('pid')}, since {time.ctime(float(h.get('time', 0)))})",
                hint="wait for it to finish; a lock of a process that died is removed "
                "automatically (after 30 minutes when it was on another host)",
            )
        yield own
    finally:
        own.unlink(missing_ok=True)
        fsync_dir(folder)


def refresh(lock_path: Path) -> None:
    """Show that a long operation is still alive (called from progress callbacks)."""
    with suppress(FileNotFoundError):
        os.utime(lock_path)
