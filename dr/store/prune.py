"""Expire versions retention no longer keeps, then reclaim their space in a separate pass.

Expire deletes manifests only — newest first, so an interruption leaves older versions
(the ones later ones were built on) in place. Reclaim runs under an exclusive lock: it marks
every blob a remaining manifest needs, writes repacked packs, then ONE new index file that
covers everything still needed, then deletes the old index files, and only then deletes
packs. Wherever it is interrupted, every remaining version still restores; leftovers are
removed by the next prune.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dr.errors import IntegrityError
from dr.model.sets import RetentionPolicy
from dr.store.blockmap import MapFormatError, load_map, map_blob_ids, used_supers
from dr.store.crypto import AuthenticationFailed
from dr.store.format import COMPRESSION_LEVELS, INDEX_DIR, MANIFEST_DIR, parse_iso, remove_durably
from dr.store.index import index_names, write_index
from dr.store.lock import locked
from dr.store.packs import BlobEntry, PackReader, list_packs, pack_path
from dr.store.repository import BlobSink, Repository

MAX_UNUSED = 0.2  # repack a pack once a fifth of it is unused


@dataclass(frozen=True)
class Decision:
    id: str
    keep: bool
    reasons: tuple[str, ...]


@dataclass
class PruneReport:
    expired: list[str] = field(default_factory=list)
    packs_deleted: int = 0
    packs_repacked: int = 0
    bytes_freed: int = 0
    decisions: list[Decision] = field(default_factory=list)
    expired_runs: list[str] = field(default_factory=list)  # catalog run keys of expired

    def to_dict(self) -> dict[str, Any]:
        return {
            "expired": self.expired,
            "packs_deleted": self.packs_deleted,
            "packs_repacked": self.packs_repacked,
            "bytes_freed": self.bytes_freed,
            "decisions": [
                {"id": d.id, "keep": d.keep, "reasons": list(d.reasons)} for d in self.decisions
            ],
        }


@dataclass(frozen=True)
class CatalogView:
    """What the workspace catalog says about the repository's runs, by run key.

    ``expired``: runs `dr retention apply` marked expired; ``known``: every run it holds.
    """

    expired: frozenset[str]
    known: frozenset[str]


def run_key(manifest: dict[str, Any]) -> str:
    """The catalog's key of the run a version recorded (set, host, start, type)."""
    from dr.store.catalog_link import new_run

    return new_run(manifest["catalog"]).key


def plan_expiry(
    manifests: list[dict[str, Any]],
    *,
    keep_last: int | None = None,
    keep_days: int | None = None,
    at: datetime,
    catalog: CatalogView | None = None,
    policies: dict[str, RetentionPolicy] | None = None,
) -> list[Decision]:
    """Which versions expire, and why: one decision per version, in the order given.

    The source, first that applies: explicit ``--keep-last/--keep-days``; else the catalog's
    expiry marks (what `dr retention apply` decided); else each set's RetentionPolicy
    evaluated by ``dr.retention.plan_retention`` (the same call `dr retention plan` makes).
    Whatever the source, a kept version keeps every version it is built on.
    """
    why_not: dict[str, list[str]] = {}
    if keep_last is not None or keep_days is not None:
        reasons = _by_count_and_age(manifests, keep_last, keep_days, at)
    elif catalog is not None:
        reasons = _by_catalog(manifests, catalog, why_not)
    else:
        reasons = _by_policy(manifests, policies or {}, at, why_not)
    _close_needs(manifests, reasons)
    return [
        Decision(m["id"], True, tuple(reasons[m["id"]]))
        if reasons[m["id"]]
        else Decision(m["id"], False, tuple(why_not.get(m["id"]) or ["outside every rule"]))
        for m in manifests
    ]


def _by_count_and_age(
    manifests: list[dict[str, Any]], keep_last: int | None, keep_days: int | None, at: datetime
) -> dict[str, list[str]]:
    """Keep the last N versions and those inside the window, per set (explicit override)."""
    reasons: dict[str, list[str]] = {m["id"]: [] for m in manifests}
    for versions in _by_set(manifests).values():
        for n, m in enumerate(reversed(versions)):
            if keep_last is not None and n < keep_last:
                reasons[m["id"]].append(f"one of the last {keep_last}")
            if keep_days is not None and at - parse_iso(m["started"]) <= timedelta(keep_days):
                reasons[m["id"]].append(f"inside the {keep_days}-day window")
        if not any(reasons[m["id"]] for m in versions):
            reasons[versions[-1]["id"]].append("the newest version of a set is always kept")
    return reasons


