"""Changed since last test: what a drill depended on, and whether it is still so (C2).

A passed drill proves the restore of *that* estate with *that* step library. Two things
make it stale before the calendar does:

* the estate it ran against — the database's server (Windows, Exchange, service pack or CU,
  PowerShell), the database's files and storage group, and the recovery forest's servers:
  :func:`estate_fingerprint` digests exactly those inventory entries;
* the step library — a changed command for a step kind the drill used: the record keeps the
  digest of those kinds' definitions (``library_digest``, as the evidence record does), and
  :func:`library_digest` recomputes it over the same kinds.

New backups do not count: every drill restores the latest chain, and its shape (a full and
N incrementals) is what the drill tested. ``dr drill due`` shows a changed database as due
now, whatever the calendar says.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from dr.drill.history import DrillRecord
from dr.model.inventory import Inventory


def estate_fingerprint(inv: Inventory, key: str) -> str:
    """SHA-256 of the inventory entries a drill of ``key`` depends on."""
    from dr.model.refs import resolve_database
    from dr.planner.builder import platform_of

    ref = resolve_database(inv, key)
    policy = inv.drills
    forests = [f for f in inv.recovery_forests if policy.forest in (None, f.name)]
    body = {
        "source": platform_of(ref.server),
        "storage_group": ref.storage_group.model_dump(mode="json"),
        "recovery": [
            {
                "forest": f.name,
                "servers": [{**platform_of(s), **s.model_dump(mode="json")} for s in f.servers],
            }
            for f in forests
        ],
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _forest(forest: Any, platform_of: Any) -> dict[str, Any]:
    servers = [{**platform_of(s), **s.model_dump(mode="json")} for s in forest.servers]
    return {"forest": forest.name, "servers": servers}


def step_kinds(record: DrillRecord) -> list[str]:
    """The step kinds a recorded drill ran (a step id starts with its kind)."""
    return sorted({s.id.split(".", 1)[0] for s in record.steps})


def library_digest(kinds: Iterable[str], library: Any) -> str:
    """The digest ``dr.evidence.make.library_facts`` computes, over ``kinds``."""
    digests = {}
    for kind in sorted(set(kinds)):
        try:
            text = library.kind(kind).model_dump_json()
        except Exception:  # a kind gone from the library since the drill
            digests[kind] = "missing"
            continue
        digests[kind] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    whole = json.dumps(digests, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(whole).hexdigest()


def changes(inv: Inventory, library: Any, record: DrillRecord) -> str | None:
    """Why ``record`` no longer proves today's restore of its database, or None."""
    from dr.errors import DrError

    if record.database is None:
        return None
    found = []
    try:
        if record.estate_digest and estate_fingerprint(inv, record.database) != (
            record.estate_digest
        ):
            found.append("the estate changed (the server, its database or the recovery forest)")
    except DrError:
        found.append("the database is no longer in the inventory as recorded")
    kinds = step_kinds(record)
    if record.library_digest and kinds and library_digest(kinds, library) != record.library_digest:
        found.append("the step library changed for a step the drill ran")
    return "; ".join(found) or None
