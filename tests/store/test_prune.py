"""Retention + prune never breaks a kept version, and gives space back."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr.store.backup import BackupOptions, run_backup
from dr.store.prune import plan_expiry, prune
from dr.store.report import stored_bytes
from dr.store.repository import Repository, init_repository
from dr.store.restore import restore_version
from dr.store.verify import verify

from .conftest import page_file, random_bytes, rewrite_pages, tree_digest

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_kept_incremental_keeps_its_chain(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    page_file(src / "db.edb", 200, seed=1)
    ids, contents = [], []
    for v in range(5):
        rewrite_pages(src / "db.edb", [v * 7], version=v + 2)
        kind = "full" if v == 0 else "incremental"
        m = run_backup(repo, BackupOptions("s", src, backup_type=kind, at=T0 + timedelta(v)))
        ids.append(m["id"])
        contents.append(tree_digest(src))
    report = prune(repo, keep_last=1, keep_days=None, at=T0 + timedelta(10))
    assert report.expired == []  # the last incremental needs the whole chain
    assert all("needed by" in d.reasons[0] for d in report.decisions[:-1])
    for vid, want in zip(ids, contents, strict=True):
        restore_version(repo, vid, tmp_path / vid)
        assert tree_digest(tmp_path / vid) == want


def test_expired_full_chain_is_removed_and_space_reclaimed(
    repo: Repository, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ids = []
    for v in range(4):
        (src / "big.bkf").write_bytes(random_bytes(2 << 20, v))
        m = run_backup(repo, BackupOptions("s", src, backup_type="full", at=T0 + timedelta(v)))
        ids.append(m["id"])
    before = stored_bytes(repo)
    report = prune(repo, keep_last=1, keep_days=None, at=T0 + timedelta(10))
    assert sorted(report.expired) == sorted(ids[:3])
    assert stored_bytes(repo) < before / 2 and report.bytes_freed > 0
    assert repo.version_ids() == [ids[3]]
    assert verify(repo, read_data=True).ok
    restore_version(repo, ids[3], tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(src)


def test_no_rule_and_no_known_policy_keeps_everything() -> None:
    m = {"id": "v1", "set": "s", "started": "2026-01-01T00:00:00.000000Z", "needs": []}
    [decision] = plan_expiry([{**m, "backup_type": "full", "catalog": {}}], at=T0)
    assert decision.keep and "policy is unknown" in decision.reasons[0]


history = st.lists(
    st.tuples(st.sampled_from(["full", "incremental", "differential"]), st.integers(0, 60)),
    min_size=1,
    max_size=7,
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    runs=history,
    keep_last=st.one_of(st.none(), st.integers(1, 3)),
    keep_days=st.one_of(st.none(), st.integers(0, 4)),
)
def test_prune_never_breaks_a_kept_version(
    runs: list, keep_last: int | None, keep_days: int | None
) -> None:
    if keep_last is None and keep_days is None:
        keep_last = 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, _ = init_repository(root / "repo", "pw", key_file=root / "k", pack_size=64 << 10)
        src = root / "src"
        src.mkdir()
        page_file(src / "db.edb", 140, seed=1, page=8192)
        want = {}
        for day, (kind, page) in enumerate(runs):
            rewrite_pages(src / "db.edb", [page, page + 70], version=day + 2)
            (src / "note.txt").write_bytes(random_bytes(3000, day))
            m = run_backup(repo, BackupOptions("s", src, backup_type=kind, at=T0 + timedelta(day)))
            want[m["id"]] = tree_digest(src)
        report = prune(repo, keep_last=keep_last, keep_days=keep_days, at=T0 + timedelta(len(runs)))
        kept = [d.id for d in report.decisions if d.keep]
        assert kept and repo.version_ids() == sorted(kept)
        assert verify(repo, read_data=True).ok
        for vid in kept:
            restore_version(repo, vid, root / "out" / vid)
            assert tree_digest(root / "out" / vid) == want[vid]
