from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dr.errors import (
    ChainViolation,
    CircularLoggingViolation,
    LogSequenceViolation,
    ParameterError,
)
from dr.exchange.rules import (
    EFFECTS,
    Gap,
    LogRange,
    StreamBackup,
    admit,
    check_sequence,
    check_signatures,
    direct_needs,
    require_continuous,
)

STREAM = "EX2003/First Storage Group"
T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
SIG = "Create time:06/15/2005 10:12:38 Rand:1182398 Computer:"


def backup(
    kind: str,
    day: int,
    first: int | None = None,
    last: int | None = None,
    **extra: object,
) -> StreamBackup:
    logs = None if first is None else LogRange("E00", first, last or first, extra.pop("sig", SIG))
    return StreamBackup(kind, T0 + timedelta(days=day), logs, **extra)  # type: ignore[arg-type]


def test_effects_table_matches_the_backup_types() -> None:
    assert {k: (e.copies_database, e.copies_logs, e.truncates) for k, e in EFFECTS.items()} == {
        "full": (True, "all", True),
        "copy": (True, "all", False),
        "incremental": (False, "since-full-or-incremental", True),
        "differential": (False, "since-full", False),
    }
    assert [k for k, e in EFFECTS.items() if e.resets_marker] == ["full", "incremental"]


def test_full_and_incremental_chain_is_admitted_unchanged() -> None:
    history = [backup("full", 0, 10, 20)]
    new = backup("incremental", 1, 21, 30)
    assert admit(history, new, stream=STREAM) == new


def test_full_of_dismounted_database_becomes_copy() -> None:
    recorded = admit([], backup("full", 0, 10, 20, database_mounted=False), stream=STREAM)
    assert recorded.backup_type == "copy"


def test_log_backups_of_a_dismounted_database_stay_what_they_are() -> None:
    history = [backup("full", 0, 10, 20)]
    new = backup("incremental", 1, 21, 25, database_mounted=False)
    assert admit(history, new, stream=STREAM).backup_type == "incremental"


@pytest.mark.parametrize("kind", ["incremental", "differential"])
def test_log_backups_refused_while_circular_logging_is_on(kind: str) -> None:
    with pytest.raises(CircularLoggingViolation) as raised:
        admit(
            [backup("full", 0, 10, 20)],
            backup(kind, 1, 21, 30, circular_logging=True),
            stream=STREAM,
        )
    message = raised.value.message
    assert "circular logging" in message and STREAM in message and kind in message
    assert raised.value.code == 4100


def test_a_full_must_follow_turning_circular_logging_off() -> None:
    history = [backup("full", 0, 10, 20), backup("copy", 1, 10, 25, circular_logging=True)]
    with pytest.raises(CircularLoggingViolation, match="no full backup has been taken since"):
        admit(history, backup("incremental", 2, 21, 30), stream=STREAM)
    # a copy after turning it off is not enough either
    history.append(backup("copy", 2, 26, 30))
    with pytest.raises(CircularLoggingViolation):
        admit(history, backup("differential", 3, 21, 31), stream=STREAM)
    # a full taken while circular logging was still on does not count
    history.append(backup("full", 3, 31, 32, circular_logging=True))
    with pytest.raises(CircularLoggingViolation):
        admit(history, backup("incremental", 4, 33, 34), stream=STREAM)
    history.append(backup("full", 4, 33, 40))
    assert admit(history, backup("incremental", 5, 41, 45), stream=STREAM).logs is not None


@pytest.mark.parametrize("kind", ["incremental", "differential"])
def test_log_backup_without_a_full_is_refused(kind: str) -> None:
    with pytest.raises(ChainViolation) as raised:
        admit([backup("copy", 0, 1, 9)], backup(kind, 1, 10, 12), stream=STREAM)
    assert "no earlier full backup" in raised.value.message
    assert "copy backup is never a base" in raised.value.message
    assert raised.value.details["rule"] == "no-full-base"


def test_copy_is_never_the_base_of_an_incremental() -> None:
    # full ends at 20; the copy took 21..30 without truncating; the incremental must
    # continue the full's chain, so 21..30 are missing from it even though the copy has them
    history = [backup("full", 0, 10, 20), backup("copy", 1, 10, 30)]
    with pytest.raises(LogSequenceViolation) as raised:
        admit(history, backup("incremental", 2, 31, 35), stream=STREAM)
    assert "the full backup of 2026-03-01" in raised.value.message
    assert "generations 21–30 (0x15–0x1E) are missing" in raised.value.message
    assert direct_needs([*history, backup("incremental", 2, 21, 35)])[2] == (0,)


