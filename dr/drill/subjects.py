"""What the inventory asks to be drilled, and how often (the policy → due.Subject)."""

from __future__ import annotations

from dr.drill.due import Subject
from dr.model.inventory import Inventory
from dr.model.refs import all_databases, resolve_database


def subjects(inv: Inventory) -> list[Subject]:
    """Every database of the estate at its period (its override, else the policy's), then
    every scenario drill at its interval."""
    policy = inv.drills
    overrides = {
        resolve_database(inv, ref).key.lower(): o.period for ref, o in policy.databases.items()
    }
    found = [
        Subject("database", ref.key, float(overrides.get(ref.key.lower(), policy.period)))
        for ref in all_databases(inv)
    ]
    found += [Subject("scenario", s.name, float(s.interval)) for s in policy.scenarios]
    return found
