"""Chain selection: which backups of one log stream reach a target, and how far.

A restore is a base (a full backup: database + logs, Log Required ``lo-hi``) followed by an
unbroken run of log generations from any source (incremental and differential log
backups, then the logs still on the server), replayed up to a generation whose close time
is at or before the target. The chooser works on generations, not on backup types, so a
copy in the middle of a chain, a differential after incrementals, or a gap in archived
logs that the server's own logs cover all fall out of one rule.

Rules (research/exchange-and-winrm.md §1.3):

* The base is the newest non-expired *full* at or before the target: any older full can
  only reach later points through the same generations. A copy is a base only when no
  full exists (it is meant for tests, and says so).
* Log sources must carry the base's log signature (logs of another stream or epoch never
  replay).
* The recoverable point is the latest known point (a backup's end, or a live log's close
  time) at or before the target that the unbroken generations reach.
* If a known point at or before the target lies beyond missing generations, the target is
  inside a gap: refuse with the gap and the nearest recoverable points on both sides.
* Nothing newer than needed: the cover stops at the recoverable point's generation, and
  a source that runs past it is trimmed (``remove-logs-after``).
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import itemgetter
from typing import Literal

from dr.errors import ArtifactExpired, ForeignLog, LogGap, NoFullBefore
from dr.exchange.rules import LogRange, gens
from dr.planner.facts import BackupVersion, LiveLogs, PlanReporter
from dr.suggest import iso, suggest

SourceKind = Literal["incremental", "differential", "live"]


@dataclass(frozen=True)
class LogSource:
    """A run of generations the restore may replay: a log backup, or the live logs."""

    id: str
    kind: SourceKind
    logs: LogRange
    at: datetime
    points: tuple[tuple[int, datetime], ...]
    size_bytes: int = 0
    current: int | None = None  # live logs: the generation that is in Enn.log
    media: str = ""  # a log backup's NTBackup media file (BackupVersion.media)

    @property
    def first(self) -> int:
        return self.logs.first

    @property
    def last(self) -> int:
        return self.logs.last


@dataclass(frozen=True)
class Barrier:
    """Generations ``generation``..``last`` are held but cannot be replayed, and why."""

    generation: int
    last: int
    source: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class Chain:
    """The backups chosen for one stream and what they reach."""

    stream: str
    base: BackupVersion
    base_gen: int | None
    sources: tuple[LogSource, ...]
    stop_gen: int | None
    point: datetime
    target: datetime | None
    data_loss_seconds: float | None  # None: unknown (point of failure, server logs unreported)
    warnings: tuple[str, ...] = ()

    @property
    def version_ids(self) -> list[str]:
        return [self.base.id] + [s.id for s in self.sources if s.kind != "live"]

    @property
    def live(self) -> LogSource | None:
        return next((s for s in self.sources if s.kind == "live"), None)

    @property
    def trimmed(self) -> bool:
        """A chosen source runs past the stop generation (replay must stop early)."""
        return self.stop_gen is not None and any(s.last > self.stop_gen for s in self.sources)

    @property
    def first_gen(self) -> int | None:
        lows = [d.log_required[0] for d in self.base.databases if d.log_required]
        lows = [lo for lo in lows if lo > 0]
        if lows:
            return min(lows)
        return self.base.logs.first if self.base.logs else self.base_gen


def _stamp(at: datetime | None) -> str:
    return "none" if at is None else at.strftime("%Y-%m-%d %H:%M:%SZ")


def _target(at: datetime | None) -> str:
    """The target as a refusal names it: a plan made without --at aims at the point of
    failure (as far as the logs go)."""
    return "the point of failure (no --at given)" if at is None else _stamp(at)


def _plan_again_at(before: datetime) -> str:
    """The hint's command fragment, ready to paste: ``--at 2024-05-14T11:02:36Z``."""
    return f"plan again with `{suggest('--at', iso(before))}` to accept the loss"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


# --------------------------------------------------------------------------- the base


def _base_candidates(
    versions: Sequence[BackupVersion], target: datetime | None, database: str | None
) -> list[BackupVersion]:
    return [
        v
        for v in versions
        if v.backup_type in ("full", "copy")
        and not v.offline
        and (database is None or v.image(database) is not None)
        and (target is None or v.at <= target)
    ]


