"""What each database can be restored to, as `dr info` shows it (like pgBackRest's ``info``).

Per database: the recoverable window (the oldest and the newest point a plan can reach),
the last backup of each kind, and whether its chain is whole. Every answer comes from the
planner's own rules (:func:`dr.planner.chain.select_chain` on the same facts a plan reads)
and from the dependency graph's gap finder (:func:`dr.graph.gaps`), so `dr info` never
promises a point that `dr plan` would refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dr.errors import NotRecoverable
from dr.graph import GraphGap, gaps
from dr.model.refs import DatabaseRef, all_databases, resolve_database
from dr.planner.chain import select_chain
from dr.planner.facts import BackupVersion, FactsProvider

KINDS = ("full", "incremental", "differential", "copy")


@dataclass(frozen=True)
class DatabaseInfo:
    """One database's window, last backups and chain state."""

    database: str
    stream: str
    oldest: datetime | None
    newest: datetime | None
    last: dict[str, BackupVersion]
    problems: tuple[str, ...] = field(default=())

    @property
    def whole(self) -> bool:
        return not self.problems and self.newest is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "stream": self.stream,
            "oldest": _iso(self.oldest),
            "newest": _iso(self.newest),
            "chain_whole": self.whole,
            "problems": list(self.problems),
            "last_backup": {
                kind: {"run": v.id, "at": v.at.isoformat(), "logs": _logs(v)}
                for kind, v in self.last.items()
            },
        }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _logs(v: BackupVersion) -> str | None:
    return None if v.logs is None else f"{v.logs.first}-{v.logs.last}"


def info(provider: FactsProvider, db: str | None = None) -> list[DatabaseInfo]:
    """Every database of the inventory (or the one ``db`` names), in inventory order."""
    inv = provider.inventory()
    refs = [resolve_database(inv, db)] if db else all_databases(inv)
    found = gaps(provider)
    return [database_info(provider, ref, found) for ref in refs]


def database_info(
    provider: FactsProvider, ref: DatabaseRef, found: Sequence[GraphGap] = ()
) -> DatabaseInfo:
    stream = ref.storage_group_key
    versions = list(provider.stream_backups(stream))
    holding = [v for v in versions if not v.expired and _holds(v, ref.key)]
    problems = [g.message for g in found if g.details.get("stream") == stream]
    newest, refused = _reach(provider, stream, versions, None, ref.key)
    if refused:
        problems.append(refused)
    oldest = None
    bases = [v for v in holding if v.backup_type in ("full", "copy")]
    if bases:
        first = min(bases, key=lambda v: (v.at, v.id))
        oldest, refused = _reach(provider, stream, versions, first.at, ref.key)
        if refused and refused not in problems:
            problems.append(refused)
    last = {k: max(vs, key=lambda v: (v.at, v.id)) for k in KINDS if (vs := _of(versions, k))}
    return DatabaseInfo(ref.key, stream, oldest, newest, last, tuple(problems))


def _holds(v: BackupVersion, key: str) -> bool:
    """A log backup belongs to every database of its stream; a full or copy to those in it."""
    return v.backup_type in ("incremental", "differential") or v.image(key) is not None


def _of(versions: Sequence[BackupVersion], kind: str) -> list[BackupVersion]:
    return [v for v in versions if v.backup_type == kind and not v.expired]


def _reach(
    provider: FactsProvider,
    stream: str,
    versions: Sequence[BackupVersion],
    target: datetime | None,
    key: str,
) -> tuple[datetime | None, str | None]:
    """The point a plan aimed at ``target`` reaches, or the planner's refusal."""
    try:
        chain = select_chain(stream, versions, provider.live_logs(stream), target, database=key)
    except NotRecoverable as exc:
        return None, exc.message
    return chain.point, None
