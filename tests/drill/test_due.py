"""Due dates: no subject ever goes longer than its period without being due."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dr.drill.due import EPOCH, Subject, due_one, next_slot
from dr.drill.history import DrillRecord


def _passed(key: str, at, digest: str = "d1") -> DrillRecord:
    return DrillRecord(
        drill_id=f"drill-{key}-{at:%s}",
        kind="database",
        database=key,
        target="RX",
        started_at=at,
        ended_at=at,
        verdict="passed",
        plan_digest=digest,
    )


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(min_size=1, max_size=20),
    days=st.integers(min_value=1, max_value=400),
    last_s=st.integers(min_value=0, max_value=10**9),
    later_s=st.integers(min_value=0, max_value=10**9),
)
def test_never_longer_than_period_without_being_due(key, days, last_s, later_s) -> None:
    period = days * 86400.0
    last = EPOCH + timedelta(seconds=last_s)
    at = last + timedelta(seconds=later_s)
    slot = next_slot(key, period, last)
    assert last < slot <= last + timedelta(seconds=period)
    verdict = due_one(Subject("database", key, period), _passed(key, last), at)
    if at > last + timedelta(seconds=period):
        assert verdict.due and verdict.overdue


def test_changed_plan_is_due_now() -> None:
    last = EPOCH + timedelta(days=10)
    s = Subject("database", "EX1/SG1/DB1", 182 * 86400.0, changed="the estate changed")
    verdict = due_one(s, _passed("EX1/SG1/DB1", last), last + timedelta(days=1))
    assert verdict.due and verdict.changed_since_last_test and not verdict.overdue
    assert verdict.why == "changed since last test: the estate changed"
