"""Which backup versions to keep and which may expire, with the reason for every decision.

The policy (FEATURES A6, seeds/000 §2): keep every version younger than ``keep_days``;
between ``keep_days`` and ``keep_weekly_days`` keep one restorable point per ISO week; between
``keep_weekly_days`` and ``keep_monthly_days`` one per month; always keep at least
``min_fulls`` fulls. Then comes the rule that makes retention safe: everything a kept
version needs to be restored is kept too, transitively — the vendor's "the backup server is
not allowed to remove the intermediary files", pgBackRest's and WAL-G's FIND_FULL
(research/backup-engines.md §5.6). No kept version is ever orphaned.

A week's (or month's) point is its latest full or differential: each is restorable from
at most two versions. A week with neither falls back to its latest incremental (whose
chain is then kept whole); copies are never points, they are not meant for recovery.

Pure and linear-ish: one sort per chain and one walk over the needs graph.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from dr.errors import ParameterError
from dr.exchange.rules import BackupType
from dr.model.sets import RetentionPolicy

_MAX_NAMED_DEPENDENTS = 3
_POINT_PREFERENCE: dict[str, int] = {"full": 2, "differential": 2, "incremental": 1}


class Version(NamedTuple):
    """One stored version: ``needs`` are the ids it directly needs to be restored.

    A named tuple rather than a dataclass: a catalog plans a million of them, and a tuple
    is built several times faster while reading the same (``v.id``, ``v.needs``).
    """

    id: str
    chain: str
    backup_type: BackupType
    at: datetime
    needs: tuple[str, ...]


class Decision(NamedTuple):
    """Keep or expire one version, and why (shown to the operator and kept as evidence)."""

    id: str
    keep: bool
    reasons: tuple[str, ...]


class _Book:
    """The input, indexed once, and the decisions gathered so far, per version index.

    Times are held as UTC seconds and days so the policy compares floats, not datetimes,
    and a period label is computed once per day rather than once per version.
    """

    def __init__(self, versions: Sequence[Version]) -> None:
        self.versions = versions
        self.index_of = {version.id: i for i, version in enumerate(versions)}
        if len(self.index_of) < len(versions):
            seen: set[str] = set()
            for version in versions:
                if version.id in seen:
                    raise ParameterError(
                        f"version id {version.id!r} appears twice in the retention input"
                    )
                seen.add(version.id)
        for version in versions:
            if version.at.tzinfo is None:
                _check_time(version.at, f"the time of version {version.id}")
        self.seconds: list[float] = [version.at.timestamp() for version in versions]
        self.keep = [False] * len(versions)
        self.reasons: list[list[str]] = [[] for _ in versions]

    def mark(self, index: int, reason: str) -> None:
        self.keep[index] = True
        self.reasons[index].append(reason)

    def note(self, index: int, reason: str) -> None:
        self.reasons[index].append(reason)

    def chains(self) -> dict[str, list[int]]:
        """Version indices per chain, oldest first."""
        chains: dict[str, list[int]] = defaultdict(list)
        for i, version in enumerate(self.versions):
            chains[version.chain].append(i)
        for members in chains.values():
            members.sort(key=self.seconds.__getitem__)
        return chains


def plan_retention(
    versions: Sequence[Version], policy: RetentionPolicy, at: datetime
) -> list[Decision]:
    """A decision for every version, in the order given.

    Never expires a version that a kept version needs, directly or transitively.
    """
    _check_time(at, "the retention time")
    book = _Book(versions)
    chains = book.chains()
    now = at.timestamp()
    for members in chains.values():
        _apply_policy(book, members, policy, now)
    dependents: dict[int, list[int]] = defaultdict(list)
    _close_over_needs(book, _kept(book), dependents)
    added = [i for m in chains.values() for i in _keep_min_fulls(book, m, policy)]
    _close_over_needs(book, added, dependents)
    for j, users in dependents.items():
        _explain_needed(book, j, users)
    new, keep, reasons = tuple.__new__, book.keep, book.reasons
    return [new(Decision, (v[0], keep[i], tuple(reasons[i]))) for i, v in enumerate(versions)]


def _check_time(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ParameterError(f"{what} ({value.isoformat()}) has no time zone")


_DAY = 86400.0


@lru_cache(maxsize=4096)
def _iso_week(day: int) -> str:
    year, week, _ = datetime.fromtimestamp(day * _DAY, UTC).isocalendar()
    return f"{year}-W{week:02d}"


@lru_cache(maxsize=4096)
def _month(day: int) -> str:
    return datetime.fromtimestamp(day * _DAY, UTC).strftime("%Y-%m")


def _apply_policy(book: _Book, members: list[int], policy: RetentionPolicy, now: float) -> None:
    """The time-based part: the window, then weekly and monthly points."""
    window = policy.keep_days * _DAY
    weekly = policy.keep_weekly_days * _DAY
    monthly = policy.keep_monthly_days * _DAY
    ages = {i: now - book.seconds[i] for i in members}
    inside = f"inside the {policy.keep_days}-day window"
    beyond = f"older than the {policy.keep_monthly_days}-day monthly window"
    for i, age in ages.items():
        if age <= window:
            book.mark(i, inside)
        elif age > max(weekly, monthly):
            book.note(i, beyond)
    weeks = _Span("weekly", _iso_week, f"older than the {policy.keep_days}-day window")
    weeks.apply(book, [i for i in members if ages[i] <= weekly], window, ages)
    months = _Span("monthly", _month, f"older than the {policy.keep_weekly_days}-day weekly window")
    months.apply(book, [i for i in members if ages[i] <= monthly], max(window, weekly), ages)


@dataclass(frozen=True)
class _Span:
    """One point per period (ISO week, month) over the versions younger than the span's end.

    The period's point is chosen among all of its versions, also those in a younger zone,
    so a period that straddles two zones is not given a second point.
    """

    label: str
    period_of: Callable[[int], str]
    older: str

    def apply(
        self, book: _Book, span: list[int], zone_start: float, ages: dict[int, float]
    ) -> None:
        periods: dict[str, list[int]] = defaultdict(list)
        for i in span:
            periods[self.period_of(int(book.seconds[i] // _DAY))].append(i)
        for period, group in periods.items():
            point = _best_point(book, group)
            if point is not None and ages[point] > zone_start:
                book.mark(point, f"{self.label} point {period}")
            why_not = self._why_not(book, point, period)
            for i in group:
                if i != point and ages[i] > zone_start and not book.keep[i]:
                    book.note(i, why_not)

    def _why_not(self, book: _Book, point: int | None, period: str) -> str:
        if point is None:
            return f"{self.older}; {period} has no restorable point"
        return f"{self.older}; {book.versions[point].id} is the {self.label} point {period}"


def _best_point(book: _Book, group: list[int]) -> int | None:
    """The latest full or differential of the group, else its latest incremental."""
    best: int | None = None
    best_key: tuple[int, float] | None = None
    for i in group:
        rank = _POINT_PREFERENCE.get(book.versions[i].backup_type, 0)
        if rank == 0:
            continue
        key = (rank, book.seconds[i])
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best


def _kept(book: _Book) -> list[int]:
    return [i for i, kept in enumerate(book.keep) if kept]


def _close_over_needs(book: _Book, start: list[int], dependents: dict[int, list[int]]) -> None:
    """Keep every version a kept version needs, transitively (each kept version walked once).

    ``start`` are versions just marked kept; versions kept earlier were walked already.
    """
    pending = list(start)
    while pending:
        i = pending.pop()
        for need in book.versions[i].needs:
            j = book.index_of.get(need)
            if j is None:
                book.note(i, f"needs {need}, which is not among the versions")
                continue
            dependents[j].append(i)
            if not book.keep[j]:
                book.keep[j] = True
                pending.append(j)


def _explain_needed(book: _Book, j: int, users: list[int]) -> None:
    if len(users) > 1:
        users = sorted(set(users), key=book.seconds.__getitem__)
    named = users[:_MAX_NAMED_DEPENDENTS]
    for u in named:
        book.note(j, f"needed by {book.versions[u].id} (kept)")
    if len(users) > len(named):
        more = len(users) - len(named)
        book.note(j, f"needed by {more} more kept version{'s' if more > 1 else ''}")


def _keep_min_fulls(book: _Book, members: list[int], policy: RetentionPolicy) -> list[int]:
    """At least ``min_fulls`` fulls per chain survive, the newest ones first."""
    fulls = [i for i in members if book.versions[i].backup_type == "full"]
    missing = policy.min_fulls - sum(1 for i in fulls if book.keep[i])
    added: list[int] = []
    for i in reversed(fulls):
        if len(added) >= missing:
            break
        if not book.keep[i]:
            book.mark(i, f"one of the {policy.min_fulls} newest fulls kept (min_fulls)")
            added.append(i)
    return added
