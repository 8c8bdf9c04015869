"""Restore one version into a directory, checking the SHA-256 of every file it writes.

Before anything is written, every path is checked, every file of the version already in
the directory is refused (unless ``overwrite``) and every blob the version needs is looked
up, so a version whose data is missing is refused up front.

While files are written the directory holds a marker, ``.dr-restore-incomplete-VERSION``,
created (and made durable) before the first file and removed only once every file has
been written and its SHA-256 checked: a directory holding it may hold partial files. A new
file is created under its own name (no temporary name, no rename: on a small-file restore
those cost as much as the data). A file of one chunk is hashed before it is created, so a
wrong one is never written; a larger file is hashed while written and removed when its
SHA-256 does not match. A file that replaces an existing one (``overwrite``) and a
block-mode file are written under a temporary name and renamed into place once checked,
so the old file stays until the new one is known to be right. Block-mode files are
rebuilt from their one complete map, so the cost does not grow with the chain's length.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from dr.errors import IntegrityError, ParameterError
from dr.store.blockmap import BlockMap, MapFormatError, load_map, map_blob_ids, used_supers
from dr.store.format import fsync_dir
from dr.store.lock import locked
from dr.store.repository import Repository

Progress = Callable[[int], None]
PREFETCH = 4  # super-blocks decrypted ahead of the writer (about 4 MiB)
WRITERS = 2  # threads creating new content-defined files, each in its own folders
MARKER_PREFIX = ".dr-restore-incomplete-"
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC  # never follows a link


@dataclass(frozen=True)
class Target:
    """One file of the version: where it goes (``path``) and its manifest entry."""

    folder: str  # relative to the target directory, "" for its top
    name: str
    path: str
    entry: dict[str, Any]


@dataclass(frozen=True)
class _Job:
    repo: Repository
    version_id: str
    root: Path
    tick: Progress

    @property
    def marker(self) -> Path:
        return self.root / f"{MARKER_PREFIX}{self.version_id}"

    def failed(self, target: Target, why: str, hint: str | None = None) -> IntegrityError:
        return IntegrityError(
            f"version {self.version_id}: {target.entry['path']} not restored ({why}); "
            f"{self.root} is marked incomplete ({self.marker.name})",
            hint=hint or "run `dr store verify --read-data` to list the damaged versions",
        )


def checked_path(rel: str) -> PurePosixPath:
    """A manifest path, refused when it could land outside the target directory."""
    pure = PurePosixPath(rel)
    if (
        pure.is_absolute()
        or any(part in ("..", "") for part in pure.parts)
        or ":" in rel
        or "\\" in rel
    ):
        raise ParameterError(f"refusing to restore {rel!r}: the path escapes the target directory")
    return pure


def safe_target(root: Path, rel: str) -> Path:
    """``root / rel``, refusing any path that would land outside ``root`` (links included)."""
    target = (root / checked_path(rel)).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ParameterError(f"refusing to restore {rel!r}: the path escapes the target directory")
    return target


def split_checked(rel: str) -> tuple[str, str]:
    """(folder, name) of a manifest path, with :func:`checked_path`'s rules (string work
    only: a version may hold hundreds of thousands of paths)."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if rel.startswith("/") or not parts or ".." in parts or ":" in rel or "\\" in rel:
        raise ParameterError(f"refusing to restore {rel!r}: the path escapes the target directory")
    return "/".join(parts[:-1]), parts[-1]


