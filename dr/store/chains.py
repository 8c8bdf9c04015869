"""Which kind of version a run becomes, and which earlier version each file is a delta of.

Pure decisions over manifests (A5): a chain starts with a full; ``auto`` runs are
incremental, differential on the set's weekly / monthly differential day, and full when
there is nothing to build on or the chain has reached ``max_deltas``. An explicit
incremental or differential with nothing to build on is stored as a full, and the manifest
says why (the catalog's Exchange rules refuse such runs before they reach the store).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dr.errors import IntegrityError
from dr.store.blockmap import BlockMap, MapFormatError, load_map
from dr.store.format import parse_iso

if TYPE_CHECKING:
    from dr.store.backup import BackupOptions, _Context

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class ChainDecision:
    run_type: str  # full | incremental | differential
    reason: str
    base_version: str | None = None
    needs: list[str] = field(default_factory=list)
    base_files: dict[str, dict[str, Any]] = field(default_factory=dict)


def decide_run_type(
    history: list[dict[str, Any]],
    opts: BackupOptions,
    at: datetime,
    load: Callable[[str], dict[str, Any]] | None = None,
) -> ChainDecision:
    """The run's type and bases; ``history`` = the set's versions, oldest first.

    Earlier versions may be heads only (``"head": True``: id, type, start); ``load`` reads
    the manifest of one a differential builds on.
    """
    fulls = [m for m in history if m["backup_type"] == "full"]
    if not history or not fulls:
        reason = "first version of the set" if not history else "no full to build on"
        if opts.backup_type not in ("auto", "full"):
            reason = f"{opts.backup_type} requested, but {reason}: stored as a full"
        return ChainDecision("full", reason)
    if opts.backup_type == "full":
        return ChainDecision("full", "full requested")
    depth = chain_depth(history)
    wanted = opts.backup_type
    if wanted == "auto":
        if depth + 1 > opts.max_deltas:
            return ChainDecision("full", f"chain reached {opts.max_deltas} deltas")
        wanted = "differential" if differential_due(history, opts, at) else "incremental"
    if wanted == "incremental":
        return _incremental(history[-1])
    return _differential(history, _full_manifest(fulls[-1], load), load)


def _full_manifest(
    m: dict[str, Any], load: Callable[[str], dict[str, Any]] | None
) -> dict[str, Any]:
    if not m.get("head"):
        return m
    if load is None:
        raise ValueError(f"version {m['id']} is a head only and nothing can read it")
    return load(m["id"])


def chain_depth(history: list[dict[str, Any]]) -> int:
    """Deltas between the newest version and its full: a differential counts as one."""
    depth = 0
    for m in reversed(history):
        if m["backup_type"] == "full":
            break
        depth += 1
        if m["backup_type"] == "differential":
            break
    return depth


def _incremental(prev: dict[str, Any]) -> ChainDecision:
    files = {
        f["path"]: dict(f, version=prev["id"], version_started=prev["started"])
        for f in prev["files"]
    }
    return ChainDecision(
        "incremental", "changes since the previous version", prev["id"], [prev["id"]], files
    )


def _differential(
    history: list[dict[str, Any]],
    full: dict[str, Any],
    load: Callable[[str], dict[str, Any]] | None,
) -> ChainDecision:
    """Each block file is a delta of the version where its current chain started."""
    known = {m["id"] for m in history}
    owners: dict[str, dict[str, Any]] = {full["id"]: full}
    by_path: dict[str, dict[str, dict[str, Any]]] = {}
    files: dict[str, dict[str, Any]] = {}
    for entry in history[-1]["files"]:
        start = entry.get("chain", {}).get("full", full["id"])
        if start not in owners:
            found = next((m for m in history if m["id"] == start), None) if start in known else None
            owners[start] = _full_manifest(found, load) if found is not None else full
        owner = owners[start]
        paths = by_path.setdefault(owner["id"], {f["path"]: f for f in owner["files"]})
        match = paths.get(entry["path"])
        if match is not None:
            files[entry["path"]] = dict(
                match, version=owner["id"], version_started=owner["started"]
            )
    needs = sorted({f["version"] for f in files.values()} | {full["id"]})
    return ChainDecision("differential", "changes since the last full", full["id"], needs, files)


def differential_due(history: list[dict[str, Any]], opts: BackupOptions, at: datetime) -> bool:
    """True on the set's differential day, unless a full or differential ran that day."""
    if opts.differential == "none":
        return False
    if opts.differential == "weekly":
        day = opts.differential_day if opts.differential_day is not None else "fri"
        index = WEEKDAYS.index(day) if isinstance(day, str) else int(day)
        on_day = at.weekday() == index
    else:
        on_day = at.day == int(opts.differential_day or 1)
    if not on_day:
        return False
    return not any(
        m["backup_type"] in ("full", "differential") and parse_iso(m["started"]).date() == at.date()
        for m in history
    )


def file_delta_kind(
    ctx: _Context, base: dict[str, Any] | None, block_size: int
) -> tuple[str, str | None, BlockMap | None]:
    """(delta kind, why a full, base map) for one block-mode file of this run."""
    run_type = ctx.decision.run_type
    if run_type == "full":
        return "full", ctx.decision.reason, None
    if base is None or base.get("mode") != "block":
        return "full", "first version of this file in block mode", None
    if int(base["block_size"]) != block_size:
        return "full", f"block size changed to {block_size}", None
    if base["chain"]["depth"] + 1 > ctx.opts.max_deltas:
        return "full", f"chain reached {ctx.opts.max_deltas} deltas", None
    try:
        base_map = load_map(ctx.repo.read_blob, base)
    except (IntegrityError, MapFormatError) as exc:
        return "full", f"base map unreadable ({exc}); started a new chain", None
    return run_type, None, base_map
