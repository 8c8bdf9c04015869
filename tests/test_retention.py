from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dr.errors import ParameterError
from dr.exchange.rules import StreamBackup, direct_needs
from dr.model.sets import RetentionPolicy
from dr.planner.chain import select_chain
from dr.planner.facts import BackupVersion
from dr.retention import Decision, Version, plan_retention
from tests.planner.histories import admitted_histories

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def history(kinds: str, *, chain: str = "EX2003/SG1", days_apart: float = 1.0) -> list[Version]:
    """Versions from a string like 'FIIDIC' (oldest first, the last one at NOW - 1h)."""
    names = {"F": "full", "I": "incremental", "D": "differential", "C": "copy"}
    start = NOW - timedelta(hours=1) - timedelta(days=days_apart * (len(kinds) - 1))
    backups = [
        StreamBackup(names[k], start + timedelta(days=days_apart * i), None)  # type: ignore[arg-type]
        for i, k in enumerate(kinds)
    ]
    return as_versions(backups, chain)


def as_versions(backups: list[StreamBackup], chain: str) -> list[Version]:
    ids = [f"{chain}#{i}" for i in range(len(backups))]
    needs = direct_needs(backups)
    return [
        Version(ids[i], chain, b.backup_type, b.at, tuple(ids[j] for j in needs[i]))
        for i, b in enumerate(backups)
    ]


def by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.id: d for d in decisions}


def test_everything_inside_the_window_is_kept() -> None:
    versions = history("FIIIII")
    decisions = plan_retention(versions, RetentionPolicy(keep_days=14), NOW)
    assert all(d.keep for d in decisions)
    assert decisions[3].reasons[0] == "inside the 14-day window"


def test_a_kept_incremental_keeps_its_whole_chain() -> None:
    # a full 40 days ago and a daily incremental since: the newest incremental needs them all
    versions = history("F" + "I" * 40)
    policy = RetentionPolicy(keep_days=7, keep_weekly_days=14, keep_monthly_days=14)
    decisions = plan_retention(versions, policy, NOW)
    assert all(d.keep for d in decisions)
    full = decisions[0]
    assert f"needed by {versions[1].id} (kept)" in full.reasons
    assert full.reasons[0].startswith("older than the 14-day monthly window")


def test_weekly_point_is_the_latest_full_or_differential_of_the_week() -> None:
    # full then differentials only: each differential needs just the full
    versions = history("F" + "D" * 29)
    policy = RetentionPolicy(keep_days=7, keep_weekly_days=30, keep_monthly_days=30)
    decisions = by_id(plan_retention(versions, policy, NOW))
    kept_old = [v for v in versions if decisions[v.id].keep and NOW - v.at > timedelta(days=7)]
    weeks = [v.at.isocalendar()[:2] for v in kept_old if v.backup_type == "differential"]
    assert len(weeks) == len(set(weeks))  # at most one differential per ISO week
    for v in kept_old[1:]:
        week = v.at.isocalendar()
        latest = max(
            (
                w
                for w in versions
                if w.at.isocalendar()[:2] == week[:2] and NOW - w.at <= timedelta(30)
            ),
            key=lambda w: w.at,
        )
        assert v.id == latest.id
        assert decisions[v.id].reasons == (f"weekly point {week[0]}-W{week[1]:02d}",)
    expired = [d for d in decisions.values() if not d.keep]
    assert expired, "some differentials must expire"
    assert all(
        r.startswith("older than the 7-day window; ") and "is the weekly point" in r
        for d in expired
        for r in d.reasons
    )


def test_expired_beyond_monthly_window_says_so() -> None:
    versions = history("FD" * 3, days_apart=200)
    decisions = plan_retention(versions, RetentionPolicy(min_fulls=1), NOW)
    assert decisions[0].reasons == ("older than the 365-day monthly window",)
    assert not decisions[0].keep


def test_min_fulls_keeps_the_newest_fulls_even_when_all_are_old() -> None:
    versions = history("FIFIF", days_apart=400)
    decisions = plan_retention(versions, RetentionPolicy(min_fulls=2), NOW)
    # the newest (index 4) is inside the window; one more full must survive
    assert [d.keep for d in decisions] == [False, False, True, False, True]
    assert "one of the 2 newest fulls kept (min_fulls)" in decisions[2].reasons


def test_copies_are_never_points() -> None:
    versions = history("FC", days_apart=20)
    policy = RetentionPolicy(keep_days=7, keep_weekly_days=60)
    decisions = plan_retention(versions, policy, NOW - timedelta(days=1))
    assert [d.keep for d in decisions] == [True, True]
    versions = history("FCC", days_apart=20)
    decisions = plan_retention(versions, policy, NOW + timedelta(days=10))
    assert [d.keep for d in decisions] == [True, False, False]


