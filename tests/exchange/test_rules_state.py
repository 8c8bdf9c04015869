"""The constant-space StreamState gives the same answers as admit over the whole history."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dr.errors import DrError
from dr.exchange.rules import (
    BackupRow,
    LogRange,
    StreamBackup,
    StreamState,
    admit,
    admit_next,
    admit_row,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def backups(draw: st.DrawFn) -> list[StreamBackup]:
    """Mostly plausible streams with every kind of mistake mixed in."""
    count = draw(st.integers(min_value=1, max_value=25))
    hour, gen, found = 0, 1, []
    for _ in range(count):
        hour += draw(st.integers(min_value=-1, max_value=3))  # -1: out of order
        first = gen + draw(st.sampled_from([0, 0, 0, 1, 3, -2]))  # gaps and overlaps
        last = first + draw(st.integers(min_value=-1, max_value=5))  # -1: backwards range
        gen = max(gen, last + 1)
        logs = None
        if draw(st.integers(0, 9)):
            prefix = draw(st.sampled_from(["E00", "E00", "E00", "E01"]))
            signature = draw(st.sampled_from([None, "a", "a", "a", "b"]))
            logs = LogRange(prefix, first, last, signature)
        found.append(
            StreamBackup(
                backup_type=draw(st.sampled_from(["full", "copy", "incremental", "differential"])),
                at=T0 + timedelta(hours=hour),
                logs=logs,
                circular_logging=draw(st.integers(0, 6)) == 0,
                database_mounted=draw(st.integers(0, 6)) != 0,
            )
        )
    return found


def _outcome(check, *args: object) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    try:
        return "admitted", check(*args, stream="SRV/SG")
    except DrError as exc:
        return type(exc).__name__, exc.message


@settings(max_examples=150, deadline=None)
@given(backups())
def test_state_and_history_agree_on_every_backup(sequence: list[StreamBackup]) -> None:
    history: list[StreamBackup] = []
    state = StreamState()
    for new in sequence:
        by_history = _outcome(admit, history, new)
        by_state = _outcome(admit_next, state, new)
        assert by_history == by_state
        if by_history[0] == "admitted":
            recorded = by_history[1]
            assert isinstance(recorded, StreamBackup)
            history.append(recorded)
            state.record(recorded)


def test_state_of_history_remembers_circular_logging_until_a_full() -> None:
    on = StreamBackup("full", T0, LogRange("E00", 1, 5), circular_logging=True)
    assert StreamState.of([on]).circular_pending is on
    full = StreamBackup("full", T0 + timedelta(hours=2), LogRange("E00", 8, 9))
    state = StreamState.of([on, full])
    assert state.circular_pending is None
    inc = StreamBackup("incremental", full.at, LogRange("E00", 10, 11))
    assert admit_next(state, inc, stream="s") is inc


def _row(backup: StreamBackup) -> BackupRow:
    logs = backup.logs
    return BackupRow(
        backup.backup_type,
        int(backup.at.timestamp()),
        logs.prefix if logs else None,
        logs.first if logs else None,
        logs.last if logs else None,
        logs.signature if logs else None,
        backup.circular_logging,
        backup.database_mounted,
    )


def _typed(check, *args: object) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    outcome = _outcome(check, *args)
    if outcome[0] == "admitted" and isinstance(outcome[1], StreamBackup):
        return "admitted", outcome[1].backup_type
    return outcome


@settings(max_examples=200, deadline=None)
@given(backups(), st.integers(0, 5))
def test_rows_and_backups_get_the_same_answers(sequence: list[StreamBackup], seeded: int) -> None:
    """admit_row (plain values, its own quick yes) agrees with admit_next on every backup,
    also when the state starts from backups rather than rows (a catalog's earlier history)."""
    by_backup, by_row = StreamState(), StreamState()
    for index, new in enumerate(sequence):
        expected = _typed(admit_next, by_backup, new)
        assert _typed(admit_row, by_row, _row(new)) == expected
        if expected[0] == "admitted":
            recorded = replace(new, backup_type=expected[1])
            by_backup.record(recorded)
            by_row.record(recorded if index < seeded else _row(recorded))
