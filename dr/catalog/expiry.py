"""Retention over the catalog: versions, what they need, and expiring what may go (A6).

A *version* is what retention keeps or expires as one: for an Exchange set, one run's
backup of one log stream (its database files, logs and checkpoint together); for every
other set, one run's copy of one item (SystemState.bkf, a mailbox, the KMS database).
What a version needs comes from ``dr.exchange.rules.needs_by_range`` for log streams — by
generations, the rule the planner's chains follow too — and from the vendor's in-file delta
chains otherwise: an incremental needs the previous version of the item (full, differential
or incremental), a differential needs the last full. Mail-level backups are items (even
when they name the database they came from), so they expire like any other. The
decisions themselves are ``dr.retention.plan_retention``'s; this module only gathers the
facts and writes the result, in one transaction, after re-checking that nothing a kept
version needs is about to go.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

from dr.catalog.catalog import Catalog, mark_expired_in
from dr.catalog.listing import MARKERS
from dr.catalog.model import SetRecord, from_epoch, to_epoch
from dr.catalog.store import cycle_collection_paused, transaction
from dr.errors import CatalogError
from dr.exchange.rules import needs_by_range, needs_by_type

_STREAM_KINDS = "('database', 'stm', 'logs', 'checkpoint')"

#: Why a kept version is kept, in the order a summary counts it (the first that applies).
KEEP_REASONS: tuple[tuple[str, str], ...] = (
    ("window", "inside the "),
    ("weekly", "weekly point "),
    ("monthly", "monthly point "),
    ("min_fulls", "one of the "),
    ("needed", "needed by "),
)


class VersionRef(NamedTuple):
    """Where a version's artifacts are: one run's stream (storage group) or item (name)."""

    run_id: int
    item: str
    stream: bool
    backup_type: str
    at: int  # epoch seconds


@dataclass(frozen=True)
class SetPlan:
    """The retention decisions for one set, and where each version's artifacts are."""

    set_name: str
    versions: list[Any]  # dr.retention.Version
    decisions: list[Any]  # dr.retention.Decision
    refs: dict[str, VersionRef]

    def expiring(self) -> list[Any]:
        return [d for d in self.decisions if not d.keep]

    def kept_because(self) -> dict[str, int]:
        """How many kept versions each reason accounts for (each counted once)."""
        counts = dict.fromkeys((name for name, _ in KEEP_REASONS), 0)
        for decision in self.decisions:
            if decision.keep:
                counts[keep_reason(decision.reasons)] += 1
        return counts


def keep_reason(reasons: tuple[str, ...]) -> str:
    for name, start in KEEP_REASONS:
        if any(r.startswith(start) for r in reasons):
            return name
    return "needed"


_STREAM_SQL = """
SELECT s.run_id, s.storage_group, s.backup_type, s.at, s.first_gen, s.last_gen
FROM runs r JOIN stream_backups s ON s.run_id = r.id
WHERE r.set_name = ? AND s.expired = 0
ORDER BY s.storage_group, s.at, s.run_id
"""
_ITEM_SQL = """
SELECT r.id, a.name, a.backup_type, r.ended
FROM runs r JOIN artifacts a ON a.run_id = r.id
WHERE r.set_name = ? AND r.status != 'failed' AND a.expired = 0
  AND (a.storage_group IS NULL OR a.kind NOT IN ('database', 'stm', 'logs', 'checkpoint'))
GROUP BY r.id, a.name ORDER BY a.name, r.ended, r.id
"""


def plan(catalog: Catalog, at: datetime, set_name: str | None = None) -> list[SetPlan]:
    records = [catalog.set(set_name)] if set_name else catalog.sets()
    with cycle_collection_paused():
        return [_plan_set(catalog.conn, record, at) for record in records]


def _plan_set(conn: sqlite3.Connection, record: SetRecord, at: datetime) -> SetPlan:
    from dr.retention import plan_retention

    refs: dict[str, VersionRef] = {}
    versions = stream_versions(conn, record.name, refs) + item_versions(conn, record.name, refs)
    decisions = plan_retention(versions, record.definition.retention, at)
    return SetPlan(record.name, versions, decisions, refs)


@lru_cache(maxsize=4096)
def _day(day: int) -> str:
    return from_epoch(day * 86400).strftime("%Y/%m/%d")


_SECOND = itemgetter(1)
_CLOCK = [f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(1440)]
_SHOWN = {kind: f"{marker} " if marker else "" for kind, marker in MARKERS.items()}