def restore_version(
    repo: Repository,
    version_id: str,
    dest: Path,
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
    keep_identical: bool = False,
) -> dict[str, Any]:
    """Restore ``version_id`` under ``dest``; returns the manifest.

    With ``keep_identical``, a file already in ``dest`` with the version's size and SHA-256 is
    kept as it is (an earlier restore of the same version put it there); any other existing
    file is still refused unless ``overwrite``.

    Every path is checked before anything is written; each directory is checked once more
    after it exists, so a symbolic link already in ``dest`` cannot lead outside it. A file of
    the version already in ``dest`` is refused unless ``overwrite``: a restore never
    silently replaces data. ``dest`` holds the marker (module doc) until every file is
    written and checked; a failure leaves it there.
    """
    with locked(repo.root, exclusive=False, operation="restore"):
        manifest = repo.read_manifest(version_id)
        dest.mkdir(parents=True, exist_ok=True)
        job = _Job(repo, version_id, dest.resolve(), progress or (lambda n: None))
        targets = plan(job.root, manifest["files"])
        existing = existing_files(job.root, targets)
        if existing and keep_identical and not overwrite:
            same = {t.path for t in existing if _identical(t)}
            targets = [t for t in targets if t.path not in same]
            existing = [t for t in existing if t.path not in same]
        if existing and not overwrite:
            refuse(dest, existing[0])
        repo.reload_index()
        maps = preflight(repo, manifest)
        make_folders(job.root, targets)
        mark_incomplete(job)
        write_files(job, targets, maps, {t.path for t in existing})
        job.marker.unlink(missing_ok=True)
    return manifest


def plan(root: Path, files: list[dict[str, Any]]) -> list[Target]:
    """Every file's place under ``root``; refuses a path that escapes it."""
    out = []
    for entry in files:
        folder, name = split_checked(entry["path"])
        where = f"{root}/{folder}" if folder else str(root)
        out.append(Target(folder, name, f"{where}/{name}", entry))
    return out


def existing_files(root: Path, targets: list[Target]) -> list[Target]:
    """The targets already present (anything by that name), listing each folder once."""
    present: dict[str, set[str]] = {}
    for folder in dict.fromkeys(t.folder for t in targets):
        try:
            present[folder] = set(os.listdir(root / folder))
        except (FileNotFoundError, NotADirectoryError):
            present[folder] = set()
    return [t for t in targets if t.name in present[t.folder]]


def refuse(dest: Path, target: Target) -> None:
    raise ParameterError(
        f"{dest}: {target.entry['path']} already exists; refusing to overwrite it",
        hint="restore into an empty directory, or pass --overwrite to replace the files",
    )


def make_folders(root: Path, targets: list[Target]) -> None:
    """Create every folder, refusing one that a link leads outside ``root``."""
    for folder in dict.fromkeys(t.folder for t in targets):
        path = root / folder
        path.mkdir(parents=True, exist_ok=True)
        if not path.resolve().is_relative_to(root):
            raise ParameterError(
                f"refusing to restore into {folder!r}: a link leads outside the target"
            )


