"""Advisory whole-file locks that work on Linux and on a Windows orchestrator.

POSIX: ``flock`` (the kernel drops it when the holder exits, however it exits). Windows:
``msvcrt.locking`` on one byte far past the end of the file (Windows drops a process's locks
when it ends; its locks are mandatory, so the byte locked is one nobody reads, and the
holder's note at the start stays readable). Either way the lock belongs to the open file:
close it, or exit, and it is gone, so a crash leaves nothing stale to clean up. Only
locking goes through here; the contents are read and written with ordinary seeks.
"""

from __future__ import annotations

import os
import sys
import time
from types import ModuleType

__all__ = ["lock", "read_at_start", "try_lock", "unlock", "write_at_start"]

LOCK_OFFSET = 2**31 - 2  # Windows: the byte locked; files here never grow near it


def _windows() -> ModuleType | None:
    if sys.platform != "win32":
        return None
    import msvcrt  # the standard library's, on Windows only

    return msvcrt


def try_lock(fd: int) -> bool:
    """Take the lock on ``fd`` if it is free; False at once if another process holds it."""
    msvcrt = _windows()
    if msvcrt is not None:
        os.lseek(fd, LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError where it is held
        return False
    return True


def lock(fd: int, poll_seconds: float = 0.05) -> None:
    """Wait for the lock on ``fd`` (for short critical sections, like appending a line)."""
    msvcrt = _windows()
    if msvcrt is None:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while not try_lock(fd):  # LK_LOCK gives up after ten seconds; this waits as flock does
        time.sleep(poll_seconds)


def unlock(fd: int) -> None:
    msvcrt = _windows()
    if msvcrt is not None:
        os.lseek(fd, LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def read_at_start(fd: int, size: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, size)


def write_at_start(fd: int, data: bytes) -> None:
    """Replace the file's contents with ``data`` (the holder's note in a lock file)."""
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, data)
