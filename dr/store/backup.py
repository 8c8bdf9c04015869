"""Store one version of a backup set: every file of a source directory, deduplicated.

Order of writes (each durable before the next): packs, then the index file naming them,
then the manifest. The manifest is the commit point: a crash before it leaves only
unreferenced packs that the next prune removes; every earlier version stays intact.

Block-mode files (databases, images) follow the in-file delta rules (A5): a chain starts
with a full map; an incremental stores the blocks changed since the previous version, a
differential those changed since the chain's full; a new full starts when the chain
reaches ``max_deltas`` or ``max_changed_percent`` of the blocks changed. Every version's
map is complete, so restoring it never walks the chain.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from dr.errors import DrError, ParameterError, PolicyError
from dr.store.blockfile import store_block_file
from dr.store.catalog_link import artifact_fields
from dr.store.chains import ChainDecision, decide_run_type
from dr.store.chunking import (
    BLOCK_MIN_FILE,
    CDC_MIN,
    DEFAULT_BLOCK_PATTERNS,
    cdc_chunks,
    read_head,
    single_chunk,
    uses_blocks,
)
from dr.store.format import (
    BLOB_CHUNK,
    COMPRESSION_LEVELS,
    MANIFEST_DIR,
    iso,
    new_version_id,
    parse_iso,
    utcnow,
)
from dr.store.lock import locked, refresh
from dr.store.repository import BlobSink, Repository

RunType = Literal["auto", "full", "incremental", "differential"]
Progress = Callable[[int], None]
RACY_NS = 2_000_000_000  # FAT and SMB shares keep mtimes to 2 s


@dataclass(frozen=True)
class BackupOptions:
    """What to back up and how; the set's policies (A3–A5) flattened for the store."""

    set_name: str
    source: Path
    host: str = "localhost"
    backup_type: RunType = "auto"
    compression: Literal["fast", "normal"] = "normal"
    encryption: str = "aes-256-gcm"
    block_size: int | Literal["auto"] = "auto"
    max_deltas: int = 100
    max_changed_percent: float = 50.0
    differential: Literal["none", "weekly", "monthly"] = "none"
    differential_day: str | int | None = None
    block_patterns: tuple[str, ...] = DEFAULT_BLOCK_PATTERNS
    rehash: bool = False  # read every file even when size and mtime say it is unchanged
    at: datetime | None = None  # the run's start (tests pin it for differential days)
    storage_group: str | None = None  # the "SERVER/SG" key Exchange files belong to
    set_definition: dict[str, Any] | None = None  # kept in manifests for rebuild-catalog
    # The caller's complete catalog record (``catalog_link.run_records``): header facts, log
    # ranges and signatures the store cannot derive. Its sizes / digests / locations are
    # completed from what was stored, and the manifest carries it for rebuild-catalog.
    catalog_run: dict[str, Any] | None = None


@dataclass
class _Context:
    repo: Repository
    opts: BackupOptions
    sink: BlobSink
    version_id: str
    decision: ChainDecision
    progress: Progress
    lock_path: Path
    clock: float = 0.0  # time.monotonic() at the start: ended = started + elapsed
    history: list[dict[str, Any]] = field(default_factory=list)


def run_backup(
    repo: Repository,
    opts: BackupOptions,
    progress: Progress | None = None,
    files: list[tuple[str, Path]] | None = None,
) -> dict[str, Any]:
    """Store ``opts.source`` (or its listed ``files``) as a new version; return the manifest."""
    files = list(source_files(opts.source)) if files is None else files
    started = opts.at or utcnow()
    with locked(repo.root, exclusive=False, operation="backup") as lock_path:
        history = set_history(repo, opts.set_name)
        check_settings(opts, history)
        decision = decide_run_type(history, opts, started, repo.read_manifest)
        ctx = _Context(
            repo,
            opts,
            BlobSink(repo, COMPRESSION_LEVELS[opts.compression]),
            new_version_id(started),
            decision,
            _refreshing(progress, lock_path),
            lock_path,
            time.monotonic(),
            history,
        )
        try:
            entries = [store_file(ctx, path, rel) for rel, path in files]
            ctx.sink.finish()
        finally:
            ctx.sink.close()
        manifest = build_manifest(ctx, entries, started)
        repo.write_manifest(manifest)
    return manifest