def test_incremental_gap_names_first_and_last_missing_generation() -> None:
    history = [backup("full", 0, 10, 20), backup("incremental", 1, 21, 30)]
    with pytest.raises(LogSequenceViolation) as raised:
        admit(history, backup("incremental", 2, 34, 40), stream=STREAM)
    error = raised.value
    assert "rule A9 (log sequence)" in error.message
    assert STREAM in error.message
    assert "generations 31–33 (0x1F–0x21) are missing" in error.message
    assert (error.details["first_missing"], error.details["last_missing"]) == (31, 33)
    assert error.code == 4300


def test_single_missing_generation_is_named_once() -> None:
    with pytest.raises(LogSequenceViolation, match=r"generation 21 \(0x15\) are missing"):
        admit([backup("full", 0, 10, 20)], backup("incremental", 1, 22, 25), stream=STREAM)


def test_overlap_with_the_base_is_fine() -> None:
    history = [backup("full", 0, 10, 20)]
    assert admit(history, backup("incremental", 1, 15, 25), stream=STREAM)


def test_differential_continues_from_its_full_not_from_incrementals() -> None:
    history = [backup("full", 0, 10, 20), backup("incremental", 1, 21, 30)]
    # logs 21..30 were truncated by the incremental: a differential starting at 31 cannot
    # be restored on the full alone
    with pytest.raises(LogSequenceViolation, match="generations 21–30"):
        admit(history, backup("differential", 2, 31, 35), stream=STREAM)
    assert admit(history[:1], backup("differential", 2, 21, 35), stream=STREAM)


def test_foreign_signature_is_refused_naming_signature_and_generation() -> None:
    history = [backup("full", 0, 10, 20)]
    with pytest.raises(LogSequenceViolation) as raised:
        admit(history, backup("incremental", 1, 21, 25, sig="Rand:999"), stream=STREAM)
    assert "'Rand:999'" in raised.value.message
    assert "generation 21 (0x15)" in raised.value.message
    assert SIG in raised.value.message


def test_other_prefix_is_refused() -> None:
    new = StreamBackup("incremental", T0 + timedelta(days=1), LogRange("E01", 21, 25, SIG))
    with pytest.raises(LogSequenceViolation, match=r"prefix E01.*holds E00"):
        admit([backup("full", 0, 10, 20)], new, stream=STREAM)


def test_backwards_range_is_refused() -> None:
    with pytest.raises(LogSequenceViolation, match="from generation 30 to 21"):
        admit([backup("full", 0, 10, 20)], backup("incremental", 1, 30, 21), stream=STREAM)


def test_log_backup_must_carry_its_range() -> None:
    with pytest.raises(LogSequenceViolation, match="records no log range"):
        admit([backup("full", 0, 10, 20)], backup("differential", 1), stream=STREAM)


def test_log_backup_that_ends_before_its_base_is_refused() -> None:
    with pytest.raises(LogSequenceViolation, match="log backups only move forwards"):
        admit([backup("full", 0, 10, 20)], backup("incremental", 1, 12, 15), stream=STREAM)


def test_naive_time_and_out_of_order_are_refused() -> None:
    naive = StreamBackup("full", datetime(2026, 3, 1), None)
    with pytest.raises(ParameterError, match="no time zone"):
        admit([], naive, stream=STREAM)
    with pytest.raises(ChainViolation, match="older than the full backup"):
        admit([backup("full", 5, 10, 20)], backup("full", 1, 1, 5), stream=STREAM)


def test_direct_needs() -> None:
    history = [
        backup("full", 0, 1, 10),  # 0
        backup("incremental", 1, 11, 12),  # 1 -> 0
        backup("copy", 2, 1, 14),  # 2
        backup("differential", 3, 11, 15),  # 3 -> 0
        backup("incremental", 4, 13, 16),  # 4 -> 3: picks up where the differential ends
        backup("full", 5, 1, 17),  # 5
        backup("differential", 6, 18, 19),  # 6 -> 5
        backup("incremental", 7, 18, 20),  # 7 -> 5
    ]
    assert direct_needs(history) == [(), (0,), (), (0,), (3,), (), (5,), (5,)]
    assert direct_needs([backup("incremental", 0, 1, 2)]) == [()]


