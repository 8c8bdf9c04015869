"""`dr drill tick`'s lock: one tick at a time per workspace, a second one says who holds it.

The lock is held on ``<workspace>/drills/tick.lock`` (``engine.filelock``: ``flock`` on
POSIX, ``msvcrt.locking`` on a Windows orchestrator): the system releases it when the holder
exits, however it exits (a crash or ``kill -9`` leaves no stale lock to clean up). The file
also carries the holder's pid and start time, for the message a second tick prints; that
text is only information — the lock is the lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from dr.errors import DrillBusy
from engine.filelock import read_at_start, try_lock, write_at_start

LOCK_FILE = "drills/tick.lock"


@contextlib.contextmanager
def tick_lock(workspace_root: Path) -> Iterator[Path]:
    """Hold the workspace's drill lock, or raise ``DrillBusy`` at once (it never waits)."""
    path = workspace_root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    try:
        if not try_lock(fd):
            holder = _read(fd)
            raise DrillBusy(
                f"another `dr drill tick` is running on this workspace ({holder}): nothing started",
                hint="it runs the drills that are due; this tick will find what is left "
                f"next time (the lock is {path})",
            ) from None
        started = datetime.now(UTC).replace(microsecond=0).isoformat()
        write_at_start(fd, f"pid {os.getpid()}, since {started}\n".encode())
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _read(fd: int) -> str:
    text = read_at_start(fd, 200).decode("utf-8", "replace").strip()
    return text or "pid unknown"