def version_label(at: int, backup_type: str, item: str, run_id: int) -> str:
    """A version as the listing shows it: ``2024/05/06 20:50 [I] item (run 13)``."""
    clock = _CLOCK[at % 86400 // 60]
    return f"{_day(at // 86400)} {clock} {_SHOWN.get(backup_type, '')}{item} (run {run_id})"


def stream_versions(
    conn: sqlite3.Connection, set_name: str, refs: dict[str, VersionRef]
) -> list[Any]:
    """Per log stream, one version per run; what each needs from the Exchange rules."""
    versions: list[Any] = []
    rows = conn.execute(_STREAM_SQL, (set_name,)).fetchall()
    for sg, group in groupby(rows, key=_SECOND):
        members = list(group)
        needs = needs_by_range([(row[2], row[4], row[5]) for row in members])
        versions += _chain([row[:4] for row in members], sg, sg, refs, stream=True, needs=needs)
    return versions


def item_versions(
    conn: sqlite3.Connection, set_name: str, refs: dict[str, VersionRef]
) -> list[Any]:
    """In-file delta chains per item: [I] needs the previous version, [D] the last full."""
    versions: list[Any] = []
    rows = conn.execute(_ITEM_SQL, (set_name,)).fetchall()
    for item, group in groupby(rows, key=_SECOND):
        versions += _chain(list(group), item, f"{set_name}/{item}", refs, stream=False)
    return versions


def _chain(
    rows: list[tuple[Any, ...]],
    item: str,
    chain: str,
    refs: dict[str, VersionRef],
    stream: bool,
    needs: list[tuple[int, ...]] | None = None,
) -> list[Any]:
    """The versions of one chain (rows: run id, item, type, epoch; oldest first)."""
    from dr.retention import Version

    ids = [version_label(at, kind, item, run_id) for run_id, _, kind, at in rows]
    if needs is None:
        needs = needs_by_type([row[2] for row in rows])
    versions = []
    # named tuples built with tuple.__new__: no Python-level constructor call per version
    new, moment, utc = tuple.__new__, datetime.fromtimestamp, UTC
    for (run_id, _, kind, at), vid, need in zip(rows, ids, needs, strict=True):
        refs[vid] = new(VersionRef, (run_id, item, stream, kind, at))
        wanted = tuple([ids[n] for n in need]) if need else ()
        versions.append(new(Version, (vid, chain, kind, moment(at, utc), wanted)))
    return versions


def _artifact_ids(conn: sqlite3.Connection, refs: list[VersionRef]) -> Iterator[int]:
    for ref in refs:
        column = "storage_group" if ref.stream else "name"
        only_items = "" if ref.stream else f" AND kind NOT IN {_STREAM_KINDS}"
        sql = f"SELECT id FROM artifacts WHERE run_id = ? AND {column} = ?{only_items}"
        for (artifact_id,) in conn.execute(sql + " AND expired = 0", (ref.run_id, ref.item)):
            yield artifact_id


def apply(catalog: Catalog, plans: list[SetPlan], at: datetime) -> int:
    """Mark every expiring version's artifacts expired, in one transaction."""
    for set_plan in plans:
        _guard(set_plan)
    with transaction(catalog.conn):
        refs = [p.refs[d.id] for p in plans for d in p.expiring()]
        ids = list(_artifact_ids(catalog.conn, refs))
        changed = mark_expired_in(catalog.conn, ids, [])
        catalog.conn.execute(
            "INSERT INTO expiries (at, policy_time, artifacts) VALUES (?,?,?)",
            (to_epoch(datetime.now(at.tzinfo)), to_epoch(at), changed),
        )
    return changed


def _guard(set_plan: SetPlan) -> None:
    """Refuse to expire anything a kept version needs, even if the policy code said so."""
    keep = {d.id for d in set_plan.decisions if d.keep}
    needs = {v.id: v.needs for v in set_plan.versions}
    pending = list(keep)
    closure = set(keep)
    while pending:
        for need in needs.get(pending.pop(), ()):
            if need not in closure:
                closure.add(need)
                pending.append(need)
    broken = closure - keep
    if broken:
        raise CatalogError(
            f"set {set_plan.set_name}: retention would expire {sorted(broken)[0]}, which a kept "
            "version needs; nothing was expired",
            hint="report this as a bug; the catalog is unchanged",
        )