def choose_base(
    stream: str,
    versions: Sequence[BackupVersion],
    target: datetime | None,
    database: str | None = None,
) -> tuple[BackupVersion, list[str]]:
    """The base of the restore and the warnings its choice raises (or a refusal)."""
    candidates = _base_candidates(versions, target, database)
    live = [v for v in candidates if not v.expired]
    fulls = [v for v in live if v.backup_type == "full"]
    pool = fulls or [v for v in live if v.backup_type == "copy"]
    if not pool:
        raise _no_base(stream, versions, candidates, target, database)
    base = max(pool, key=lambda v: (v.at, v.id))
    warnings = [
        f"full backup {v.id} ({_stamp(v.at)}) was expired by retention; using an older one"
        for v in candidates
        if v.expired and v.backup_type == "full" and v.at > base.at
    ]
    if base.backup_type == "copy":
        warnings.append(
            f"no full backup of {stream} before the target: using copy backup {base.id} "
            f"({_stamp(base.at)}); copies are meant for tests and diagnosis"
        )
    return base, warnings


def _no_base(
    stream: str,
    versions: Sequence[BackupVersion],
    candidates: list[BackupVersion],
    target: datetime | None,
    database: str | None,
) -> Exception:
    what = database or stream
    if candidates:
        ids = sorted(v.id for v in candidates)
        return ArtifactExpired(
            f"{what}: every full backup at or before {_target(target)} was expired by "
            f"retention ({', '.join(ids)})",
            hint="pick a later target, or restore the expired versions from an offsite copy",
            details={
                "stream": stream,
                "database": database,
                "expired": ids,
                "target": _iso(target),
            },
        )
    without = [] if database is None else [
        v.id
        for v in versions
        if v.backup_type in ("full", "copy") and not v.offline and not v.expired
        and (target is None or v.at <= target)
    ]  # fmt: skip
    if without:  # fulls there are, but none holds this database
        return NoFullBefore(
            f"{what}: no full backup at or before {_target(target)} holds this database "
            f"(the fulls of {stream} there: {', '.join(sorted(without)[-3:])})",
            hint="check the database's name in the inventory against the backup's contents "
            "(`dr catalog list`), or back the database up",
            details={"stream": stream, "database": database, "target": _iso(target),
                     "fulls_without_it": sorted(without)},
        )  # fmt: skip
    later = sorted(
        (v for v in versions if v.backup_type == "full" and not v.expired and not v.offline),
        key=lambda v: v.at,
    )
    after = later[0].at if later else None
    return NoFullBefore(
        f"{what}: no full backup at or before {_target(target)}; "
        + (f"the first full after it is {_stamp(after)}" if after else "there is none at all"),
        hint="pick a target at or after the first full backup"
        if after
        else "take a full backup: without one nothing of this database can be restored",
        details={
            "stream": stream,
            "database": database,
            "target": _iso(target),
            "first_full_after": _iso(after),
        },
    )


# --------------------------------------------------------------------------- sources


def _compatible(base: BackupVersion, logs: LogRange) -> bool:
    expected = base.logs.signature if base.logs else None
    return expected is None or logs.signature is None or logs.signature == expected


def log_sources(
    base: BackupVersion, versions: Sequence[BackupVersion], live: LiveLogs | None
) -> list[LogSource]:
    """Every run of generations that may follow the base, sorted by first generation.

    One pass over the stream, each test inline and the sort keyed in C: a year of hourly
    log backups is 8 760 versions, and this loop is most of a plan's time."""
    circular = _circular_since(base, versions)
    since, until = base.at, (circular.at if circular is not None else None)
    expected = base.logs.signature if base.logs else None
    keyed = [
        ((v.logs.first, v.logs.last, v.id), v)
        for v in versions
        if v.at > since
        and v.logs is not None
        and v.backup_type in _LOG_BACKUPS
        and not v.expired
        and (expected is None or v.logs.signature is None or v.logs.signature == expected)
        and (until is None or v.at <= until)
    ]
    keyed.sort(key=itemgetter(0))
    found = [
        LogSource(v.id, v.backup_type, v.logs, v.at, ((v.logs.last, v.at),), v.log_size_bytes,
                  media=v.media)  # type: ignore[arg-type]  # backup_type is one of _LOG_BACKUPS
        for _, v in keyed
    ]  # fmt: skip
    if live is not None and _compatible(base, live.logs):
        usable = _live_source(live)
        if usable is not None:
            insort(found, usable, key=lambda s: (s.first, s.last, s.id))
    return found


_LOG_BACKUPS = frozenset({"incremental", "differential"})