def _by_set(manifests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_set: dict[str, list[dict[str, Any]]] = {}
    for m in sorted(manifests, key=lambda m: (m["started"], m["id"])):
        by_set.setdefault(m["set"], []).append(m)
    return by_set


def _by_catalog(
    manifests: list[dict[str, Any]], catalog: CatalogView, why_not: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Expire exactly the versions whose catalog run retention marked expired."""
    reasons: dict[str, list[str]] = {}
    for m in manifests:
        key = run_key(m)
        if key in catalog.expired:
            reasons[m["id"]] = []
            why_not[m["id"]] = ["its catalog run is expired (dr retention apply)"]
        elif key in catalog.known:
            reasons[m["id"]] = ["its catalog run is kept by retention"]
        else:
            reasons[m["id"]] = ["not in the catalog: kept (dr store rebuild-catalog records it)"]
    return reasons


def _by_policy(
    manifests: list[dict[str, Any]],
    policies: dict[str, RetentionPolicy],
    at: datetime,
    why_not: dict[str, list[str]],
) -> dict[str, list[str]]:
    """Each set's RetentionPolicy through ``plan_retention``, over the store's versions."""
    from dr.retention import Version, plan_retention

    reasons: dict[str, list[str]] = {}
    for set_name, versions in _by_set(manifests).items():
        policy = policies.get(set_name) or _manifest_policy(versions[-1])
        if policy is None:
            for m in versions:
                reasons[m["id"]] = ["the set's retention policy is unknown: kept"]
            continue
        book = [
            Version(m["id"], set_name, m["backup_type"], parse_iso(m["started"]),
                    tuple(m.get("needs", [])))
            for m in versions
        ]  # fmt: skip
        for d in plan_retention(book, policy, at):
            reasons[d.id] = list(d.reasons) if d.keep else []
            if not d.keep:
                why_not[d.id] = list(d.reasons)
    return reasons


def _manifest_policy(manifest: dict[str, Any]) -> RetentionPolicy | None:
    """The retention policy of the set definition the newest version carries, if any."""
    from dr.model.sets import BackupSet

    definition = manifest.get("catalog", {}).get("set")
    return BackupSet.model_validate(definition).retention if definition else None


def _close_needs(manifests: list[dict[str, Any]], reasons: dict[str, list[str]]) -> None:
    """A kept version keeps every version it is built on, transitively."""
    needs = {m["id"]: m.get("needs", []) for m in manifests}
    pending = [v for v, r in reasons.items() if r]
    while pending:
        vid = pending.pop()
        for need in needs.get(vid, []):
            if need in reasons and not reasons[need]:
                pending.append(need)
            if need in reasons:
                reasons[need].append(f"needed by {vid} (kept)")


def expire(repo: Repository, decisions: list[Decision], report: PruneReport) -> None:
    """Delete the manifests of expired versions, newest first, under an exclusive lock."""
    with locked(repo.root, exclusive=True, operation="prune"):
        for d in sorted((d for d in decisions if not d.keep), key=lambda d: d.id, reverse=True):
            remove_durably(repo.root / MANIFEST_DIR / d.id)
            report.expired.append(d.id)


def used_blobs(repo: Repository) -> set[bytes]:
    """Every blob a remaining version needs; refuses to guess when something is unreadable."""
    used: set[bytes] = set()
    for vid, manifest, error in repo.manifests():
        if manifest is None:
            raise IntegrityError(
                f"prune refused: version {vid} is unreadable ({error})",
                hint="run `dr store verify`; remove or repair it first",
            )
        for entry in manifest["files"]:
            if entry["mode"] == "block":
                used.update(map_blob_ids(entry))
                used.update(_map_supers(repo, vid, entry))
            else:
                used.update(bytes.fromhex(c[0]) for c in entry["chunks"])
    return used


def _map_supers(repo: Repository, vid: str, entry: dict[str, Any]) -> list[bytes]:
    try:
        return used_supers(load_map(repo.read_blob, entry))
    except (IntegrityError, MapFormatError) as exc:
        raise IntegrityError(
            f"prune refused: version {vid}: block map of {entry['path']} unreadable",
            hint="run `dr store verify`",
        ) from exc


def reclaim(repo: Repository, report: PruneReport, max_unused: float = MAX_UNUSED) -> None:
    with locked(repo.root, exclusive=True, operation="prune"):
        index = repo.reload_index()
        if index.damaged_files:
            raise IntegrityError(
                "prune refused: an index file is damaged",
                hint="run `dr store verify` and `dr store repair-index`",
            )
        used = used_blobs(repo)
        old_index_files = index_names(repo.root)
        present = set(list_packs(repo.root))
        keep, drop, repack = classify(index.packs(), used, max_unused, present)
        new_entries = [e for p in keep for e in index.packs()[p]]
        new_entries += repack_packs(repo, [index.packs()[p] for p in repack], used)
        orphans = present - set(index.packs())
        if drop or repack or len(old_index_files) > 1:
            write_index(repo.root, repo.keys, new_entries)
            for name in old_index_files:
                remove_durably(repo.root / INDEX_DIR / name)
        for pack in sorted(set(drop) | set(repack) | orphans):
            path = pack_path(repo.root, pack)
            report.bytes_freed += path.stat().st_size if path.exists() else 0
            remove_durably(path)
        report.packs_deleted = len(drop) + len(orphans)
        report.packs_repacked = len(repack)
        repo.reload_index()


def classify(
    packs: dict[str, list[BlobEntry]], used: set[bytes], max_unused: float, present: set[str]
) -> tuple[list[str], list[str], list[str]]:
    """(packs kept as they are, packs dropped entirely, packs to repack).

    A pack missing from disk is kept in the index while a version needs it, so verify keeps
    naming the damaged versions instead of prune hiding the loss.
    """
    keep, drop, repack = [], [], []
    for pack, entries in sorted(packs.items()):
        total = sum(e.length for e in entries)
        unused = sum(e.length for e in entries if e.blob_id not in used)
        if unused == total:
            drop.append(pack)
        elif pack in present and total and unused / total >= max_unused:
            repack.append(pack)
        else:
            keep.append(pack)
    return keep, drop, repack


def repack_packs(
    repo: Repository, packs: list[list[BlobEntry]], used: set[bytes]
) -> list[BlobEntry]:
    """Copy the used blobs of ``packs`` into new packs (re-sealed, not recompressed)."""
    sink = BlobSink(repo, COMPRESSION_LEVELS["normal"])
    try:
        for entries in packs:
            _copy_used(repo, sink, entries, used)
        sink.flush()
    finally:
        sink.close()
    return sink.written


def _copy_used(
    repo: Repository, sink: BlobSink, entries: list[BlobEntry], used: set[bytes]
) -> None:
    try:
        with PackReader(repo.keys, pack_path(repo.root, entries[0].pack)) as reader:
            for e in entries:
                if e.blob_id in used and e.blob_id not in sink.pending:
                    sink.put_packed(e.blob_id, e.blob_type, reader.read_record(e), e.plain_len)
    except AuthenticationFailed as exc:
        raise IntegrityError(
            f"prune refused: pack {entries[0].pack[:16]} is damaged ({exc})",
            hint="run `dr store verify --read-data` to see which versions it affects",
        ) from exc


def prune(
    repo: Repository,
    *,
    at: datetime,
    keep_last: int | None = None,
    keep_days: int | None = None,
    catalog: CatalogView | None = None,
    policies: dict[str, RetentionPolicy] | None = None,
    dry_run: bool = False,
    before_delete: Callable[[list[str]], Any] | None = None,
) -> PruneReport:
    """Expire what retention expired (see ``plan_expiry``), then reclaim space: two passes,
    each under the exclusive lock, so a crash between them only delays the reclaim.

    ``before_delete`` gets the catalog run keys of the versions about to go, before the
    first manifest is deleted (the catalog marks them expired: killed at any point, the
    catalog never lists a deleted version as restorable)."""
    report = PruneReport()
    manifests = [m for _, m, _ in repo.manifests() if m is not None]
    report.decisions = plan_expiry(
        manifests, keep_last=keep_last, keep_days=keep_days, at=at,
        catalog=catalog, policies=policies,
    )  # fmt: skip
    report.expired_runs = [run_key(m) for m in manifests if m["id"] in _expiring(report)]
    if dry_run:
        return report
    if before_delete is not None and report.expired_runs:
        before_delete(report.expired_runs)
    expire(repo, report.decisions, report)
    reclaim(repo, report)
    return report


def _expiring(report: PruneReport) -> set[str]:
    return {d.id for d in report.decisions if not d.keep}