def _refreshing(progress: Progress | None, lock_path: Path) -> Progress:
    """The caller's progress callback, also touching our lock at most once a minute, so
    a long file never lets the lock look stale to another host."""
    last = [time.monotonic()]

    def tick(n: int) -> None:
        if progress is not None:
            progress(n)
        if time.monotonic() - last[0] > 60:
            refresh(lock_path)
            last[0] = time.monotonic()

    return tick


def plan_run(
    repo: Repository,
    opts: BackupOptions,
    catalog: Any = None,
    files: list[tuple[str, Path]] | None = None,
) -> ChainDecision:
    """Decide the run's type and, with a catalog, check its Exchange rules — writing nothing.

    A refused run (say an incremental while circular logging is on) is refused here,
    before a single byte is stored.
    """
    files = list(source_files(opts.source)) if files is None else files
    if not files:
        raise ParameterError(f"{opts.source}: no files to back up")
    started = opts.at or utcnow()
    history = set_history(repo, opts.set_name)
    check_settings(opts, history)
    decision = decide_run_type(history, opts, started, repo.read_manifest)
    if catalog is not None:
        from dr.store.catalog_link import admit, new_run

        kind = recorded_type(opts, decision)
        admit(catalog, new_run(planned_records(opts, kind, started, files)))
    return decision


def source_files(source: Path) -> Iterator[tuple[str, Path]]:
    """Regular files under ``source`` as (relative posix path, path), sorted by path.

    Symbolic links and special files are skipped: a backup stores file content only.
    """
    if not source.is_dir():
        raise ParameterError(
            f"{source}: not a directory", hint="pass the folder or mounted share to back up"
        )
    yield from _walk(str(source), "")


def _walk(folder: str, prefix: str) -> Iterator[tuple[str, Path]]:
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = prefix + entry.name
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, rel + "/")
        elif entry.is_file(follow_symlinks=False):
            yield rel, Path(entry.path)


def set_history(repo: Repository, set_name: str) -> list[dict[str, Any]]:
    """The set's versions from its last full on, oldest first (damaged ones are skipped).

    Every manifest carries the heads (id, type, start) of its chain, so only the set's
    newest manifest is read: the earlier versions come as heads (``"head": True``), and
    the run reads one in full only when a differential builds on it. A run's cost therefore
    grows neither with the repository's age nor with the chain's length. Manifests written
    before chain heads existed are read the old way.
    """
    newest = _newest_of_set(repo, set_name)
    if newest is None:
        return []
    if "chain" not in newest:
        return _history_by_reading(repo, set_name)
    heads = [{**h, "set": set_name, "head": True} for h in newest["chain"][:-1]]
    return [*heads, newest]


def _newest_of_set(repo: Repository, set_name: str) -> dict[str, Any] | None:
    """The set's newest readable manifest; versions of the same second are all compared."""
    found: list[dict[str, Any]] = []
    second: str | None = None
    for vid in reversed(repo.version_ids()):
        if second is not None and not vid.startswith(second):
            break
        m = _read_or_none(repo, vid)
        if m is not None and m["set"] == set_name:
            found.append(m)
            second = second or vid.split("-", 1)[0]
    return max(found, key=lambda m: (m["started"], m["id"])) if found else None


