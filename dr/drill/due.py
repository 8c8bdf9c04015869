"""When each drill is due: pure, no I/O (the CLI supplies the records and what changed).

Why slots: a drill falls due at a slot ``epoch + offset + n·period``, where the offset is a
hash of the database key, so five hundred databases with the same period are spread over
it instead of all falling due on the same day. After a passed drill at ``L`` the next slot
is the one in ``(L, L + period]`` — there is always exactly one — so a database drilled
whenever it is due never goes longer than its period without a passed drill.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dr.drill.history import DrillRecord

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Subject:
    """What is drilled: a database (``SERVER/SG/DB``) or a scenario, with its period."""

    kind: str
    key: str
    period_seconds: float
    changed: str | None = None  # why the last passed drill no longer proves it (drift.py)


@dataclass(frozen=True)
class Due:
    """The verdict for one subject on one day, and why."""

    kind: str
    key: str
    due: bool
    overdue: bool
    last_success: datetime | None
    next_date: datetime
    deadline: datetime | None
    why: str
    changed_since_last_test: bool = False


def offset_seconds(key: str, period_seconds: float) -> float:
    """A deterministic place in the period for ``key`` (whole seconds)."""
    h = int.from_bytes(hashlib.sha256(key.lower().encode()).digest()[:8], "big")
    return float(h % max(int(period_seconds), 1))


def next_slot(key: str, period_seconds: float, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (so at most one period later)."""
    base = EPOCH + timedelta(seconds=offset_seconds(key, period_seconds))
    elapsed = (after - base).total_seconds()
    n = int(elapsed // period_seconds) + 1
    slot = base + timedelta(seconds=n * period_seconds)
    while slot <= after:  # float rounding at a boundary
        slot += timedelta(seconds=period_seconds)
    return slot


def last_passed(records: Iterable[DrillRecord], kind: str, key: str) -> DrillRecord | None:
    """The latest passed drill of this subject (by end time), or None."""
    best: DrillRecord | None = None
    for r in records:
        if r.verdict != "passed" or _subject_key(r) != (kind, key.lower()):
            continue
        if best is None or r.ended_at > best.ended_at:
            best = r
    return best


def _subject_key(record: DrillRecord) -> tuple[str, str]:
    name = record.database if record.kind == "database" else record.scenario
    return record.kind, (name or "").lower()


def index_passed(records: Iterable[DrillRecord]) -> dict[tuple[str, str], DrillRecord]:
    """The latest passed drill per subject, in one pass (for 500 databases × years)."""
    out: dict[tuple[str, str], DrillRecord] = {}
    for r in records:
        if r.verdict != "passed":
            continue
        k = _subject_key(r)
        if k not in out or r.ended_at > out[k].ended_at:
            out[k] = r
    return out


def due_one(subject: Subject, last: DrillRecord | None, at: datetime) -> Due:
    """Due, overdue, next date and why for one subject at ``at``."""
    if last is None:
        return Due(subject.kind, subject.key, True, True, None, at, None, "never drilled")
    deadline = last.ended_at + timedelta(seconds=subject.period_seconds)
    slot = next_slot(subject.key, subject.period_seconds, last.ended_at)
    if subject.changed:
        why = f"changed since last test: {subject.changed}"
        return Due(
            subject.kind, subject.key, True, at > deadline, last.ended_at, at, deadline, why, True
        )
    if at > deadline:
        why = (
            f"overdue: last passed drill {last.ended_at:%Y-%m-%d}, period ended {deadline:%Y-%m-%d}"
        )
        return Due(subject.kind, subject.key, True, True, last.ended_at, slot, deadline, why)
    if at >= slot:
        why = f"its slot {slot:%Y-%m-%d} has come (deadline {deadline:%Y-%m-%d})"
        return Due(subject.kind, subject.key, True, False, last.ended_at, slot, deadline, why)
    why = f"next slot {slot:%Y-%m-%d}"
    return Due(subject.kind, subject.key, False, False, last.ended_at, slot, deadline, why)


def due_all(subjects: Iterable[Subject], records: Iterable[DrillRecord], at: datetime) -> list[Due]:
    """Every subject's verdict; overdue first, then due, then by next date."""
    passed = index_passed(records)
    out = [due_one(s, passed.get((s.kind, s.key.lower())), at) for s in subjects]
    return sorted(out, key=lambda d: (not d.overdue, not d.due, d.next_date, d.key))
