"""How the lab's domain controllers replicate: a copy of the directory per domain controller,
each object with its version, the higher version winning.

While a domain controller runs normally it holds what its partners hold (the lab's
``directory.json`` and ``replication.json``: replication between running domain controllers
is taken as done). A domain controller out of replication — started in Directory Services
Restore Mode, its system state restored — holds a copy of its own. When it starts normally
again it replicates with the partners that run: for each object the copy with the higher
version wins (a deletion is a change with a version too), so a non-authoritative restore
takes every change made since the backup, and an object ntdsutil marked authoritative (its
version raised by 100000 per day since the backup) comes back everywhere instead of being
deleted again. SYSVOL comes from the partners, unless the restore made this copy the primary
one (``wbadmin ... -authsysvol``): then the partners take this one's, even when it is older.
"""

from __future__ import annotations

import copy as _copy
from typing import Any

__all__ = ["merge", "raise_version", "version_of"]


def version_of(copy: dict[str, Any], dn: str) -> int:
    """The version of ``dn`` in ``copy``: 0 when the copy never had it."""
    key = dn.lower()
    meta = copy["meta"]
    if key in copy["objects"] or key in meta.get("deleted", []):
        return int(meta["versions"].get(key, 1))
    return 0


def raise_version(copy: dict[str, Any], dn: str, by: int) -> int:
    """ntdsutil's authoritative mark: the object's version raised by ``by``; the new one."""
    key = dn.lower()
    meta = copy["meta"]
    meta["versions"][key] = int(meta["versions"].get(key, 1)) + by
    return int(meta["versions"][key])


def merge(own: dict[str, Any], partner: dict[str, Any], *, own_sysvol: bool) -> dict[str, Any]:
    """What every domain controller holds once ``own`` has replicated with ``partner``."""
    keys = {*own["objects"], *own["meta"].get("deleted", []),
            *partner["objects"], *partner["meta"].get("deleted", [])}  # fmt: skip
    objects: dict[str, Any] = {}
    versions: dict[str, int] = {}
    deleted: list[str] = []
    for key in sorted(keys):
        mine, theirs = version_of(own, key), version_of(partner, key)
        winner = own if mine > theirs else partner
        versions[key] = max(mine, theirs)
        if key in winner["objects"]:
            objects[key] = _copy.deepcopy(winner["objects"][key])
        else:
            deleted.append(key)
    sysvol = own if own_sysvol else partner
    meta = {"versions": versions, "deleted": deleted, "sysvol": sysvol["meta"].get("sysvol", 1)}
    return {"objects": objects, "meta": meta}
