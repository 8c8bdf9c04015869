"""engine.filelock: one holder at a time, released when the holder exits, on both systems."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from engine import filelock

HOLD = """
import os, sys, time
from engine import filelock
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
assert filelock.try_lock(fd)
filelock.write_at_start(fd, b"pid %d" % os.getpid())
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_lock_held_by_another_process_is_refused_and_freed_when_it_exits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        fd = os.open(path, os.O_RDWR)
        try:
            assert filelock.try_lock(fd) is False
            assert filelock.read_at_start(fd, 100) == f"pid {holder.pid}".encode()
        finally:
            os.close(fd)
    finally:
        holder.kill()  # however it ends, the system drops its lock
        holder.wait()
    fd = os.open(path, os.O_RDWR)
    try:
        assert filelock.try_lock(fd) is True
        filelock.unlock(fd)
    finally:
        os.close(fd)


def test_on_windows_one_byte_past_the_notes_is_locked_with_msvcrt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows itself is not reachable from this test machine: msvcrt is replaced here by a
    recorder of its calls (the POSIX path above runs for real)."""
    calls: list[tuple[int, int, int]] = []
    held: set[int] = set()

    def locking(fd: int, mode: int, nbytes: int) -> None:
        calls.append((os.lseek(fd, 0, os.SEEK_CUR), mode, nbytes))
        if mode == fake.LK_NBLCK:
            if fd in held or "other" in held:
                raise OSError(36, "Resource deadlock avoided")
            held.add(fd)
        elif mode == fake.LK_UNLCK:
            held.discard(fd)

    fake = types.ModuleType("msvcrt")
    fake.LK_NBLCK, fake.LK_UNLCK = 2, 0  # type: ignore[attr-defined]
    fake.locking = locking  # type: ignore[attr-defined]
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    fd = os.open(tmp_path / "y.lock", os.O_RDWR | os.O_CREAT)
    try:
        assert filelock.try_lock(fd) is True
        filelock.write_at_start(fd, b"pid 1")
        assert filelock.read_at_start(fd, 10) == b"pid 1"  # the notes are not the locked byte
        filelock.unlock(fd)
        held.add("other")  # type: ignore[arg-type]
        assert filelock.try_lock(fd) is False
    finally:
        os.close(fd)
    assert calls[0] == (filelock.LOCK_OFFSET, fake.LK_NBLCK, 1)
    assert calls[1] == (filelock.LOCK_OFFSET, fake.LK_UNLCK, 1)
