"""Restore one version into a directory, checking the SHA-256 of every file it writes.

Before anything is written, every blob the version needs is looked up, so a version whose
data is missing is refused up front. Each file is written under a temporary name and only
renamed into place once its SHA-256 matches the manifest: a failed restore never leaves a
file that looks complete. Block-mode files are rebuilt from their one complete map, so
the cost does not grow with the chain's length.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

from dr.errors import IntegrityError, ParameterError
from dr.store.blockmap import BlockMap, MapFormatError, load_map, map_blob_ids, used_supers
from dr.store.lock import locked
from dr.store.repository import Repository

Progress = Callable[[int], None]
PREFETCH = 4  # super-blocks decrypted ahead of the writer (about 4 MiB)
WRITERS = 4  # threads creating content-defined files: file creation waits on the journal


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


def restore_version(
    repo: Repository,
    version_id: str,
    dest: Path,
    progress: Progress | None = None,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Restore ``version_id`` under ``dest``; returns the manifest.

    Every path is checked before anything is written; each directory is checked once more
    after it exists, so a symbolic link already in ``dest`` cannot lead outside it. A file of
    the version already in ``dest`` is refused unless ``overwrite``: a restore never
    silently replaces data.
    """
    tick = progress or (lambda n: None)
    with locked(repo.root, exclusive=False, operation="restore"):
        manifest = repo.read_manifest(version_id)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        targets = [(root / checked_path(f["path"]), f) for f in manifest["files"]]
        if not overwrite:
            refuse_existing(dest, targets)
        repo.reload_index()
        maps = preflight(repo, manifest)
        checked_dirs: set[Path] = set()
        for target, entry in targets:
            _ensure_dir(root, target.parent, checked_dirs, entry["path"])
        write_files(repo, version_id, targets, maps, tick)
    return manifest


def write_files(
    repo: Repository,
    version_id: str,
    targets: list[tuple[Path, dict[str, Any]]],
    maps: dict[str, BlockMap],
    tick: Progress,
) -> None:
    """Block-mode files one by one (each already reads ahead on two threads); the others
    on WRITERS threads, since creating many small files is mostly waiting on the file
    system, and decryption and decompression run outside the interpreter lock."""
    chunked = [(t, e) for t, e in targets if e["path"] not in maps]
    for target, entry in targets:
        if entry["path"] in maps:
            restore_file(repo, version_id, target, entry, maps[entry["path"]], tick)
    if len(chunked) < 2 * WRITERS:
        for target, entry in chunked:
            restore_file(repo, version_id, target, entry, None, tick)
        return
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        done = pool.map(
            lambda te: restore_file(repo, version_id, te[0], te[1], None, tick), chunked
        )
        for _ in done:  # re-raises the first failure
            pass


def refuse_existing(dest: Path, targets: list[tuple[Path, dict[str, Any]]]) -> None:
    """Refuse before writing anything when a file of the version is already there."""
    for target, entry in targets:
        if os.path.lexists(target):
            raise ParameterError(
                f"{dest}: {entry['path']} already exists; refusing to overwrite it",
                hint="restore into an empty directory, or pass --overwrite to replace the files",
            )


def _ensure_dir(root: Path, folder: Path, checked: set[Path], rel: str) -> None:
    if folder in checked:
        return
    folder.mkdir(parents=True, exist_ok=True)
    if not folder.resolve().is_relative_to(root):
        raise ParameterError(f"refusing to restore {rel!r}: a link leads outside the target")
    checked.add(folder)


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


def restore_file(
    repo: Repository,
    version_id: str,
    target: Path,
    entry: dict[str, Any],
    block_map: BlockMap | None,
    tick: Progress,
) -> None:
    """Write under a temporary name, check the SHA-256, then rename into place.

    Content-defined files are hashed while written (one open per file); block-mode files
    are written out of order, so they are read back once to hash them.
    """
    tmp = f"{target.parent}/.{target.name}.dr-partial"
    try:
        with open(tmp, "wb") as fh:
            if block_map is None:
                digest = _write_chunks(repo, fh, entry, tick)
            else:
                _write_blocks(repo, fh, block_map, tick)
                digest = file_sha256(Path(tmp))
        if digest != entry["sha256"]:
            raise IntegrityError(
                f"version {version_id}: {entry['path']} restored with a wrong SHA-256; removed",
                hint="run `dr store verify --read-data`",
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_chunks(repo: Repository, fh: Any, entry: dict[str, Any], tick: Progress) -> str:
    """Write the chunks in order, hashing as they go; return the SHA-256."""
    sha = hashlib.sha256()
    for blob_hex, length in entry["chunks"]:
        data = repo.read_blob(bytes.fromhex(blob_hex))
        if len(data) != length:
            raise IntegrityError(f"{entry['path']}: a stored chunk has the wrong length")
        sha.update(data)
        fh.write(data)
        tick(length)
    return sha.hexdigest()


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
