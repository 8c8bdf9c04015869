"""What is stored: the A7 listing (full / [I] / [D], sizes, ratio) and repository totals."""

from __future__ import annotations

from typing import Any

from dr.store.format import BLOB_CHUNK, BLOB_MAP, BLOB_SUPER
from dr.store.index import index_names
from dr.store.packs import list_packs
from dr.store.repository import Repository

MARKS = {"full": "", "incremental": "[I]", "differential": "[D]"}


def listing(repo: Repository, set_name: str | None = None) -> list[dict[str, Any]]:
    """One row per version, newest first, as the vendor's listing shows them (A7).

    ``stored`` is what the version added to the repository (after deduplication,
    compression and encryption); ``saved_percent`` is how much smaller that is than the
    version's original size.
    """
    rows = []
    for vid, m, error in repo.manifests():
        if m is None:
            rows.append(
                {
                    "id": vid,
                    "error": error,
                    "mark": "!",
                    "set": "?",
                    "started": "",
                    "size": 0,
                    "stored": 0,
                    "saved_percent": 0,
                    "files": 0,
                }
            )
            continue
        if set_name is not None and m["set"] != set_name:
            continue
        saved = 100 - round(100 * m["stored"] / m["size"]) if m["size"] else 0
        rows.append(
            {
                "id": vid,
                "set": m["set"],
                "host": m["host"],
                "backup_type": m["backup_type"],
                "mark": MARKS.get(m["backup_type"], "?"),
                "started": m["started"],
                "ended": m["ended"],
                "size": m["size"],
                "stored": m["stored"],
                "saved_percent": max(saved, 0),
                "files": len(m["files"]),
                "base": m["base"],
                "reason": m["reason"],
                "compression": m["compression"],
            }
        )
    return sorted(rows, key=lambda r: r["started"], reverse=True)


def stored_bytes(repo: Repository) -> int:
    return sum(p.stat().st_size for p in list_packs(repo.root).values())


def statistics(repo: Repository) -> dict[str, Any]:
    """Totals: versions, original bytes, packs and their bytes, blobs by type."""
    manifests = [m for _, m, _ in repo.manifests() if m is not None]
    original = sum(m["size"] for m in manifests)
    packed = stored_bytes(repo)
    blobs = repo.index.blobs.values()
    by_type = {BLOB_CHUNK: 0, BLOB_SUPER: 0, BLOB_MAP: 0}
    for entry in blobs:
        by_type[entry.blob_type] = by_type.get(entry.blob_type, 0) + 1
    return {
        "repository": str(repo.root),
        "id": repo.repo_id,
        "versions": len(manifests),
        "sets": len({m["set"] for m in manifests}),
        "original_bytes": original,
        "stored_bytes": packed,
        "ratio": round(original / packed, 2) if packed else None,
        "packs": len(list_packs(repo.root)),
        "index_files": len(index_names(repo.root)),
        "chunks": by_type[BLOB_CHUNK],
        "super_blocks": by_type[BLOB_SUPER],
        "block_maps": by_type[BLOB_MAP],
    }
