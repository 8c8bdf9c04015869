"""A lab host's drives: Windows paths over a directory, NTFS-style, with locks and quotas.

``FileSystem(root)`` maps ``E:\\x\\y`` to ``<root>/E/x/y``. Lookups are case-insensitive
and case-preserving as on NTFS: ``e:\\X`` finds ``<root>/E/x`` and reports the case on disk.
A relative path is taken from the current location (each script starts in
``C:\\Users\\<user>``); ``..`` never leaves the drive's root and a path that names no drive
is refused. Files can be locked by an owner (the Exchange host locks a mounted database's
files and the open current log): reading, copying, moving or deleting a locked file fails
with Windows' sharing-violation text. ``set_quota(drive, bytes)`` caps a drive: a write
that would exceed it fails with "There is not enough space on the disk." (ERROR_DISK_FULL,
112: learn.microsoft.com/windows/win32/debug/system-error-codes--0-499-); on a drive with no
free space at all, creating a folder or an empty file fails the same way (each needs a new
file record).
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PureWindowsPath
from typing import Any, TypeVar

__all__ = ["FileSystem", "FsError", "Stat", "has_wildcard", "wildcard_match"]

F = TypeVar("F", bound=Callable[..., Any])
SHARING_VIOLATION = (
    "The process cannot access the file '{path}' because it is being used by another process."
)
DISK_FULL = "There is not enough space on the disk."


class FsError(Exception):
    """A file-system failure with the text (and .NET exception type) Windows gives."""

    def __init__(self, message: str, kind: str = "IOException", path: str = "") -> None:
        super().__init__(message)
        self.message, self.kind, self.path = message, kind, path


class LockedError(FsError):
    """A sharing violation: another process holds the file open."""

    def __init__(self, path: str) -> None:
        super().__init__(SHARING_VIOLATION.format(path=path), "IOException", path)


class NotFoundError(FsError):
    def __init__(self, path: str, directory: bool = False) -> None:
        kind = "DirectoryNotFoundException" if directory else "FileNotFoundException"
        what = "a part of the path" if directory else "file"
        super().__init__(f"Could not find {what} '{path}'.", kind, path)


@dataclass(frozen=True)
class Stat:
    path: str  # the Windows path, with the case found on disk
    is_dir: bool
    size: int
    mtime: datetime


def has_wildcard(text: str) -> bool:
    return bool(re.search(r"[*?\[]", text))


def wildcard_match(pattern: str, name: str) -> bool:
    """PowerShell's wildcard match (``*``, ``?``, ``[ab]``), case-insensitive."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower().replace("[!", "[\\!"))