def _live_source(live: LiveLogs) -> LogSource | None:
    """The server's logs as a source: only the generations before the first unusable one,
    and only the points known for them (the listing time is the close time of the last
    listed log, not of the last usable one)."""
    last = live.logs.last if live.unusable_from is None else live.unusable_from - 1
    if live.unusable_from is not None and last < live.logs.first:
        return None
    points = [] if live.unusable_from is not None else [(live.logs.last, live.at)]
    if len(live.ends) == live.logs.last - live.logs.first + 1:
        points += [(live.logs.first + i, at) for i, at in enumerate(live.ends)][
            : last - live.logs.first + 1
        ]
    logs = LogRange(live.logs.prefix, live.logs.first, last, live.logs.signature)
    current = live.current if live.current is not None and live.current <= last else None
    return LogSource(
        f"live:{live.stream}",
        "live",
        logs,
        live.at,
        tuple(sorted(set(points))),
        live.size_bytes,
        current,
    )


def barriers(
    base: BackupVersion, versions: Sequence[BackupVersion], live: LiveLogs | None
) -> list[Barrier]:
    """Every run of generations after the base that is held but cannot be replayed: log
    backups or server logs with another log signature, and the server's logs from the first
    one ``eseutil /ml`` did not pass. They are never replayed, and never dropped silently."""
    expected = base.logs.signature if base.logs else None
    circular = _circular_since(base, versions)
    found = [
        Barrier(v.logs.first, v.logs.last, v.id, v.at, _unusable_backup(v, expected, circular))
        for v in versions
        if v.backup_type in ("incremental", "differential")
        and not v.expired
        and v.logs is not None
        and v.at > base.at
        and (not _compatible(base, v.logs) or _after(circular, v))
    ]
    if live is not None:
        found += _live_barriers(base, live, expected)
    return sorted(found, key=lambda b: (b.generation, b.source))


def _live_barriers(base: BackupVersion, live: LiveLogs, expected: str | None) -> list[Barrier]:
    source = f"the logs on the server (listed {_stamp(live.at)})"
    if not _compatible(base, live.logs):
        reason = _foreign(live.logs, expected)
        return [Barrier(live.logs.first, live.logs.last, source, live.at, reason)]
    if live.unusable_from is None:
        return []
    reason = live.unusable_reason or "eseutil /ml did not pass it"
    return [Barrier(live.unusable_from, live.logs.last, source, live.at, reason)]


def _circular_since(base: BackupVersion, versions: Sequence[BackupVersion]) -> BackupVersion | None:
    """The first backup from the base on that was taken with circular logging on: the logs
    after it were deleted, and no log backup after it follows the base (A8: after circular
    logging is turned off a full must come first). None: circular logging stayed off."""
    found = [v for v in versions if v.circular_logging and v.at >= base.at and not v.expired]
    return min(found, key=lambda v: (v.at, v.id)) if found else None


def _after(circular: BackupVersion | None, v: BackupVersion) -> bool:
    return circular is not None and v.at > circular.at


def _unusable_backup(v: BackupVersion, expected: str | None, circular: BackupVersion | None) -> str:
    if v.logs is not None and expected and v.logs.signature and v.logs.signature != expected:
        return _foreign(v.logs, expected)
    assert circular is not None
    return (
        f"circular logging was on when {circular.id} was taken ({_stamp(circular.at)}), and "
        "no full backup came after it; log backups build on a full taken since (A8)"
    )


def _foreign(logs: LogRange, expected: str | None) -> str:
    return (
        f"log signature {logs.signature!r}, not the stream's {expected!r} (another stream or epoch)"
    )


def reach(base_gen: int, sources: Sequence[LogSource]) -> int:
    """The last generation replayable without a gap, starting after ``base_gen``."""
    current = base_gen
    for source in sources:  # sorted by first generation
        if source.first > current + 1:
            break
        current = max(current, source.last)
    return current


# --------------------------------------------------------------------------- selection


