"""The vendor-style listing of what is stored (FEATURES A7).

Per set and item, every version newest first, marked full / ``[I]`` / ``[D]`` (and
``[C]`` for a copy), with its original size, date, stored size and how much storage saved::

    [I] SystemState.bkf     26.45M  2009/08/31 07:02   6.11M  [76%]

Aggregation happens in SQL (one row per run and item) over the ``runs_by_set`` and
``artifacts_by_run`` indexes, so one set of a catalog with a million artifacts lists fast.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from dr.catalog.model import from_epoch, to_epoch

MARKERS = {"full": "", "incremental": "[I]", "differential": "[D]", "copy": "[C]"}

_SQL = """
SELECT r.set_name, a.storage_group, a.name, a.kind, a.backup_type, r.ended, r.id,
       SUM(a.size), SUM(a.stored_size), MIN(a.log_prefix), MIN(a.first_gen), MAX(a.last_gen)
FROM runs r JOIN artifacts a ON a.run_id = r.id
WHERE r.status != 'failed' AND a.expired = 0 {filters}
GROUP BY r.id, a.storage_group, a.name
ORDER BY r.set_name, a.storage_group, a.name, r.ended DESC, r.id DESC
"""
#: The newest N versions per item: number each item's versions newest first, keep 1..N.
_LAST_SQL = """
SELECT set_name, storage_group, name, kind, backup_type, ended, id, size, stored, prefix,
       first, last
FROM (
    SELECT r.set_name, a.storage_group, a.name, a.kind, a.backup_type, r.ended, r.id,
           SUM(a.size) AS size, SUM(a.stored_size) AS stored, MIN(a.log_prefix) AS prefix,
           MIN(a.first_gen) AS first, MAX(a.last_gen) AS last,
           ROW_NUMBER() OVER (PARTITION BY r.set_name, a.storage_group, a.name
                              ORDER BY r.ended DESC, r.id DESC) AS newest
    FROM runs r JOIN artifacts a ON a.run_id = r.id
    WHERE r.status != 'failed' AND a.expired = 0 {filters}
    GROUP BY r.id, a.storage_group, a.name
)
WHERE newest <= ?
ORDER BY set_name, storage_group, name, ended DESC, id DESC
"""


@dataclass(frozen=True)
class ListingRow:
    """One stored version of one item."""

    set_name: str
    item: str
    kind: str
    backup_type: str
    at: datetime
    run_id: int
    size: int
    stored_size: int
    storage_group: str | None = None
    generations: str | None = None

    @property
    def marker(self) -> str:
        return MARKERS.get(self.backup_type, "")

    @property
    def saved_percent(self) -> int:
        """How much storage saved against the original, as the vendor shows it ([76%])."""
        if self.size <= 0:
            return 0
        return max(0, int(100 * (1 - self.stored_size / self.size)))

    def to_dict(self) -> dict[str, object]:
        return {
            "set": self.set_name,
            "item": self.item,
            "kind": self.kind,
            "storage_group": self.storage_group,
            "backup_type": self.backup_type,
            "marker": self.marker,
            "at": self.at.isoformat(),
            "run_id": self.run_id,
            "size": self.size,
            "stored_size": self.stored_size,
            "saved_percent": self.saved_percent,
            "generations": self.generations,
        }


def listing(
    conn: sqlite3.Connection,
    set_name: str | None = None,
    host: str | None = None,
    *,
    last: int | None = None,
    since: datetime | None = None,
) -> list[ListingRow]:
    """Every stored version, newest first per item; ``last`` keeps the newest N per item,
    ``since`` only versions that ended at or after it."""
    filters, args = "", []
    if set_name is not None:
        filters += " AND r.set_name = ?"
        args.append(set_name)
    if host is not None:
        filters += " AND r.host = ? COLLATE NOCASE"
        args.append(host)
    if since is not None:
        filters += " AND r.ended >= ?"
        args.append(to_epoch(since))
    sql = (_SQL if last is None else _LAST_SQL).format(filters=filters)
    if last is not None:
        args.append(last)
    return [_row(*row) for row in conn.execute(sql, args).fetchall()]


def _row(
    set_name: str,
    sg: str | None,
    item: str,
    kind: str,
    backup_type: str,
    ended: int,
    run_id: int,
    size: int,
    stored: int,
    prefix: str | None,
    first: int | None,
    last: int | None,
) -> ListingRow:
    gens = None
    if prefix is not None and first is not None and last is not None:
        gens = f"{prefix} 0x{first:X}-0x{last:X}"
    return ListingRow(
        set_name, item, kind, backup_type, from_epoch(ended), run_id, size, stored, sg, gens
    )


def human_size(size: int) -> str:
    """A size as every dr command prints one (``engine.units.size``): 26.4 MiB, 1.2 GiB."""
    from engine.units import size as fmt

    return fmt(size)
