"""Chain selection: which backups reach a target, and refusals with the right facts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dr.errors import ArtifactExpired, ForeignLog, LogGap, NoFullBefore
from dr.exchange.rules import LogRange, StreamBackup, admit, direct_needs
from dr.planner.chain import Chain, select_chain
from dr.planner.facts import BackupVersion, DatabaseImage, LiveLogs
from tests.planner.histories import StreamSim, admitted_histories, at, legacy_sim


def choose(sim: StreamSim, hours: float | None, live: bool = True) -> Chain:
    target = None if hours is None else at(hours)
    return select_chain(sim.stream, sim.versions, sim.live() if live else None, target)


def test_incrementals_after_full_reach_the_latest_backup_before_the_target() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("incremental", vid="I1")
    sim.logs()
    sim.backup("incremental", vid="I2")
    chain = choose(sim, 1.5)
    assert chain.version_ids == ["F", "I1"]
    assert chain.point == at(1)
    assert chain.stop_gen == 20
    assert chain.data_loss_seconds == 1800


def test_copy_in_the_middle_of_a_chain_is_neither_base_nor_link() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("incremental", vid="I1")
    sim.logs()
    sim.backup("copy", vid="C")
    sim.logs()
    sim.backup("incremental", vid="I2")
    chain = choose(sim, 3, live=False)
    assert chain.version_ids == ["F", "I1", "I2"]
    assert chain.point == at(3)


def test_differential_after_incrementals_replaces_them_when_it_reaches_further() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("differential", vid="D1")  # logs 1..20 on disk, not truncated
    sim.logs()
    sim.backup("differential", vid="D2")  # logs 1..30
    chain = choose(sim, 2, live=False)
    assert chain.version_ids == ["F", "D2"]
    # and a target between the differentials uses only the first
    assert choose(sim, 1.5, live=False).version_ids == ["F", "D1"]


def test_incremental_then_differential_uses_the_fewest_sets_without_overshoot() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("incremental", vid="I1")  # 11..20, truncates
    sim.logs()
    sim.backup("differential", vid="D1")  # 21..30 (what is on disk)
    sim.logs()
    sim.backup("incremental", vid="I2")  # 21..40
    chain = choose(sim, 2.5, live=False)
    assert chain.version_ids == ["F", "I1", "D1"]
    assert chain.stop_gen == 30 and not chain.trimmed
    chain = choose(sim, 3, live=False)
    assert chain.version_ids == ["F", "I1", "I2"]


def test_circular_logging_on_then_off() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F1")
    sim.logs()
    sim.backup("incremental", vid="I1")
    sim.circular = True
    sim.logs()
    sim.backup("full", vid="F2")  # taken while circular logging was on
    sim.logs()
    sim.circular = False
    sim.logs()
    sim.backup("full", vid="F3")
    sim.logs()
    sim.backup("incremental", vid="I2")
    between = choose(sim, 3.5, live=False)
    assert between.version_ids == ["F2"] and between.point == at(2)
    assert any("circular logging" in w for w in between.warnings)
    assert choose(sim, 1, live=False).version_ids == ["F1", "I1"]
    # between I1 and F2 circular logging deleted the logs: that time is a gap, refused
    with pytest.raises(LogGap) as caught:
        choose(sim, 1.5, live=False)
    assert caught.value.details["nearest_before"] == at(1).isoformat()
    assert caught.value.details["nearest_after"] == at(2).isoformat()
    assert choose(sim, 5, live=False).version_ids == ["F3", "I2"]


def test_point_of_failure_adds_the_logs_still_on_the_server() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("incremental", vid="I1")
    sim.logs(0.5, 7)
    chain = choose(sim, None)
    assert chain.version_ids == ["F", "I1"]
    assert chain.live is not None and chain.stop_gen == 27
    assert chain.point == at(1.5) and chain.data_loss_seconds == 0


def test_gap_in_archived_logs_covered_by_logs_on_the_server() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("differential", vid="D1")  # 1..20: not truncated, so still on the server
    sim.logs()
    sim.backup("differential", vid="D2")  # 1..30
    sim.drop("D1")
    sim.drop("D2")  # the archived copies are lost; the server still has 1..30
    chain = choose(sim, None)
    assert chain.version_ids == ["F"]
    assert chain.live is not None and chain.stop_gen == 30


def test_target_inside_a_gap_is_refused_with_the_gap_and_both_nearest_points() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F1")
    sim.logs()
    sim.backup("incremental", vid="I1")  # 11..20
    sim.logs()
    sim.backup("incremental", vid="I2")  # 21..30
    sim.logs()
    sim.backup("incremental", vid="I3")  # 31..40
    sim.logs()
    sim.backup("full", vid="F2")
    sim.drop("I2")
    with pytest.raises(LogGap) as caught:
        choose(sim, 3.5, live=False)
    d = caught.value.details
    assert (d["first_missing"], d["last_missing"]) == (21, 30)
    assert d["nearest_before"] == at(1).isoformat()
    assert d["nearest_after"] == at(4).isoformat()
    assert caught.value.exit_code == 3
    # a target in the time the missing generations cover is refused too: its data is
    # nowhere, so restoring "to it" would silently stop before it
    with pytest.raises(LogGap) as inside:
        choose(sim, 1.5, live=False)
    assert (inside.value.details["first_missing"], inside.value.details["last_missing"]) == (
        21,
        30,
    )
    # the target at the last point before the gap is fine, and after the next full too
    assert choose(sim, 1, live=False).point == at(1)
    assert choose(sim, 4, live=False).version_ids == ["F2"]


def test_expired_incremental_is_named_as_the_cause_of_the_gap() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("incremental", vid="I1")
    sim.logs()
    sim.backup("incremental", vid="I2")
    sim.expire("I1")
    with pytest.raises(LogGap) as caught:
        choose(sim, 2, live=False)
    assert caught.value.details["expired"] == ["I1"]


def test_no_full_before_the_target() -> None:
    sim = legacy_sim()
    sim.logs()
    sim.backup("full", vid="F")
    with pytest.raises(NoFullBefore) as caught:
        choose(sim, 0.5)
    assert caught.value.details["first_full_after"] == at(1).isoformat()


def test_every_full_expired() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.expire("F")
    with pytest.raises(ArtifactExpired) as caught:
        choose(sim, 1)
    assert caught.value.details["expired"] == ["F"]


def test_foreign_log_signature_is_never_replayed_nor_dropped_silently() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.signature = "other"
    sim.backup("incremental", vid="I1")  # 11..20 with another log signature
    # a target past the foreign logs is refused, naming the generation and why
    with pytest.raises(ForeignLog) as caught:
        choose(sim, 2, live=False)
    d = caught.value.details
    assert (d["foreign_generation"], d["source"]) == (11, "I1")
    assert "'other'" in d["reason"] and "'sig-1'" in d["reason"]
    assert "generation 11 (0xB)" in caught.value.message
    assert d["nearest_before"] == at(0).isoformat()
    assert caught.value.exit_code == 3
    # to the point of failure the restore stops before it, and the plan says why
    chain = choose(sim, None, live=False)
    assert chain.version_ids == ["F"] and chain.point == at(0)
    assert any("before generation 11 (0xB) in I1" in w for w in chain.warnings)
    # a target at the last usable point is fine
    assert choose(sim, 0, live=False).version_ids == ["F"]


def _unusable_live(sim: StreamSim, unusable_from: int, ends: bool) -> LiveLogs:
    live = sim.live()
    closed = tuple(at(0.1 * (i + 1)) for i in range(live.logs.last - live.logs.first + 1))
    return LiveLogs(
        live.stream,
        live.logs,
        live.at,
        closed if ends else (),
        unusable_from=unusable_from,
        unusable_reason="eseutil /ml on E000000F.log: ERROR: Mismatched log generation",
    )


def test_an_unusable_log_on_the_server_stops_the_point_before_it() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")  # 1..10
    sim.logs(1, 10)  # 11..20 on the server; 15 is foreign
    live = _unusable_live(sim, 15, ends=True)
    chain = select_chain(sim.stream, sim.versions, live, None)
    # never the listing time: generation 14 was closed at 0:24, and that is the point
    assert chain.stop_gen == 14 and chain.point == at(0.4)
    assert any("before generation 15 (0xF)" in w and "Mismatched" in w for w in chain.warnings)
    with pytest.raises(ForeignLog) as caught:
        select_chain(sim.stream, sim.versions, live, at(0.8))
    assert caught.value.details["foreign_generation"] == 15
    # without close times no point after the full is known: the plan claims none
    blind = select_chain(sim.stream, sim.versions, _unusable_live(sim, 15, ends=False), None)
    assert blind.point == at(0) and blind.stop_gen == 10


def test_live_log_close_times_give_points_between_backups() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs(1, 4)  # 11..14 closed at 0:15, 0:30, 0:45, 1:00
    live = sim.live()
    ends = tuple(at(0.25 * (i + 1)) for i in range(4))
    live = LiveLogs(live.stream, live.logs, live.at, ends)
    chain = select_chain(sim.stream, sim.versions, live, at(0.6))
    assert chain.point == at(0.5) and chain.stop_gen == 12


# --------------------------------------------------------------------------- properties


@st.composite
def histories(draw: st.DrawFn) -> tuple[StreamSim, set[str], float]:
    """Random backup histories: types, log counts, lost and expired versions, a target."""
    sim = legacy_sim()
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["full", "copy", "incremental", "differential", "none"]),
                st.integers(1, 5),
            ),
            min_size=1,
            max_size=14,
        )
    )
    sim.backup("full")
    for kind, count in steps:
        sim.logs(1, count)
        if kind != "none":
            sim.backup(kind)  # type: ignore[arg-type]
    lost = draw(st.sets(st.sampled_from([v.id for v in sim.versions]), max_size=3))
    for vid in sorted(lost):
        sim.drop(vid)
    hours = draw(st.floats(-1, len(steps) + 1, allow_nan=False))
    use_live = draw(st.booleans())
    return sim, ({"live"} if use_live else set()), hours


def _oracle(sim: StreamSim, live: LiveLogs | None, hours: float) -> tuple[int, object] | None:
    """Brute force: the latest (time, gen) point <= T reachable from the newest full <= T."""
    target = at(hours)
    fulls = [v for v in sim.versions if v.backup_type == "full" and v.at <= target]
    fulls = fulls or [v for v in sim.versions if v.backup_type == "copy" and v.at <= target]
    if not fulls:
        return None
    base = max(fulls, key=lambda v: (v.at, v.id))
    have = set(range(1, (base.top_gen or 0) + 1))
    ranges = [
        v.logs
        for v in sim.versions
        if v.backup_type in ("incremental", "differential") and v.at > base.at and v.logs
    ]
    ranges += [live.logs] if live else []
    for r in ranges:
        have |= set(range(r.first, r.last + 1))
    top = base.top_gen or 0
    while top + 1 in have:
        top += 1
    points = [(base.top_gen or 0, base.at)]
    points += [
        (v.logs.last, v.at)
        for v in sim.versions
        if v.backup_type in ("incremental", "differential") and v.logs and v.at > base.at
    ]
    points += [(live.logs.last, live.at)] if live else []
    points = [(g, t) for g, t in points if t <= target and t >= base.at]
    reachable = [p for p in points if p[0] <= top]
    unreachable = [p for p in points if p[0] > top]
    best = max(reachable, key=lambda p: (p[1], p[0]))
    return (top, unreachable[0]) if unreachable else (best[0], best[1])


def _covered(chain: Chain) -> set[int]:
    gens = set(range(1, (chain.base_gen or 0) + 1))
    for s in chain.sources:
        gens |= set(range(s.first, s.last + 1))
    return gens


@settings(max_examples=150, deadline=None)
@given(histories())
def test_chosen_chain_is_complete_minimal_and_reaches_the_latest_point(
    case: tuple[StreamSim, set[str], float],
) -> None:
    sim, flags, hours = case
    live = sim.live() if "live" in flags else None
    target = at(hours)
    expected = _oracle(sim, live, hours)
    try:
        chain = select_chain(sim.stream, sim.versions, live, target)
    except NoFullBefore:
        assert expected is None
        return
    except LogGap as gap:
        assert expected is not None and isinstance(expected[1], object)
        reached = expected[0]
        assert gap.details["first_missing"] == reached + 1
        return
    assert expected is not None
    gen, point = expected
    assert chain.point == point and chain.stop_gen == gen
    assert chain.point <= target
    # complete: every generation from the base to the stop is covered, nothing from the future
    assert set(range(1, (chain.stop_gen or 0) + 1)) <= _covered(chain)
    assert all(s.at > chain.base.at for s in chain.sources)
    # minimal: no chosen source is redundant, and replay stops at the point's generation
    for i, _ in enumerate(chain.sources):
        rest = chain.sources[:i] + chain.sources[i + 1 :]
        trial = Chain(
            chain.stream, chain.base, chain.base_gen, rest, chain.stop_gen, chain.point, target, 0.0
        )
        assert not set(range(1, (chain.stop_gen or 0) + 1)) <= _covered(trial)


# --------------------------------------------------------------------------- one rule


def _needed(versions: list[BackupVersion], index: int) -> list[str]:
    """The version and everything it needs (direct_needs, transitively), restore order."""
    needs = direct_needs([StreamBackup(v.backup_type, v.at, v.logs) for v in versions])
    chain = [index]
    while needs[chain[-1]]:
        chain.append(needs[chain[-1]][0])
    return [versions[i].id for i in reversed(chain)]


@settings(max_examples=150, deadline=None)
@given(admitted_histories())
def test_the_planner_restores_exactly_what_retention_keeps_for_a_version(
    versions: list[BackupVersion],
) -> None:
    """One rule: the chain the planner picks to reach a version's point is the version and
    what it needs by the rule retention keeps (so nothing retention may expire is used)."""
    history: list[StreamBackup] = []
    for v in versions:  # the catalog would admit every one of them
        history.append(admit(history, StreamBackup(v.backup_type, v.at, v.logs), stream="s"))
    for index, v in enumerate(versions):
        if v.backup_type == "copy":
            continue
        chain = select_chain(v.stream, versions, None, v.at)
        assert chain.version_ids == _needed(versions, index)
        assert chain.point == v.at


def test_full_differential_and_only_the_incrementals_after_it() -> None:
    """Full, an incremental, a differential holding every log since the full, then an
    incremental picking up where the differential ends: the restore is full + differential +
    that incremental, not the earlier incremental."""
    shapes = [("full", 1, 10), ("incremental", 11, 20), ("differential", 11, 30)]
    shapes += [("incremental", 31, 40)]
    versions = [
        BackupVersion(
            kind[0].upper() + str(n),
            "EX2003/SG",
            kind,  # type: ignore[arg-type]
            at(n),
            LogRange("E00", first, last, "s"),
            (DatabaseImage("EX2003/SG/DB", 1, 0, (first, last)),) if kind == "full" else (),
        )
        for n, (kind, first, last) in enumerate(shapes)
    ]
    chain = select_chain("EX2003/SG", versions, None, at(3))
    assert chain.version_ids == ["F0", "D2", "I3"]
    assert chain.stop_gen == 40 and chain.point == at(3)


def test_target_inside_a_gap_is_refused_when_only_a_later_full_closes_it() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F1")
    sim.logs()
    sim.backup("incremental", vid="I1")  # 11..20
    sim.logs()
    sim.backup("incremental", vid="I2")  # 21..30, lost
    sim.logs()
    sim.backup("full", vid="F2")  # 31..40: a new chain, but 21..30 stay missing
    sim.drop("I2")
    for hours in (1.5, 2.5):
        with pytest.raises(LogGap) as caught:
            choose(sim, hours, live=False)
        d = caught.value.details
        assert (d["first_missing"], d["last_missing"]) == (21, 30)
        assert d["nearest_before"] == at(1).isoformat()
        assert d["nearest_after"] == at(3).isoformat()
    assert choose(sim, 1, live=False).version_ids == ["F1", "I1"]
    assert choose(sim, 3, live=False).version_ids == ["F2"]


def test_log_backups_after_circular_logging_was_on_wait_for_a_new_full() -> None:
    """Circular logging was on at the copy (learned from the host or the import): the
    incremental after it is never replayed, although its generations follow on."""
    sim = legacy_sim()
    sim.backup("full", vid="F")
    sim.logs()
    sim.backup("incremental", vid="I1")  # 11..20
    sim.logs()
    sim.circular = True
    sim.backup("copy", vid="C")  # taken while circular logging was on
    sim.circular = False
    sim.on_disk = 21  # nothing visibly lost: only the circular-logging flag tells
    sim.logs()
    sim.backup("incremental", vid="I2")  # 21..40
    with pytest.raises(ForeignLog) as caught:
        choose(sim, 3, live=False)
    assert caught.value.details["source"] == "I2"
    assert "circular logging was on when C was taken" in caught.value.details["reason"]
    chain = choose(sim, None, live=False)
    assert chain.version_ids == ["F", "I1"] and chain.point == at(1)
    assert any("circular logging was on when C" in w for w in chain.warnings)
    sim.logs()
    sim.backup("full", vid="F2")
    sim.logs()
    sim.backup("incremental", vid="I3")
    assert choose(sim, 5, live=False).version_ids == ["F2", "I3"]


def test_a_foreign_backup_overlapping_usable_logs_is_named_from_the_first_lost_generation() -> None:
    sim = legacy_sim()
    sim.backup("full", vid="F")  # 1..10
    sim.logs()
    sim.backup("incremental", vid="I1")  # 11..20
    sim.logs()
    sim.signature = "other"
    sim.on_disk = 15
    sim.backup("incremental", vid="X")  # 15..30, another stream's: 21.. cannot be replayed
    with pytest.raises(ForeignLog) as caught:
        choose(sim, 2, live=False)
    assert caught.value.details["foreign_generation"] == 21
    assert caught.value.details["source"] == "X"


def test_fulls_that_do_not_hold_the_database_are_named_not_called_later() -> None:
    """A full before the target that lacks the database's image: the refusal says so,
    instead of "the first full after it is" a time before the target."""
    from datetime import UTC, datetime

    from dr.errors import NoFullBefore
    from dr.planner.chain import choose_base
    from dr.planner.facts import BackupVersion, DatabaseImage

    full = BackupVersion(
        id="run-1", stream="EX/SG", backup_type="full",
        at=datetime(2026, 11, 2, 22, tzinfo=UTC), logs=None,
        databases=(DatabaseImage(database="EX/SG/Other", size_bytes=1),),
    )  # fmt: skip
    target = datetime(2026, 11, 3, 5, tzinfo=UTC)
    with pytest.raises(NoFullBefore) as raised:
        choose_base("EX/SG", [full], target, "EX/SG/Mine")
    assert "holds this database" in str(raised.value)
    assert "run-1" in str(raised.value)
    assert "first full after" not in str(raised.value)