def select_chain(
    stream: str,
    versions: Sequence[BackupVersion],
    live: LiveLogs | None,
    target: datetime | None,
    *,
    database: str | None = None,
    reporter: PlanReporter | None = None,
) -> Chain:
    """The chain that reaches the latest recoverable point at or before ``target``.

    ``target`` None means the point of failure: as far as the known logs go.
    Raises NoFullBefore, ArtifactExpired or LogGap (all NotRecoverable) with the facts.
    """
    reporter = reporter or PlanReporter()
    base, warnings = choose_base(stream, versions, target, database)
    base_gen = base.top_gen
    sources = log_sources(base, versions, live) if base_gen is not None else []
    reached = reach(base_gen, sources) if base_gen is not None else 0
    points = _points(base, sources, target)
    good = [p for p in points if base_gen is None or p[0] <= reached]
    point_gen, point = max(good, key=lambda p: (p[1], p[0]))
    beyond = [p for p in points if base_gen is not None and p[0] > reached]
    inside = _inside_gap(base, versions, sources, reached, target)
    blocker = _blocker(barriers(base, versions, live), reached) if base_gen is not None else None
    if blocker is not None and target is not None and target > point:
        error = _foreign_refusal(stream, versions, blocker, point, target, database)
        reporter.refused(stream, error.message)
        raise error
    if beyond or (not base.circular_logging and inside):
        assert base_gen is not None
        error = _gap(stream, versions, sources, reached, point, target, database)
        reporter.refused(stream, error.message)
        raise error
    if blocker is not None:
        warnings.append(_stops_before(blocker, point))
    cover = _restore_cover(base_gen, point_gen, sources, point) if base_gen is not None else []
    warnings += _chain_warnings(base, cover, point, target, live)
    chain = Chain(
        stream=stream,
        base=base,
        base_gen=base_gen,
        sources=tuple(cover),
        stop_gen=point_gen if cover else base_gen,
        point=point,
        target=target,
        data_loss_seconds=_loss(point, target, sources, live),
        warnings=tuple(warnings),
    )
    reporter.chain_chosen(stream, chain.version_ids, point)
    return chain


def _inside_gap(
    base: BackupVersion,
    versions: Sequence[BackupVersion],
    sources: Sequence[LogSource],
    reached: int,
    target: datetime | None,
) -> bool:
    """True when the target falls in the time a missing stretch of generations covers.

    The last replayable generation was closed at some time (the base's own point counts);
    the first generation after the gap that anything holds — a log backup, the server's
    logs, or a later full or copy that closes the gap — was closed later. (A base taken
    with circular logging on has no logs by design; that case is a warning, not a gap.) A
    target between the two lies in time whose logs exist nowhere: restoring "to it" would
    silently stop before it, so it is refused with the gap and the points on both sides,
    and the responder chooses.
    """
    if target is None:
        return False
    after = [at for s in sources if s.first > reached + 1 for _, at in s.points]
    after += [v.at for v in _later_images(base, versions) if v.logs.first > reached + 1]  # type: ignore[union-attr]
    if not after:
        return False
    reached_at = [base.at] + [at for s in sources for gen, at in s.points if gen <= reached]
    return max(reached_at) < target < min(after)


def _later_images(base: BackupVersion, versions: Sequence[BackupVersion]) -> list[BackupVersion]:
    """Fulls and copies after the base that carry logs: they close a gap, not fill it."""
    return [
        v
        for v in versions
        if v.backup_type in ("full", "copy") and not v.expired and v.logs and v.at > base.at
    ]


def _points(
    base: BackupVersion, sources: Sequence[LogSource], target: datetime | None
) -> list[tuple[int, datetime]]:
    """Known (generation, time) points after the base, at or before the target."""
    base_gen = base.top_gen if base.top_gen is not None else 0
    points = [(base_gen, base.at)]
    for source in sources:
        for gen, at in source.points:
            if gen > base_gen and at >= base.at and (target is None or at <= target):
                points.append((gen, at))
    return points


def _until(sources: Sequence[LogSource], point: datetime) -> list[LogSource]:
    """The sources a restore to ``point`` is made of: log backups taken by then, and the
    logs still on the server. The latest differential and the incrementals after it (the
    chain :func:`dr.exchange.rules.direct_needs` describes, which retention keeps), never a
    later backup that happens to hold the same generations."""
    return [s for s in sources if s.kind == "live" or s.at <= point]


def _restore_cover(
    base_gen: int, stop: int, sources: Sequence[LogSource], point: datetime
) -> list[LogSource]:
    """:func:`_cover` from the sources taken by ``point``; from all when they fall short."""
    early = _until(sources, point)
    if reach(base_gen, early) >= stop:
        return _cover(base_gen, stop, early)
    return _cover(base_gen, stop, sources)


def _cover(base_gen: int, stop: int, sources: Sequence[LogSource]) -> list[LogSource]:
    """The fewest sources that cover ``base_gen+1 .. stop``, least overshoot first."""
    chosen: list[LogSource] = []
    current = base_gen
    while current < stop:
        candidates = [s for s in sources if s.first <= current + 1 and s.last > current]
        best = max(
            candidates,
            key=lambda s: (min(s.last, stop), -s.last, s.kind != "live", s.at, s.id),
        )
        chosen.append(best)
        current = best.last
    return chosen