def mark_incomplete(job: _Job) -> None:
    """Create the marker durably, before the first file: any file written later, even a
    partial one a crash leaves, sits beside it."""
    text = (
        f"dr store restore of version {job.version_id} into this directory has not "
        "finished (it is running, failed or was killed): files here may be incomplete.\n"
        "Restore again with --overwrite; this file is removed once every file is checked.\n"
    )
    fd = os.open(job.marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(job.root)


def write_files(
    job: _Job, targets: list[Target], maps: dict[str, BlockMap], replacing: set[str]
) -> None:
    """Block-mode files and replaced files one by one (block files read ahead on two
    threads); new content-defined files on WRITERS threads, each thread in its own folders:
    creating a file locks its folder, so two threads in one folder would wait on each
    other. Decryption, decompression and hashing run outside the interpreter lock."""
    fresh: list[Target] = []
    for t in targets:
        if t.entry["path"] in maps or t.path in replacing:
            replace_file(job, t, maps.get(t.entry["path"]))
        else:
            fresh.append(t)
    groups = by_folder(fresh)
    run_parallel(groups, lambda group: [write_new(job, t) for t in group], WRITERS)


def by_folder(targets: list[Target]) -> list[list[Target]]:
    groups: dict[str, list[Target]] = {}
    for t in targets:
        groups.setdefault(t.folder, []).append(t)
    return list(groups.values())


def run_parallel(items: Sequence[Any], work: Callable[[Any], object], threads: int) -> None:
    """``work(item)`` for every item on up to ``threads`` threads (the caller's included);
    the first failure stops the others before their next item and is raised."""
    pending = iter(items)
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def worker() -> None:
        while not stop.is_set():
            with lock:
                item = next(pending, None)
            if item is None:
                return
            try:
                work(item)
            except BaseException as exc:  # raised again on the caller's thread
                failures.append(exc)
                stop.set()

    helpers = [threading.Thread(target=worker) for _ in range(min(threads, len(items)) - 1)]
    for helper in helpers:
        helper.start()
    worker()
    try:
        for helper in helpers:
            helper.join()
    except BaseException:  # Ctrl-C while waiting: let the helpers stop after their item
        stop.set()
        for helper in helpers:
            helper.join()
        raise
    if failures:
        raise failures[0]


def write_new(job: _Job, target: Target) -> None:
    """Create a file that does not exist yet, under its own name. One chunk (most small
    files): hashed before the file exists. More: hashed while written, removed if wrong."""
    chunks = target.entry["chunks"]
    if len(chunks) > 1:
        _write_streamed(job, target)
        return
    data = read_chunk(job, target, chunks[0]) if chunks else b""
    if hashlib.sha256(data).hexdigest() != target.entry["sha256"]:
        raise job.failed(target, "wrong SHA-256, not written")
    with _new_file(target) as fd:
        _write_all(fd, data)
    job.tick(len(data))


def _write_streamed(job: _Job, target: Target) -> None:
    with _new_file(target) as fd:
        sha = hashlib.sha256()
        for chunk in target.entry["chunks"]:
            data = read_chunk(job, target, chunk)
            sha.update(data)
            _write_all(fd, data)
            job.tick(len(data))
        if sha.hexdigest() != target.entry["sha256"]:
            raise job.failed(target, "wrong SHA-256, removed")


@contextlib.contextmanager
def _new_file(target: Target) -> Iterator[int]:
    """A descriptor of a new file at ``target.path``, closed after the block; the file is
    removed when the block or the close fails."""
    try:
        fd = os.open(target.path, NEW_FILE, 0o666)
    except FileExistsError as exc:  # appeared after the check (or a case-insensitive share)
        raise ParameterError(
            f"{target.path} already exists; refusing to overwrite it",
            hint="restore into an empty directory, or pass --overwrite to replace the files",
        ) from exc
    try:
        try:
            yield fd
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target.path)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_chunk(job: _Job, target: Target, chunk: list[Any]) -> bytes:
    """One chunk's plaintext; a damaged one is reported under the file's name."""
    blob_hex, length = chunk
    try:
        data = job.repo.read_blob(bytes.fromhex(blob_hex))
    except IntegrityError as exc:
        raise job.failed(target, exc.message, exc.hint) from exc
    if len(data) != length:
        raise job.failed(target, "a stored chunk has the wrong length")
    return data


