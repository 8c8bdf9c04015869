"""dr.schedule: which backups are due at a time T, and when each is next due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dr.errors import ParameterError
from dr.model.sets import BackupSet, Schedule
from dr.schedule import due_backups, parse_time, schedule_statuses


def bset(*schedules: Schedule, name: str = "ex") -> BackupSet:
    return BackupSet(
        name=name, host="EX2016", type="exchange", covers=["all"], schedules=list(schedules)
    )


DAILY = Schedule(every="day", at="22:00", backup_type="full")
WEEKLY = Schedule(every="week", weekday="sun", at="04:00", backup_type="differential")
LOGS = Schedule(every="minutes", minutes=15, backup_type="incremental")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_never_run_schedules_are_due() -> None:
    due = due_backups([bset(DAILY, WEEKLY, LOGS)], {}, utc("2024-05-01T12:00"))
    assert {s.backup_type for s in due} == {"full", "differential", "incremental"}


def test_daily_slot_due_until_a_run_after_it() -> None:
    at = utc("2024-05-01T22:30")
    (before,) = schedule_statuses([bset(DAILY)], {("ex", "full"): utc("2024-04-30T22:40")}, at)
    assert before.due and before.next_due == utc("2024-05-01T22:00")
    (after,) = schedule_statuses([bset(DAILY)], {("ex", "full"): utc("2024-05-01T22:20")}, at)
    assert not after.due and after.next_due == utc("2024-05-02T22:00")


def test_daily_before_todays_slot_looks_at_yesterdays() -> None:
    at = utc("2024-05-01T08:00")
    (status,) = schedule_statuses([bset(DAILY)], {("ex", "full"): utc("2024-04-30T22:05")}, at)
    assert not status.due and status.next_due == utc("2024-05-01T22:00")


def test_weekly_slot() -> None:
    # 2024-05-01 is a Wednesday; the last Sunday 04:00 slot is 2024-04-28
    at = utc("2024-05-01T12:00")
    last = {("ex", "differential"): utc("2024-04-21T04:10")}
    (status,) = schedule_statuses([bset(WEEKLY)], last, at)
    assert status.due and status.next_due == utc("2024-04-28T04:00")
    last = {("ex", "differential"): utc("2024-04-28T04:10")}
    (status,) = schedule_statuses([bset(WEEKLY)], last, at)
    assert not status.due and status.next_due == utc("2024-05-05T04:00")


def test_periodic_interval_from_the_last_run() -> None:
    last = {("ex", "incremental"): utc("2024-05-01T12:00")}
    (early,) = schedule_statuses([bset(LOGS)], last, utc("2024-05-01T12:14"))
    assert not early.due and early.next_due == utc("2024-05-01T12:15")
    (late,) = schedule_statuses([bset(LOGS)], last, utc("2024-05-01T12:15"))
    assert late.due


def test_slots_follow_the_inventory_time_zone() -> None:
    # 22:00 in Amsterdam is 20:00 UTC in summer (CEST) and 21:00 UTC in winter (CET)
    (summer,) = schedule_statuses([bset(DAILY)], {}, utc("2024-07-01T20:30"), "Europe/Amsterdam")
    assert summer.next_due == utc("2024-07-01T20:00")
    (winter,) = schedule_statuses([bset(DAILY)], {}, utc("2024-01-10T21:30"), "Europe/Amsterdam")
    assert winter.next_due == utc("2024-01-10T21:00")


def test_naive_time_is_refused_by_the_pure_core() -> None:
    with pytest.raises(ParameterError):
        schedule_statuses([bset(DAILY)], {}, datetime(2024, 5, 1, 12, 0))


def test_parse_time() -> None:
    assert parse_time("2024-05-01T22:00Z") == utc("2024-05-01T22:00")
    assert parse_time("2024-05-01T22:00", "Europe/Amsterdam") == utc("2024-05-01T20:00")
    with pytest.raises(ParameterError) as info:
        parse_time("yesterday")
    assert "ISO 8601" in info.value.message


@settings(max_examples=60, deadline=None)
@given(
    at=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
    since=st.integers(min_value=0, max_value=20 * 24 * 60),
    zone=st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York"]),
)
def test_due_is_consistent_with_next_due(at: datetime, since: int, zone: str) -> None:
    """A run right at T makes nothing due; when due, next_due is not after T, else after it."""
    at = at.replace(tzinfo=UTC)
    sets = [bset(DAILY, WEEKLY, LOGS)]
    last = {
        ("ex", t): at - timedelta(minutes=since) for t in ("full", "differential", "incremental")
    }
    for s in schedule_statuses(sets, last, at, zone):
        assert (s.next_due <= at) == s.due
    fresh = {key: at for key in last}
    assert due_backups(sets, fresh, at, zone) == []


def test_delta_set_last_run_is_the_newest_run_of_any_type(tmp_path: object) -> None:
    """A daily 'full' of a system-state set is recorded as [I] after the first full."""
    from pathlib import Path

    from dr.catalog import Catalog, NewArtifact, NewRun
    from dr.schedule import last_runs_for_schedules

    state = BackupSet(
        name="dc1-system-state",
        host="DC1",
        type="system-state",
        schedules=[Schedule(every="day", at="01:00", backup_type="full")],
    )
    exchange = bset(Schedule(every="day", at="22:00", backup_type="full"))
    with Catalog.open(Path(str(tmp_path)) / "c.sqlite") as catalog:
        catalog.register_set(state, at=utc("2024-05-01T00:00:00Z"))
        for day in range(5, 10):
            kind = "full" if day == 5 else "incremental"
            start = utc(f"2024-05-{day:02d}T01:00:00Z")
            item = NewArtifact(kind="system-state", name="SystemState.bkf", size=10)
            catalog.record_run(NewRun(state.name, "DC1", kind, start, start, artifacts=(item,)))  # type: ignore[arg-type]
        ended = catalog.last_ended(utc("2024-05-08T12:00:00Z"))
    last = last_runs_for_schedules([state, exchange], ended)
    assert last == {("dc1-system-state", "full"): utc("2024-05-08T01:00:00Z")}
    (status,) = schedule_statuses([state], last, utc("2024-05-08T12:00:00Z"))
    assert not status.due


def test_exchange_schedule_is_met_only_by_its_own_type() -> None:
    from dr.schedule import last_runs_for_schedules

    exchange = bset(
        Schedule(every="day", at="22:00", backup_type="full"),
        Schedule(every="minutes", minutes=60, backup_type="incremental"),
    )
    ended = {("ex", "incremental"): utc("2024-05-08T21:00:00Z")}
    assert last_runs_for_schedules([exchange], ended) == ended