def _loss(
    point: datetime,
    target: datetime | None,
    sources: Sequence[LogSource],
    live: LiveLogs | None,
) -> float | None:
    """Data lost between the recoverable point and the target.

    For the point of failure it is known only when the logs still on the server were
    reported: without them, everything written since the last log backup may be lost, and
    how much that is nobody can say from the backups alone.
    """
    if target is not None:
        return max(0.0, (target - point).total_seconds())
    if live is None:
        return None
    latest = max([point, *(s.at for s in sources), *([live.at] if live else [])])
    return (latest - point).total_seconds()


def _chain_warnings(
    base: BackupVersion,
    cover: Sequence[LogSource],
    point: datetime,
    target: datetime | None,
    live: LiveLogs | None,
) -> list[str]:
    warnings: list[str] = []
    if base.circular_logging and not cover and (target is None or target > point):
        warnings.append(
            f"circular logging was on when {base.id} was taken: its logs were deleted, so the "
            "restore cannot roll forward past it"
        )
    used = next((s for s in cover if s.kind == "live"), None)
    if used is not None:
        warnings.append(
            f"replays logs still on the server ({gens(used.first, used.last)}); "
            "their sequence is verified before replay"
        )
    elif live is None and target is None:
        warnings.append(
            "no logs still on the server were reported: the restore stops at the last log "
            "backup, and the data-loss window is unknown (everything written since then)"
        )
    return warnings


def _blocker(found: Sequence[Barrier], reached: int) -> Barrier | None:
    """The unusable run that holds the first generation replay cannot reach, if any, cut to
    start at that generation (what comes before it is replayed from usable sources)."""
    stuck = reached + 1
    hit = next((b for b in found if b.generation <= stuck <= b.last), None)
    return None if hit is None else replace(hit, generation=stuck)


def _stops_before(blocker: Barrier, point: datetime) -> str:
    return (
        f"the recoverable point stops at {_stamp(point)}, before generation "
        f"{blocker.generation} (0x{blocker.generation:X}) in {blocker.source}, which cannot be "
        f"replayed: {blocker.reason}"
    )


def _foreign_refusal(
    stream: str,
    versions: Sequence[BackupVersion],
    blocker: Barrier,
    before: datetime,
    target: datetime,
    database: str | None,
) -> ForeignLog:
    after = _next_full(versions, before, database)
    gen = blocker.generation
    return ForeignLog(
        f"{database or stream}: the target {_target(target)} lies past generation {gen} "
        f"(0x{gen:X}) in {blocker.source}, which cannot be replayed: {blocker.reason}; "
        f"nearest recoverable points: {_stamp(before)} before it, {_stamp(after)} after it",
        hint=f"{_plan_again_at(before)}, or find the stream's "
        "own logs for that generation (eseutil /ml Enn in the log folder checks them)",
        details={
            "stream": stream,
            "database": database,
            "first_missing": gen,
            "last_missing": blocker.last,
            "foreign_generation": gen,
            "source": blocker.source,
            "reason": blocker.reason,
            "nearest_before": _iso(before),
            "nearest_after": _iso(after),
            "target": _iso(target),
        },
    )


def _next_full(
    versions: Sequence[BackupVersion], before: datetime, database: str | None
) -> datetime | None:
    later = sorted(
        v.at
        for v in versions
        if v.backup_type == "full"
        and not v.expired
        and not v.offline
        and v.at > before
        and (database is None or v.image(database) is not None)
    )
    return later[0] if later else None


def _gap(
    stream: str,
    versions: Sequence[BackupVersion],
    sources: Sequence[LogSource],
    reached: int,
    before: datetime,
    target: datetime | None,
    database: str | None,
) -> LogGap:
    first = reached + 1
    held = [s.first for s in sources if s.first > first]
    held += [v.logs.first for v in versions if v.logs and not v.expired and v.logs.first > first]
    last = min(held) - 1
    after = _next_full(versions, before, database)
    expired = sorted(
        v.id
        for v in versions
        if v.expired and v.logs and v.logs.last >= first and v.logs.first <= last
    )
    prefix = sources[0].logs.prefix if sources else ""
    cause = f"; expired by retention: {', '.join(expired)}" if expired else ""
    return LogGap(
        f"{database or stream}: log {prefix} {gens(first, last)} missing{cause}; nearest "
        f"recoverable points: {_stamp(before)} before the gap, {_stamp(after)} after it",
        hint=f"{_plan_again_at(before)}, or find the missing logs",
        details={
            "stream": stream,
            "database": database,
            "prefix": prefix,
            "first_missing": first,
            "last_missing": last,
            "nearest_before": _iso(before),
            "nearest_after": _iso(after),
            "expired": expired,
            "target": _iso(target),
        },
    )