def test_chains_are_judged_separately() -> None:
    a = history("FIIII", chain="A", days_apart=30)
    b = history("F", chain="B", days_apart=30)
    decisions = by_id(plan_retention([*a, *b], RetentionPolicy(min_fulls=1), NOW))
    assert decisions["B#0"].keep


def test_unknown_needed_version_is_reported_not_crashed() -> None:
    version = Version("v2", "c", "incremental", NOW, ("v1",))
    (decision,) = plan_retention([version], RetentionPolicy(), NOW)
    assert decision.keep and "needs v1, which is not among the versions" in decision.reasons


def test_bad_input_is_refused() -> None:
    with pytest.raises(ParameterError, match="appears twice"):
        plan_retention([*history("F"), *history("F")], RetentionPolicy(), NOW)
    with pytest.raises(ParameterError, match="no time zone"):
        plan_retention(history("F"), RetentionPolicy(), datetime(2026, 1, 1))


# --------------------------------------------------------------------------- properties


@st.composite
def histories(draw: st.DrawFn) -> list[Version]:
    versions: list[Version] = []
    for chain in ("A", "B")[: draw(st.integers(1, 2))]:
        kinds = draw(st.lists(st.sampled_from("FFCIIID"), min_size=1, max_size=60))
        gaps = draw(st.lists(st.floats(0.01, 20), min_size=len(kinds), max_size=len(kinds)))
        at = NOW - timedelta(days=sum(gaps))
        backups = []
        for kind, gap in zip(kinds, gaps, strict=True):
            at += timedelta(days=gap)
            name = {"F": "full", "C": "copy", "I": "incremental", "D": "differential"}[kind]
            backups.append(StreamBackup(name, at, None))  # type: ignore[arg-type]
        versions.extend(as_versions(backups, chain))
    return versions


policies = st.builds(
    RetentionPolicy,
    keep_days=st.integers(0, 30),
    keep_weekly_days=st.integers(0, 120),
    keep_monthly_days=st.integers(0, 400),
    min_fulls=st.integers(1, 4),
)


@settings(max_examples=200, deadline=None)
@given(versions=histories(), policy=policies, shift=st.floats(-30, 200))
def test_retention_never_orphans_a_needed_version(
    versions: list[Version], policy: RetentionPolicy, shift: float
) -> None:
    decisions = plan_retention(versions, policy, NOW + timedelta(days=shift))
    assert [d.id for d in decisions] == [v.id for v in versions]
    keep = {d.id for d in decisions if d.keep}
    for version in versions:
        if version.id in keep:
            assert set(version.needs) <= keep, f"{version.id} kept but a need expired"
    for decision in decisions:
        assert decision.reasons, f"{decision.id} has no reason"
    for chain in {v.chain for v in versions}:
        fulls = [v for v in versions if v.chain == chain and v.backup_type == "full"]
        kept_fulls = [v for v in fulls if v.id in keep]
        assert len(kept_fulls) >= min(policy.min_fulls, len(fulls))
    window = timedelta(days=policy.keep_days)
    for version in versions:
        if NOW + timedelta(days=shift) - version.at <= window:
            assert version.id in keep


@settings(max_examples=100, deadline=None)
@given(
    versions=admitted_histories(hours_apart=20.0),
    policy=policies,
    days=st.floats(0, 90),
)
def test_every_kept_version_restores_from_kept_versions_only(
    versions: list[BackupVersion], policy: RetentionPolicy, days: float
) -> None:
    """Retention and the planner read one rule: whatever retention keeps, the planner can
    restore to its point from kept versions alone (the expired ones are marked)."""
    backups = [StreamBackup(v.backup_type, v.at, v.logs) for v in versions]
    needs = direct_needs(backups)
    kept_ids = {
        d.id
        for d in plan_retention(
            [
                Version(v.id, v.stream, v.backup_type, v.at, tuple(versions[j].id for j in n))
                for v, n in zip(versions, needs, strict=True)
            ],
            policy,
            versions[-1].at + timedelta(days=days),
        )
        if d.keep
    }
    marked = [replace(v, expired=v.id not in kept_ids) for v in versions]
    for v in marked:
        if v.expired or v.backup_type == "copy":
            continue
        chain = select_chain(v.stream, marked, None, v.at)
        assert chain.point == v.at
        assert set(chain.version_ids) <= kept_ids