def _history_by_reading(repo: Repository, set_name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stop_second: str | None = None
    for vid in reversed(repo.version_ids()):
        if stop_second is not None and not vid.startswith(stop_second):
            break
        m = _read_or_none(repo, vid)
        if m is not None and m["set"] == set_name:
            found.append(m)
            if m["backup_type"] == "full" and stop_second is None:
                stop_second = vid.split("-", 1)[0]
    found.sort(key=lambda m: (m["started"], m["id"]))
    fulls = [i for i, m in enumerate(found) if m["backup_type"] == "full"]
    return found[fulls[-1] :] if fulls else found


_CACHE: dict[tuple[str, str], dict[str, Any]] = {}


def _read_or_none(repo: Repository, vid: str) -> dict[str, Any] | None:
    """A manifest, or None when damaged. Manifests never change once written, so the last
    two read are kept: planning a run and running it read the same ones."""
    key = (str(repo.root), vid)
    if key in _CACHE and (repo.root / MANIFEST_DIR / vid).exists():
        return _CACHE[key]
    try:
        manifest = repo.read_manifest(vid)
    except DrError:
        return None
    while len(_CACHE) >= 2:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = manifest
    return manifest


def chain_heads(history: list[dict[str, Any]], manifest: dict[str, Any]) -> list[dict[str, str]]:
    """The heads of the version's chain, its full first and itself last."""
    earlier = [] if manifest["backup_type"] == "full" else history
    return [
        {"id": m["id"], "backup_type": m["backup_type"], "started": m["started"]}
        for m in [*earlier, manifest]
    ]


def check_settings(opts: BackupOptions, history: list[dict[str, Any]]) -> None:
    """Encryption is fixed when a set's first version is stored (A3); every later version
    carries the same setting, so the newest one speaks for the first."""
    if history and history[-1]["settings"]["encryption"] != opts.encryption:
        raise PolicyError(
            f"set {opts.set_name}: encryption is {history[-1]['settings']['encryption']}, "
            f"fixed when the set was created; {opts.encryption} is refused",
            hint="create a new set to change encryption",
        )


# ------------------------------------------------------------------------- files


def store_file(ctx: _Context, path: Path, rel: str) -> dict[str, Any]:
    st = path.stat()
    base = ctx.decision.base_files.get(rel)
    reused = unchanged_entry(ctx, st, base)
    if reused is not None:
        ctx.progress(st.st_size)
        return reused
    size = st.st_size
    head = read_head(path) if size >= BLOCK_MIN_FILE else b""
    if uses_blocks(rel, size, head, ctx.opts.block_patterns):
        entry = store_block_file(ctx, path, rel, size, head, base)
    else:
        entry = store_cdc_file(ctx, path, rel, size)
    entry["mtime_ns"] = st.st_mtime_ns  # as seen BEFORE reading: a later write shows up
    return entry


def unchanged_entry(
    ctx: _Context, st: os.stat_result, base: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The base version's entry when the file's size and mtime say it did not change.

    Like git's "racy" rule, an mtime within RACY_NS of the base version's start is not
    trusted (a write in the same timestamp tick would not show). ``--rehash`` and full
    backups read every file.
    """
    if ctx.opts.rehash or ctx.decision.run_type == "full" or base is None:
        return None
    if base.get("size") != st.st_size or base.get("mtime_ns") != st.st_mtime_ns:
        return None
    base_start_ns = _start_ns(base["version_started"])
    if st.st_mtime_ns >= base_start_ns - RACY_NS:
        return None
    entry = dict(base)
    for key in _NOT_CARRIED:
        entry.pop(key, None)
    if entry["mode"] == "block":
        entry["changed_blocks"] = 0
    entry["unchanged"] = True
    return entry


_NOT_CARRIED = ("version", "version_started", "stored")


def store_cdc_file(ctx: _Context, path: Path, rel: str, size: int) -> dict[str, Any]:
    """A file cut into content-defined chunks; one of at most ``CDC_MIN`` bytes (most
    small files) is read whole, without a chunker."""
    pieces = single_chunk(path, size) if size <= CDC_MIN else None
    if pieces is None:
        pieces = cdc_chunks(path, ctx.repo.keys.chunker_seed)
    sha = hashlib.sha256()
    chunks: list[list[Any]] = []
    for data in pieces:
        sha.update(data)
        blob_id = ctx.repo.keys.blob_id(data)
        ctx.sink.put(blob_id, BLOB_CHUNK, data, rel)
        chunks.append([blob_id.hex(), len(data)])
        ctx.progress(len(data))
    return {
        "path": rel,
        "size": size,
        "sha256": sha.hexdigest(),
        "mode": "cdc",
        "chunks": chunks,
        "stored": 0,  # filled in by build_manifest once the blobs are written
    }


@functools.lru_cache(maxsize=64)
def _start_ns(started: str) -> int:
    return int(parse_iso(started).timestamp() * 1_000_000_000)


# ---------------------------------------------------------------------- manifest


def build_manifest(
    ctx: _Context, entries: list[dict[str, Any]], started: datetime
) -> dict[str, Any]:
    opts, decision = ctx.opts, ctx.decision
    for entry in entries:
        entry["stored"] = ctx.sink.added_by.get(entry["path"], 0)
    ended = started + timedelta(seconds=time.monotonic() - ctx.clock)  # `at` pins both ends
    manifest: dict[str, Any] = {
        "format": "dr-manifest",
        "version": 1,
        "id": ctx.version_id,
        "set": opts.set_name,
        "host": opts.host,
        "backup_type": decision.run_type,
        "reason": decision.reason,
        "base": decision.base_version,
        "needs": decision.needs,
        "started": iso(started),
        "ended": iso(ended),
        "source": str(opts.source),
        "compression": opts.compression,
        "settings": {
            "encryption": opts.encryption,
            "block_size": opts.block_size,
            "max_deltas": opts.max_deltas,
            "max_changed_percent": opts.max_changed_percent,
            "differential": opts.differential,
            "differential_day": opts.differential_day,
        },
        "files": entries,
        "size": sum(e["size"] for e in entries),
        "stored": ctx.sink.added,
    }
    manifest["chain"] = chain_heads(ctx.history, manifest)
    manifest["catalog"] = catalog_records(ctx, manifest)
    return manifest


ARTIFACT_KINDS_BY_EXT = {
    ".edb": "database",
    ".stm": "stm",
    ".log": "logs",
    ".chk": "checkpoint",
    ".bkf": "system-state",
    ".vhd": "disk-image",
    ".vhdx": "disk-image",
}


def artifact_kind(rel: str) -> str:
    ext = os.path.splitext(rel)[1].lower()
    return ARTIFACT_KINDS_BY_EXT.get(ext, "files")


def _artifact(opts: BackupOptions, rel: str, size: int, **more: Any) -> dict[str, Any]:
    kind = artifact_kind(rel)
    return {
        "kind": kind,
        "name": rel,
        "size": size,
        **more,
        **artifact_fields(rel, kind, opts.storage_group),
    }


def _run_record(opts: BackupOptions, run_type: str, started: str, ended: str) -> dict[str, Any]:
    return {
        "set_name": opts.set_name,
        "host": opts.host,
        "backup_type": run_type,
        "started": started,
        "ended": ended,
        "status": "success",
        "error": None,
        "source": "dr",
        "compression": opts.compression,
    }


def catalog_records(ctx: _Context, manifest: dict[str, Any]) -> dict[str, Any]:
    """The version's run and artifacts as the catalog records them (for rebuild-catalog)."""
    opts = ctx.opts
    loc = f"dr-store:{ctx.repo.repo_id}/{ctx.version_id}"
    artifacts = [
        _artifact(
            opts,
            e["path"],
            e["size"],
            stored_size=e["stored"],
            sha256=e["sha256"],
            location=f"{loc}/{e['path']}",
        )
        for e in manifest["files"]
    ]
    if opts.catalog_run is not None:
        return _given_records(opts, manifest, {a["name"]: a for a in artifacts})
    kind = recorded_type(opts, ctx.decision)
    run = _run_record(opts, kind, manifest["started"], manifest["ended"])
    return {"run": run, "artifacts": artifacts, "set": opts.set_definition}


def _given_records(
    opts: BackupOptions, manifest: dict[str, Any], stored: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The caller's run record, its artifacts completed with what the store wrote."""
    given = opts.catalog_run or {}
    run = {**given["run"], "started": manifest["started"], "ended": manifest["ended"]}
    keys = ("size", "stored_size", "sha256", "location")
    artifacts = [
        {**a, **{k: stored[a["name"]][k] for k in keys}} if a["name"] in stored else dict(a)
        for a in given["artifacts"]
    ]
    return {"run": run, "artifacts": artifacts, "set": opts.set_definition}


def recorded_type(opts: BackupOptions, decision: ChainDecision) -> str:
    """The type the catalog records: what was asked for, else what the chain rules chose.

    The store may keep an asked-for incremental as a full when it has nothing to build on;
    the Exchange meaning of the run (which logs it covers, whether it truncates) is still
    the one asked for, and the catalog's rules judge that.
    """
    return decision.run_type if opts.backup_type == "auto" else opts.backup_type


def planned_records(
    opts: BackupOptions,
    run_type: str,
    started: datetime,
    files: list[tuple[str, Path]] | None = None,
) -> dict[str, Any]:
    """The records a run is expected to produce, for the catalog's check before it runs."""
    listed = list(source_files(opts.source)) if files is None else files
    artifacts = [_artifact(opts, rel, p.stat().st_size) for rel, p in listed]
    when = iso(started)
    return {"run": _run_record(opts, run_type, when, when), "artifacts": artifacts}