def _os_errors(method: F) -> F:
    """An unexpected OSError from the real file system becomes an FsError with its text."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except FsError:
            raise
        except OSError as exc:
            raise FsError(exc.strerror or str(exc)) from exc

    return wrapper  # type: ignore[return-value]


class FileSystem:
    """The drives of one lab host under ``root``."""

    def __init__(self, root: Path, user: str = "Administrator") -> None:
        self.root = Path(root)
        self.home = f"C:\\Users\\{user}"
        self.locks: dict[str, str] = {}  # normalised lower-case path → owner
        self.quotas: dict[str, int] = {}  # drive letter → bytes

    # -- paths --

    def full(self, path: str, cwd: str | None = None) -> str:
        """The absolute Windows path (``..`` and ``.`` resolved; case as on disk)."""
        win = PureWindowsPath(path)
        if not win.drive:
            if win.root:  # \x: the current drive's root
                win = PureWindowsPath(PureWindowsPath(cwd or self.home).drive + path)
            else:
                win = PureWindowsPath(cwd or self.home) / win
        if not re.fullmatch(r"[A-Za-z]:", win.drive):
            raise FsError(f"Cannot find drive. A drive with the name '{win.drive}' does not exist.")
        parts: list[str] = []
        for part in win.parts[1:]:
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in (".", ""):
                parts.append(part)
        return self._on_disk_case(win.drive.upper(), parts)

    def _on_disk_case(self, drive: str, parts: list[str]) -> str:
        here, names = self.root / drive[0], []
        for part in parts:
            found = _find_case(here, part)
            names.append(found or part)
            here = here / (found or part)
        return drive + "\\" + "\\".join(names)

    def host_path(self, path: str, cwd: str | None = None) -> Path:
        """Where ``path`` lives under ``root`` (it may not exist)."""
        full = self.full(path, cwd)
        parts = [p for p in full[3:].split("\\") if p]
        target = self.root.joinpath(full[0], *parts)
        if not str(target.resolve()).startswith(str(self.root.resolve())):
            raise FsError(f"Cannot use path '{path}': it leaves the host's drives")
        return target

    # -- queries --

    def exists(self, path: str, cwd: str | None = None) -> bool:
        return self.host_path(path, cwd).exists()

    def is_dir(self, path: str, cwd: str | None = None) -> bool:
        return self.host_path(path, cwd).is_dir()

    def stat(self, path: str, cwd: str | None = None) -> Stat:
        full = self.full(path, cwd)
        host = self.host_path(full)
        if not host.exists():
            raise NotFoundError(full)
        st = host.stat()
        size = 0 if host.is_dir() else st.st_size
        return Stat(full, host.is_dir(), size, datetime.fromtimestamp(st.st_mtime))

    def listdir(self, path: str, cwd: str | None = None) -> list[str]:
        """Full Windows paths of a directory's entries, sorted by name as Explorer does."""
        full = self.full(path, cwd)
        host = self.host_path(full)
        if not host.is_dir():
            raise NotFoundError(full, directory=True)
        names = sorted(os.listdir(host), key=str.lower)
        return [full.rstrip("\\") + "\\" + name for name in names]

    def glob(self, pattern: str, cwd: str | None = None) -> list[str]:
        """Paths matching a pattern whose components may hold wildcards."""
        full_pattern = self.full(pattern, cwd) if not has_wildcard(pattern[:3]) else pattern
        drive, *parts = full_pattern.split("\\")
        found = [drive + "\\"]
        for part in (p for p in parts if p):
            found = [c for base in found for c in self._match_child(base, part)]
        return [f.rstrip("\\") if len(f) > 3 else f for f in found]

    def _match_child(self, base: str, part: str) -> list[str]:
        if not has_wildcard(part):
            child = self.full(base.rstrip("\\") + "\\" + part)
            return [child] if self.exists(child) else []
        if not self.is_dir(base):
            return []
        return [p for p in self.listdir(base) if wildcard_match(part, p.rsplit("\\", 1)[1])]

    # -- locks and quotas --

    def lock(self, path: str, owner: str) -> None:
        self.locks[self.full(path).lower()] = owner

    def unlock(self, path: str, owner: str) -> None:
        key = self.full(path).lower()
        if self.locks.get(key) == owner:
            del self.locks[key]

    def locked_by(self, path: str) -> str | None:
        return self.locks.get(self.full(path).lower())

    def check_unlocked(self, path: str) -> None:
        """Raise the sharing violation if ``path`` (or a file below it) is locked."""
        full = self.full(path)
        key = full.lower()
        for locked in self.locks:
            if locked == key or locked.startswith(key.rstrip("\\") + "\\"):
                raise LockedError(self.full(locked))

    def set_quota(self, drive: str, size: int) -> None:
        self.quotas[drive[0].upper()] = size

    def used(self, drive: str) -> int:
        top = self.root / drive[0].upper()
        return sum(p.stat().st_size for p in top.rglob("*") if p.is_file()) if top.exists() else 0

    def free(self, drive: str) -> int | None:
        quota = self.quotas.get(drive[0].upper())
        return None if quota is None else max(0, quota - self.used(drive))

    def _check_space(self, full: str, adding: int, *, new: bool = False) -> None:
        free = self.free(full[0])
        if free is not None and (adding > free or (new and free == 0)):
            raise FsError(DISK_FULL, "IOException", full)

    # -- file operations --

    def read_bytes(self, path: str, cwd: str | None = None) -> bytes:
        full = self.full(path, cwd)
        self.check_unlocked(full)
        host = self.host_path(full)
        if host.is_dir():
            raise FsError(f"Access to the path '{full}' is denied.", "UnauthorizedAccessException")
        if not host.exists():
            raise NotFoundError(full)
        return host.read_bytes()

    @_os_errors
    def write_bytes(
        self, path: str, data: bytes, cwd: str | None = None, *, append: bool = False
    ) -> str:
        full = self.full(path, cwd)
        self.check_unlocked(full)
        self._drive_exists(full)
        host = self.host_path(full)
        if not host.parent.is_dir():
            raise NotFoundError(full, directory=True)
        old = host.stat().st_size if host.is_file() else 0
        self._check_space(full, len(data) if append else len(data) - old, new=not host.exists())
        with host.open("ab" if append else "wb") as out:
            out.write(data)
        return full

    def _drive_exists(self, full: str) -> None:
        if not (self.root / full[0]).is_dir():
            raise FsError(
                f"Cannot find drive. A drive with the name '{full[0]}' does not exist.",
                "DriveNotFoundException",
                full,
            )

    @_os_errors
    def mkdir(self, path: str, cwd: str | None = None) -> str:
        full = self.full(path, cwd)
        self._drive_exists(full)
        if not self.host_path(full).is_dir():
            self._check_space(full, 0, new=True)
        self.host_path(full).mkdir(parents=True, exist_ok=True)
        return self.full(full)

    @_os_errors
    def remove(self, path: str, cwd: str | None = None, *, recursive: bool = False) -> None:
        full = self.full(path, cwd)
        self.check_unlocked(full)
        host = self.host_path(full)
        if host.is_dir():
            if any(host.iterdir()) and not recursive:
                raise FsError(f"The directory is not empty. : '{full}'")
            shutil.rmtree(host)
        elif host.exists():
            host.unlink()
        else:
            raise NotFoundError(full)

    @_os_errors
    def copy(self, source: str, dest: str, cwd: str | None = None) -> str:
        """Copy one file (dest is the new file's path); returns dest's full path."""
        src, dst = self.full(source, cwd), self.full(dest, cwd)
        self.check_unlocked(src)
        self.check_unlocked(dst)
        data = self.read_bytes(src)
        return self.write_bytes(dst, data)

    @_os_errors
    def move(self, source: str, dest: str, cwd: str | None = None) -> str:
        src, dst = self.full(source, cwd), self.full(dest, cwd)
        if dst.lower().startswith(src.lower().rstrip("\\") + "\\"):
            raise FsError(f"Destination path cannot be a subdirectory of the source: {dst}.")
        self.check_unlocked(src)
        if not self.exists(src):
            raise NotFoundError(src)
        if self.exists(dst):
            raise FsError("Cannot create a file when that file already exists.", path=dst)
        target = self.host_path(dst)
        if not target.parent.is_dir():
            raise NotFoundError(dst, directory=True)
        if src[0] != dst[0]:
            self._check_space(dst, self._size(self.host_path(src)))
        shutil.move(self.host_path(src), target)
        return self.full(dst)

    @staticmethod
    def _size(host: Path) -> int:
        if host.is_file():
            return host.stat().st_size
        return sum(p.stat().st_size for p in host.rglob("*") if p.is_file())

    def walk(self, path: str, cwd: str | None = None) -> list[str]:
        """Every entry below a directory, depth first, parents before children."""
        out: list[str] = []
        for child in self.listdir(path, cwd):
            out.append(child)
            if self.is_dir(child):
                out.extend(self.walk(child))
        return out


def _find_case(directory: Path, name: str) -> str | None:
    """The on-disk name matching ``name`` case-insensitively (exact case first)."""
    if (directory / name).exists():
        return name if name in _names(directory) else _ci(directory, name)
    return _ci(directory, name)


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _ci(directory: Path, name: str) -> str | None:
    lower = name.lower()
    return next((n for n in _names(directory) if n.lower() == lower), None)
