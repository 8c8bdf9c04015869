"""Keep the catalog telling the truth about the repository it records.

The catalog says which versions can be restored; the repository is what can. They drift
apart when a process dies between the two writes: a prune killed after deleting manifests
(the catalog still lists them as restorable), a backup killed after committing its
manifest (the catalog lacks a version that exists). :func:`compare` finds both;
:func:`reconcile` repairs them — runs whose version is gone are marked expired, versions
missing from the catalog are recorded from the records their manifests carry — and is run
by every prune and verify.

Only the runs dr stored (``source = 'dr'``) are compared: runs imported from other tools'
reports have no version in the repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dr.store.repository import Repository

if TYPE_CHECKING:
    from dr.catalog import Catalog


@dataclass
class Drift:
    """How the catalog and the repository differ."""

    # catalog run key -> what the run is (set, host, type, start): its version is gone
    missing_versions: dict[str, str] = field(default_factory=dict)
    # version id -> its catalog records: the catalog does not know it
    unrecorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    unreadable_manifests: int = 0
    marked_expired: int = 0
    recorded: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalog_runs_without_version": self.missing_versions,
            "versions_not_in_catalog": sorted(self.unrecorded),
            "marked_expired": self.marked_expired,
            "recorded": self.recorded,
        }


def compare(catalog: Catalog, repo: Repository) -> Drift:
    """What differs, without changing anything."""
    from dr.catalog.model import from_epoch
    from dr.store.prune import run_key

    drift = Drift()
    stored: dict[str, tuple[str, dict[str, Any]]] = {}
    for vid, manifest, _ in repo.manifests():
        if manifest is None:
            drift.unreadable_manifests += 1
        elif isinstance(manifest.get("catalog"), dict):
            stored[run_key(manifest)] = (vid, manifest["catalog"])
    rows = catalog.conn.execute(
        "SELECT run_key, expired, source, set_name, host, backup_type, started FROM runs"
    ).fetchall()
    known = {row[0] for row in rows}
    for key, expired, source, set_name, host, backup_type, started in rows:
        if source == "dr" and not expired and key not in stored:
            when = from_epoch(started).isoformat(timespec="seconds")
            drift.missing_versions[key] = f"{backup_type} of set {set_name} on {host} at {when}"
    for key, (vid, records) in stored.items():
        if key not in known:
            drift.unrecorded[vid] = records
    return drift


def reconcile(catalog: Catalog, repo: Repository, *, mark: bool = True) -> Drift:
    """Record the versions the catalog lacks; with ``mark``, mark expired the runs whose
    version is gone. With an unreadable manifest nothing is marked (its run cannot be told
    apart from a deleted one): the drift is reported instead."""
    from dr.store.catalog_link import rebuild

    drift = compare(catalog, repo)
    if drift.unrecorded:
        docs = [{"version": v, **r} for v, r in drift.unrecorded.items()]
        docs.sort(key=lambda d: (d["run"]["ended"], d["version"]))
        drift.recorded, _ = rebuild(catalog, docs)
    if mark and drift.missing_versions and not drift.unreadable_manifests:
        drift.marked_expired = mark_runs_expired(catalog, list(drift.missing_versions))
    return drift


def mark_runs_expired(catalog: Catalog, keys: list[str]) -> int:
    """Mark the runs with these keys (and all their artifacts) expired; the count of runs."""
    ids: list[int] = []
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        marks = ",".join("?" * len(chunk))
        rows = catalog.conn.execute(f"SELECT id FROM runs WHERE run_key IN ({marks})", chunk)
        ids += [row[0] for row in rows.fetchall()]
    if ids:
        catalog.mark_expired(run_ids=ids)
    return len(ids)