def replace_file(job: _Job, target: Target, block_map: BlockMap | None) -> None:
    """Write under a temporary name, check the SHA-256, then rename into place.

    Content-defined files are hashed while written; block-mode files are written out of
    order, so they are read back once to hash them.
    """
    tmp = f"{job.root / target.folder}/.{target.name}.dr-partial"
    try:
        with open(tmp, "wb") as fh:
            if block_map is None:
                digest = _write_chunks(job, target, fh)
            else:
                _write_map(job, target, fh, block_map)
                digest = file_sha256(Path(tmp))
        if digest != target.entry["sha256"]:
            raise job.failed(target, "wrong SHA-256, removed")
        os.replace(tmp, target.path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_map(job: _Job, target: Target, fh: Any, block_map: BlockMap) -> None:
    try:
        _write_blocks(job.repo, fh, block_map, job.tick)
    except IntegrityError as exc:  # a damaged super-block, reported under the file's name
        raise job.failed(target, exc.message, exc.hint) from exc


def _write_chunks(job: _Job, target: Target, fh: Any) -> str:
    """Write the chunks in order, hashing as they go; return the SHA-256."""
    sha = hashlib.sha256()
    for chunk in target.entry["chunks"]:
        data = read_chunk(job, target, chunk)
        sha.update(data)
        fh.write(data)
        job.tick(len(data))
    return sha.hexdigest()


def preflight(repo: Repository, manifest: dict[str, Any]) -> dict[str, BlockMap]:
    """Check every needed blob is indexed and its pack present; return the block maps."""
    maps: dict[str, BlockMap] = {}
    for entry in manifest["files"]:
        if entry["mode"] == "block":
            maps[entry["path"]] = read_map(repo, manifest["id"], entry)
    missing = [b for b in needed_blobs(manifest, maps) if not _present(repo, b)]
    if missing:
        raise IntegrityError(
            f"version {manifest['id']} cannot be restored: {len(missing)} stored pieces are "
            "missing or their pack is gone",
            hint="run `dr store verify` to see which versions are damaged; restore another",
        )
    return maps


def read_map(repo: Repository, version_id: str, entry: dict[str, Any]) -> BlockMap:
    try:
        block_map = load_map(repo.read_blob, entry)
    except MapFormatError as exc:
        raise IntegrityError(f"version {version_id}: block map of {entry['path']} ({exc})") from exc
    except IntegrityError as exc:
        raise IntegrityError(
            f"version {version_id}: block map of {entry['path']} unreadable: {exc.message}",
            hint=exc.hint,
        ) from exc
    if block_map.file_size != entry["size"]:
        raise IntegrityError(f"version {version_id}: block map of {entry['path']} has wrong size")
    return block_map


def needed_blobs(manifest: dict[str, Any], maps: dict[str, BlockMap]) -> set[bytes]:
    needed: set[bytes] = set()
    for entry in manifest["files"]:
        if entry["mode"] == "block":
            needed.update(map_blob_ids(entry))
            needed.update(used_supers(maps[entry["path"]]))
        else:
            needed.update(bytes.fromhex(c[0]) for c in entry["chunks"])
    return needed


def _present(repo: Repository, blob_id: bytes) -> bool:
    entry = repo.index.blobs.get(blob_id)
    if entry is None:
        return False
    size = repo.pack_file_size(entry.pack)
    return size is not None and size >= entry.offset + entry.length


def _write_blocks(repo: Repository, fh: Any, block_map: BlockMap, tick: Progress) -> None:
    """Each super-block is decrypted once (a few ahead, on other cores) and its blocks
    written where the map says, runs of adjacent blocks in one write."""
    fh.truncate(block_map.file_size)
    by_super: dict[int, list[int]] = {}
    for i, s in enumerate(block_map.super_of):
        by_super.setdefault(s, []).append(i)
    fd = fh.fileno()
    for (_, blocks), data in zip(
        by_super.items(), _prefetch(repo, block_map, list(by_super)), strict=True
    ):
        view = memoryview(data)
        for file_pos, start, length in segments(block_map, blocks):
            os.pwrite(fd, view[start : start + length], file_pos)
        tick(len(blocks) * block_map.block_size)


def _prefetch(repo: Repository, block_map: BlockMap, supers: list[int]) -> Iterator[bytes]:
    """Decrypted super-blocks in order, at most PREFETCH ahead of the writer."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        window: deque[Future[bytes]] = deque()
        for s in supers:
            window.append(pool.submit(repo.read_blob, block_map.supers[s]))
            if len(window) > PREFETCH:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def segments(block_map: BlockMap, blocks: list[int]) -> list[tuple[int, int, int]]:
    """(file offset, offset in super-block, length) with adjacent blocks merged."""
    out: list[tuple[int, int, int]] = []
    bs = block_map.block_size
    for i in blocks:
        start, length = block_map.offset_in[i], block_map.block_len(i)
        if out and out[-1][0] + out[-1][2] == i * bs and out[-1][1] + out[-1][2] == start:
            pos, first, run = out[-1]
            out[-1] = (pos, first, run + length)
        else:
            out.append((i * bs, start, length))
    return out


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while buf := fh.read(8 << 20):
            sha.update(buf)
    return sha.hexdigest()


def _identical(target: Target) -> bool:
    """The file at ``target`` is already the version's: same size, same SHA-256."""
    path = Path(target.path)
    try:
        if not path.is_file() or path.stat().st_size != target.entry["size"]:
            return False
    except OSError:
        return False
    return file_sha256(path) == target.entry["sha256"]
