"""What the inventory asks to be drilled, and how often (the policy → due.Subject)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from dr.drill.drift import changes
from dr.drill.due import Due, Subject, due_all, index_passed
from dr.drill.history import DrillRecord
from dr.model.inventory import Inventory
from dr.model.refs import all_databases, resolve_database


def subjects(
    inv: Inventory, records: Iterable[DrillRecord] = (), library: Any = None
) -> list[Subject]:
    """Every database of the estate at its period (its override, else the policy's), then
    every scenario drill at its interval. With the drill ``records`` and the step
    ``library``, a database whose last passed drill no longer proves it is marked changed."""
    policy = inv.drills
    overrides = {
        resolve_database(inv, ref).key.lower(): o.period for ref, o in policy.databases.items()
    }
    passed = index_passed(records)
    found = []
    for ref in all_databases(inv):
        last = passed.get(("database", ref.key.lower()))
        changed = changes(inv, library, last) if last is not None and library else None
        period = float(overrides.get(ref.key.lower(), policy.period))
        found.append(Subject("database", ref.key, period, changed))
    found += [Subject("scenario", s.name, float(s.interval)) for s in policy.scenarios]
    return found


def verdicts(
    inv: Inventory, records: Iterable[DrillRecord], library: Any, at: datetime
) -> tuple[list[Subject], list[Due]]:
    """Every subject and its verdict as of ``at``, judged on the drills ended by then (what
    ``dr drill due``, ``dr drill tick`` and the audit report all show)."""
    past = [r for r in records if r.ended_at <= at]
    found = subjects(inv, past, library)
    return found, due_all(found, past, at)
