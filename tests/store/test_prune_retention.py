"""Prune removes what retention expired: the catalog's marks, or the set's policy.

The same ``dr.retention.plan_retention`` decides for `dr retention plan` and for prune; a
kept version always restores byte-identical afterwards.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr.catalog import Catalog, expiry
from dr.model.sets import BackupSet, RetentionPolicy
from dr.retention import Version, plan_retention
from dr.store.backup import BackupOptions, run_backup
from dr.store.catalog_link import record
from dr.store.prune import CatalogView, prune
from dr.store.repository import Repository, init_repository
from dr.store.restore import restore_version
from dr.store.verify import verify

from .conftest import random_bytes, tree_digest

T0 = datetime(2026, 1, 5, tzinfo=UTC)
POLICY = {"keep_days": 3, "keep_weekly_days": 0, "keep_monthly_days": 0, "min_fulls": 1}


def _set(policy: dict[str, int]) -> dict[str, Any]:
    return {"name": "s", "host": "H", "type": "files", "retention": policy}


def _history(
    repo: Repository, root: Path, kinds: list[str], policy: dict[str, int]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, bytes]]]:
    """One version a day; each changes one file of the set (a real incremental chain)."""
    src = root / "src"
    src.mkdir(exist_ok=True)
    manifests, contents = [], {}
    for day, kind in enumerate(kinds):
        (src / "data.bin").write_bytes(random_bytes(4000 + day, day))
        opts = BackupOptions(
            "s", src, host="H", backup_type=kind, at=T0 + timedelta(day),  # type: ignore[arg-type]
            set_definition=_set(policy),
        )  # fmt: skip
        m = run_backup(repo, opts)
        manifests.append(m)
        contents[m["id"]] = tree_digest(src)
    return manifests, contents


def _restores(repo: Repository, root: Path, contents: dict[str, dict[str, bytes]]) -> None:
    assert verify(repo, read_data=True).ok
    for vid in repo.version_ids():
        restore_version(repo, vid, root / "out" / vid)
        assert tree_digest(root / "out" / vid) == contents[vid]


def test_retention_apply_then_prune_removes_exactly_the_expired(
    repo: Repository, tmp_path: Path
) -> None:
    kinds = ["full", "incremental", "incremental", "full", "incremental", "full", "incremental"]
    manifests, contents = _history(repo, tmp_path, kinds, POLICY)
    at = T0 + timedelta(len(kinds) + 1)
    with Catalog.open(tmp_path / "catalog.sqlite") as catalog:
        catalog.register_set(BackupSet.model_validate(_set(POLICY)))
        run_ids = {m["id"]: record(catalog, m["catalog"]) for m in manifests}
        plans = expiry.plan(catalog, at)
        expiry.apply(catalog, plans, at)
        rows = catalog.conn.execute("SELECT id, run_key, expired FROM runs").fetchall()
    expired_runs = {run_id for run_id, _, e in rows if e}
    want_gone = {vid for vid, run_id in run_ids.items() if run_id in expired_runs}
    assert want_gone and len(want_gone) < len(manifests)  # the policy expires some, not all

    view = CatalogView(
        expired=frozenset(k for _, k, e in rows if e), known=frozenset(k for _, k, _ in rows)
    )
    dry = prune(repo, at=at, catalog=view, dry_run=True)
    assert {d.id for d in dry.decisions if not d.keep} == want_gone
    assert len(repo.version_ids()) == len(manifests)  # a dry run changes nothing

    report = prune(repo, at=at, catalog=view)
    assert set(report.expired) == want_gone
    assert set(repo.version_ids()) == set(run_ids) - want_gone
    _restores(repo, tmp_path, contents)


def test_prune_marks_pruned_runs_expired_in_the_catalog(repo: Repository, tmp_path: Path) -> None:
    manifests, _ = _history(repo, tmp_path, ["full", "full", "full"], POLICY)
    with Catalog.open(tmp_path / "catalog.sqlite") as catalog:
        catalog.register_set(BackupSet.model_validate(_set(POLICY)))
        for m in manifests:
            record(catalog, m["catalog"])
        from dr.store.reconcile import mark_runs_expired

        prune(
            repo,
            at=T0 + timedelta(30),
            keep_last=1,
            before_delete=lambda keys: mark_runs_expired(catalog, keys),
        )
        flags = [e for (e,) in catalog.conn.execute("SELECT expired FROM runs ORDER BY started")]
    assert flags == [1, 1, 0]


kinds = st.lists(st.sampled_from(["full", "incremental", "differential"]), min_size=1, max_size=8)
policies = st.builds(
    dict,
    keep_days=st.integers(0, 4),
    keep_weekly_days=st.integers(0, 10),
    keep_monthly_days=st.just(0),
    min_fulls=st.integers(1, 2),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=kinds, policy=policies, age=st.integers(0, 12))
def test_policy_prune_matches_retention_plan_and_keeps_everything_restorable(
    history: list[str], policy: dict[str, int], age: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, _ = init_repository(root / "repo", "pw", key_file=root / "k", pack_size=64 << 10)
        manifests, contents = _history(repo, root, history, policy)
        at = T0 + timedelta(len(history) + age)
        report = prune(repo, at=at)
        versions = [
            Version(m["id"], "s", m["backup_type"], T0 + timedelta(i), tuple(m["needs"]))
            for i, m in enumerate(manifests)
        ]
        planned = plan_retention(versions, RetentionPolicy(**policy), at)
        assert [(d.id, d.keep) for d in report.decisions] == [(d.id, d.keep) for d in planned]
        assert set(repo.version_ids()) == {d.id for d in planned if d.keep}
        _restores(repo, root, contents)
        repo.close()
