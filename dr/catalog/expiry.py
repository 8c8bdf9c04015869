"""Retention over the catalog: versions, what they need, and expiring what may go (A6).

A *version* is what retention keeps or expires as one: for an Exchange set, one run's
backup of one log stream (its database files, logs and checkpoint together); for every
other set, one run's copy of one item (SystemState.bkf, a mailbox, the KMS database).
What a version needs comes from ``dr.exchange.rules.direct_needs`` for log streams, and from
the vendor's in-file delta chains otherwise: an incremental needs the previous version of
the item (full, differential or incremental), a differential needs the last full. The
decisions themselves are ``dr.retention.plan_retention``'s; this module only gathers the
facts and writes the result, in one transaction, after re-checking that nothing a kept
version needs is about to go.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dr.catalog.admission import _stream_backup
from dr.catalog.catalog import Catalog, mark_expired_in
from dr.catalog.model import SetRecord, from_epoch, to_epoch
from dr.catalog.store import transaction
from dr.errors import CatalogError


@dataclass(frozen=True)
class SetPlan:
    """The retention decisions for one set, with the artifacts each version stands for."""

    set_name: str
    versions: list[Any]  # dr.retention.Version
    decisions: list[Any]  # dr.retention.Decision
    artifacts: dict[str, list[int]]

    def expiring(self) -> list[Any]:
        return [d for d in self.decisions if not d.keep]


_STREAM_SQL = """
SELECT s.run_id, s.storage_group, s.backup_type, s.at, s.log_prefix, s.first_gen, s.last_gen,
       s.log_signature, s.circular_logging, s.database_mounted
FROM stream_backups s JOIN runs r ON r.id = s.run_id
WHERE r.set_name = ? AND EXISTS (SELECT 1 FROM artifacts a WHERE a.run_id = s.run_id
      AND a.storage_group = s.storage_group AND a.expired = 0)
ORDER BY s.storage_group, s.at, s.run_id
"""
_ITEM_SQL = """
SELECT r.id, a.name, a.backup_type, r.ended, group_concat(a.id)
FROM runs r JOIN artifacts a ON a.run_id = r.id
WHERE r.set_name = ? AND r.status != 'failed' AND a.expired = 0 AND a.storage_group IS NULL
GROUP BY r.id, a.name ORDER BY a.name, r.ended, r.id
"""


def plan(catalog: Catalog, at: datetime, set_name: str | None = None) -> list[SetPlan]:
    records = [catalog.set(set_name)] if set_name else catalog.sets()
    return [_plan_set(catalog.conn, record, at) for record in records]


def _plan_set(conn: sqlite3.Connection, record: SetRecord, at: datetime) -> SetPlan:
    from dr.retention import plan_retention

    versions, artifacts = stream_versions(conn, record.name)
    more, more_artifacts = item_versions(conn, record.name)
    versions += more
    artifacts.update(more_artifacts)
    decisions = plan_retention(versions, record.definition.retention, at)
    return SetPlan(record.name, versions, decisions, artifacts)


def stream_versions(
    conn: sqlite3.Connection, set_name: str
) -> tuple[list[Any], dict[str, list[int]]]:
    from dr.exchange.rules import direct_needs
    from dr.retention import Version

    by_stream: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in conn.execute(_STREAM_SQL, (set_name,)):
        by_stream[row[1]].append(row)
    versions: list[Any] = []
    for sg, rows in by_stream.items():
        history = [_stream_backup(*row[2:]) for row in rows]
        ids = [f"{row[0]}:{sg}" for row in rows]
        for index, needs in enumerate(direct_needs(history)):
            versions.append(
                Version(
                    ids[index],
                    sg,
                    history[index].backup_type,
                    history[index].at,
                    tuple(ids[n] for n in needs),
                )
            )
    return versions, _stream_artifacts(conn, set_name)


def _stream_artifacts(conn: sqlite3.Connection, set_name: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    rows = conn.execute(
        "SELECT a.run_id, a.storage_group, a.id FROM artifacts a JOIN runs r ON r.id = a.run_id "
        "WHERE r.set_name = ? AND a.storage_group IS NOT NULL AND a.expired = 0",
        (set_name,),
    )
    for run_id, sg, artifact_id in rows:
        found[f"{run_id}:{sg}"].append(artifact_id)
    return found


def item_versions(
    conn: sqlite3.Connection, set_name: str
) -> tuple[list[Any], dict[str, list[int]]]:
    """In-file delta chains per item: [I] needs the previous version, [D] the last full."""
    from dr.retention import Version

    versions: list[Any] = []
    artifacts: dict[str, list[int]] = {}
    previous: str | None = None
    last_full: str | None = None
    current_item: str | None = None
    for run_id, item, backup_type, ended, ids in conn.execute(_ITEM_SQL, (set_name,)):
        if item != current_item:
            previous = last_full = None
            current_item = item
        version_id = f"{run_id}:{item}"
        needs = _item_needs(backup_type, previous, last_full)
        versions.append(
            Version(version_id, f"{set_name}/{item}", backup_type, from_epoch(ended), needs)
        )
        artifacts[version_id] = [int(i) for i in str(ids).split(",")]
        if backup_type != "copy":
            previous = version_id
        if backup_type == "full":
            last_full = version_id
    return versions, artifacts


def _item_needs(backup_type: str, previous: str | None, last_full: str | None) -> tuple[str, ...]:
    if backup_type == "incremental" and previous:
        return (previous,)
    if backup_type == "differential" and last_full:
        return (last_full,)
    return ()


def apply(catalog: Catalog, plans: list[SetPlan], at: datetime) -> int:
    """Mark every expiring version's artifacts expired, in one transaction."""
    ids: list[int] = []
    for set_plan in plans:
        _guard(set_plan)
        for decision in set_plan.expiring():
            ids.extend(set_plan.artifacts.get(decision.id, []))
    with transaction(catalog.conn):
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
