"""Rebuild what can be derived from the repository itself: the index, and the catalog (E3).

The index is derived from the headers at the end of every pack; the catalog from the run
and artifact records every manifest carries. After a disaster that took the orchestrator's
host, the repository and its key are enough to know again what was backed up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dr.store.crypto import AuthenticationFailed
from dr.store.format import INDEX_DIR, remove_durably
from dr.store.index import index_names, write_index
from dr.store.lock import locked
from dr.store.packs import BlobEntry, PackReader, list_packs
from dr.store.repository import Repository


@dataclass
class RepairReport:
    packs_read: int = 0
    blobs_indexed: int = 0
    unreadable_packs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "packs_read": self.packs_read,
            "blobs_indexed": self.blobs_indexed,
            "unreadable_packs": self.unreadable_packs,
        }


def rebuild_index(repo: Repository) -> RepairReport:
    """Replace every index file by one built from the pack headers (exclusive lock)."""
    report = RepairReport()
    with locked(repo.root, exclusive=True, operation="repair-index"):
        entries: list[BlobEntry] = []
        for name, path in sorted(list_packs(repo.root).items()):
            try:
                with PackReader(repo.keys, path) as reader:
                    entries += reader.header()
                report.packs_read += 1
            except (AuthenticationFailed, OSError) as exc:
                report.unreadable_packs[name] = str(exc)
        old = index_names(repo.root)
        write_index(repo.root, repo.keys, entries)
        for name in old:
            remove_durably(repo.root / INDEX_DIR / name)
        report.blobs_indexed = len(entries)
        repo.reload_index()
    return report


def catalog_documents(repo: Repository) -> list[dict[str, Any]]:
    """Every readable version's catalog records (run + artifacts), oldest first."""
    docs = []
    for vid, manifest, _ in repo.manifests():
        if manifest is not None:
            docs.append({"version": vid, **manifest["catalog"]})
    return sorted(docs, key=lambda d: (d["run"]["ended"], d["version"]))
