"""Which backups are due (FEATURES A2): pure, given the sets and when each last ran.

A set carries several schedules; each says how often a backup of one type runs:

* ``every: day`` at ``HH:MM`` and ``every: week`` on a ``weekday`` at ``HH:MM`` are *slots*
  on the wall clock of the inventory's ``timezone`` (UTC unless it declares one). A slot
  schedule is due when its most recent slot at or before T has no successful run of that
  type at or after it. A slot time skipped by a daylight-saving change falls an hour later;
  a slot time that happens twice counts at its first occurrence.
* ``every: minutes`` (log backups every 15 minutes, say) is an *interval* from the last run:
  due when no run of that type ended in the last N minutes.

A schedule that never ran is due. The caller supplies the last successful run per
``(set name, backup type)``, so the catalog, an import or a test can provide it; two
schedules of one set with the same type share it, which is what the backup itself does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dr.errors import ParameterError
from dr.model.sets import WEEKDAYS, BackupSet, Schedule

LastRuns = Mapping[tuple[str, str], datetime]


@dataclass(frozen=True)
class ScheduleStatus:
    """One schedule of one set at time T: due or not, and when it is (next) due."""

    set_name: str
    host: str
    schedule: int
    every: str
    backup_type: str
    description: str
    last_run: datetime | None
    due: bool
    next_due: datetime
    """If due, when it became due (at or before T); otherwise the next time it will be."""

    def to_dict(self) -> dict[str, object]:
        return {
            "set": self.set_name,
            "host": self.host,
            "schedule": self.schedule,
            "every": self.every,
            "backup_type": self.backup_type,
            "description": self.description,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "due": self.due,
            "next_due": self.next_due.isoformat(),
        }


def describe(schedule: Schedule) -> str:
    """``daily 22:00``, ``weekly sun 04:00``, ``every 15 min``: how the CLI shows a schedule."""
    if schedule.every == "minutes":
        return f"every {schedule.minutes} min"
    if schedule.every == "week":
        return f"weekly {schedule.weekday} {schedule.at}"
    return f"daily {schedule.at}"


def _clock(schedule: Schedule) -> time:
    if schedule.at is None:
        raise ParameterError(f"a {describe(schedule)} schedule has no time of day (at: HH:MM)")
    hours, minutes = schedule.at.split(":")
    return time(int(hours), int(minutes))


def _slot(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def last_slot(schedule: Schedule, at: datetime, zone: ZoneInfo) -> datetime:
    """The most recent day / week slot at or before ``at`` (UTC)."""
    clock = _clock(schedule)
    today = at.astimezone(zone).date()
    step = 1
    if schedule.every == "week":
        if schedule.weekday is None:
            raise ParameterError("a weekly schedule has no weekday (mon ... sun)")
        step = 7
        today -= timedelta(days=(today.weekday() - WEEKDAYS.index(schedule.weekday)) % 7)
    slot = _slot(today, clock, zone)
    if slot > at:
        slot = _slot(today - timedelta(days=step), clock, zone)
    return slot


def next_slot(schedule: Schedule, at: datetime, zone: ZoneInfo) -> datetime:
    """The first day / week slot strictly after ``at`` (UTC)."""
    step = 7 if schedule.every == "week" else 1
    previous = last_slot(schedule, at, zone)
    local = previous.astimezone(zone).date()
    for days in (step, 2 * step):  # two steps: a DST shift can keep one step at or before `at`
        candidate = _slot(local + timedelta(days=days), _clock(schedule), zone)
        if candidate > at:
            return candidate
    raise AssertionError("unreachable: two steps always pass `at`")  # pragma: no cover


def status(
    bset: BackupSet, index: int, last_run: datetime | None, at: datetime, zone: ZoneInfo
) -> ScheduleStatus:
    """Whether schedule ``index`` of ``bset`` is due at ``at``, and when it is (next) due."""
    schedule = bset.schedules[index]
    if schedule.every == "minutes":
        if schedule.minutes is None:
            raise ParameterError(f"set {bset.name!r}: every: minutes needs minutes: N")
        interval = timedelta(minutes=schedule.minutes)
        next_due = at if last_run is None else last_run + interval
        due = next_due <= at
    else:
        slot = last_slot(schedule, at, zone)
        due = last_run is None or last_run < slot
        next_due = slot if due else next_slot(schedule, at, zone)
    return ScheduleStatus(
        set_name=bset.name,
        host=bset.host,
        schedule=index,
        every=schedule.every,
        backup_type=schedule.backup_type,
        description=describe(schedule),
        last_run=last_run,
        due=due,
        next_due=next_due,
    )


def schedule_statuses(
    sets: Sequence[BackupSet], last_runs: LastRuns, at: datetime, timezone: str = "UTC"
) -> list[ScheduleStatus]:
    """Every schedule of every set at ``at``: due ones first (longest overdue first)."""
    if at.tzinfo is None:
        raise ParameterError("the time to check has no time zone", hint="add Z or +01:00")
    at = at.astimezone(UTC)
    zone = ZoneInfo(timezone)
    found = [
        status(bset, index, last_runs.get((bset.name, schedule.backup_type)), at, zone)
        for bset in sets
        for index, schedule in enumerate(bset.schedules)
    ]
    return sorted(found, key=lambda s: (not s.due, s.next_due, s.set_name, s.schedule))


def last_runs_for_schedules(
    sets: Sequence[BackupSet], ended: Mapping[tuple[str, str], datetime]
) -> dict[tuple[str, str], datetime]:
    """The last run each schedule is compared with, from the newest end per (set, type).

    An Exchange set's schedule is met only by a run of its own type: a full, an
    incremental log backup and a differential are different Exchange operations. Every
    other set keeps in-file delta chains (FEATURES A5): its scheduled backup is recorded as
    a full, ``[I]`` or ``[D]`` as the delta engine decides, so the newest run of any type
    is the schedule's last run.
    """
    found: dict[tuple[str, str], datetime] = {}
    for bset in sets:
        newest = max((at for (name, _), at in ended.items() if name == bset.name), default=None)
        for schedule in bset.schedules:
            key = (bset.name, schedule.backup_type)
            value = ended.get(key) if bset.type == "exchange" else newest
            if value is not None:
                found[key] = value
    return found


def scheduled_sets(
    declared: Sequence[BackupSet], registered: Sequence[BackupSet]
) -> list[BackupSet]:
    """The sets whose schedules count: the inventory's, then those only the catalog has.

    ``dr set add`` registers a set in the catalog and nowhere else; it is scheduled like a
    declared one. A set the inventory declares is taken as the inventory has it (the
    catalog's copy may lag behind an edit of the file until the next sync).
    """
    names = {s.name for s in declared}
    extra = sorted((s for s in registered if s.name not in names), key=lambda s: s.name)
    return [*declared, *extra]


def due_backups(
    sets: Sequence[BackupSet], last_runs: LastRuns, at: datetime, timezone: str = "UTC"
) -> list[ScheduleStatus]:
    """Only the schedules that are due at ``at``."""
    return [s for s in schedule_statuses(sets, last_runs, at, timezone) if s.due]


def parse_time(text: str, timezone: str = "UTC") -> datetime:
    """An ISO 8601 time from the command line; without an offset it is read in ``timezone``."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ParameterError(
            f"--at {text!r} is not an ISO 8601 time",
            hint="write e.g. 2024-05-01T22:00:00Z or 2024-05-01T22:00+02:00",
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value.astimezone(UTC)