def test_check_sequence_and_signatures() -> None:
    ranges = [
        LogRange("E00", 1, 10, "a"),
        LogRange("E00", 20, 30, "a"),
        LogRange("E00", 5, 12, "a"),
        LogRange("E01", 1, 3, "old"),
        LogRange("E01", 4, 9, "b"),
    ]
    assert check_sequence(ranges) == [Gap(13, 19, "E00")]
    mismatches = check_signatures(ranges)
    assert [(m.range.prefix, m.range.first, m.expected) for m in mismatches] == [("E01", 1, "b")]
    assert [m.range.first for m in check_signatures(ranges, expected="b")] == [1, 5, 20, 1]
    with pytest.raises(LogSequenceViolation, match=r"E00 generations 13–19 \(0xD–0x13\)"):
        require_continuous(ranges, stream=STREAM)


# --------------------------------------------------------------------------- properties


@st.composite
def ranges_with_holes(draw: st.DrawFn) -> tuple[list[LogRange], set[int]]:
    """Cover 1..top except random holes with random (overlapping) ranges."""
    top = draw(st.integers(1, 120))
    holes = draw(st.sets(st.integers(2, max(2, top - 1)), max_size=15)) if top > 2 else set()
    present = [g for g in range(1, top + 1) if g not in holes]
    runs: list[list[int]] = []
    for gen in present:
        if runs and runs[-1][-1] == gen - 1:
            runs[-1].append(gen)
        else:
            runs.append([gen])
    ranges = [piece for run in runs for piece in _split(draw, run[0], run[-1])]
    draw(st.randoms()).shuffle(ranges)
    return ranges, holes


def _split(draw: st.DrawFn, first: int, last: int) -> list[LogRange]:
    """Cover first..last with ranges that may overlap but never leave a hole."""
    pieces: list[LogRange] = []
    start = first
    while start <= last:
        end = draw(st.integers(start, last))
        back = draw(st.integers(0, start - first))
        pieces.append(LogRange("E00", start - back, end))
        start = end + 1
    return pieces


@settings(max_examples=150, deadline=None)
@given(ranges_with_holes())
def test_check_sequence_flags_exactly_the_missing_generations(
    case: tuple[list[LogRange], set[int]],
) -> None:
    ranges, holes = case
    flagged = {
        g for gap in check_sequence(ranges) for g in range(gap.first_missing, gap.last_missing + 1)
    }
    assert flagged == holes
    gaps = check_sequence(ranges)
    assert all(a.last_missing + 1 < b.first_missing for a, b in itertools.pairwise(gaps))


# --------------------------------------------------------------------------- differentials


def test_incremental_after_a_differential_continues_it_even_after_incrementals() -> None:
    # the differential holds every log since the full (21..40), so an incremental that picks
    # up at 41 is no gap, although the last incremental ended at 30
    history = [
        backup("full", 0, 10, 20),
        backup("incremental", 1, 21, 30),
        backup("differential", 2, 21, 40),
    ]
    new = backup("incremental", 3, 41, 50)
    assert admit(history, new, stream=STREAM) == new
    later = backup("incremental", 4, 51, 55)
    assert admit([*history, new], later, stream=STREAM) == later
    assert direct_needs([*history, new, later])[3:] == [(2,), (3,)]


def test_incremental_after_a_differential_names_the_gap_after_the_differential() -> None:
    history = [
        backup("full", 0, 10, 20),
        backup("incremental", 1, 21, 30),
        backup("differential", 2, 21, 40),
    ]
    with pytest.raises(LogSequenceViolation) as raised:
        admit(history, backup("incremental", 3, 45, 50), stream=STREAM)
    assert "generations 41–44" in raised.value.message
    assert "differential backup" in raised.value.message


def test_an_incremental_that_follows_the_full_needs_only_the_full() -> None:
    # no incremental truncated since the full: the incremental holds every log since it
    history = [backup("full", 0, 1, 10), backup("differential", 1, 11, 20)]
    assert direct_needs([*history, backup("incremental", 2, 11, 30)])[2] == (0,)
