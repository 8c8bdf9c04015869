"""Taking backups end to end: the loopback WinRS endpoint, the host simulator, the store.

Each run goes through pywinrm and HTTP to the simulator, through the engine's runner and
journal, into the repository and the catalog; restores are compared byte for byte with
what the simulator produced (its ground truth).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dr.backup.run import BackupResult, run_remote_backup
from dr.errors import CircularLoggingViolation, LogSequenceViolation
from dr.model.inventory import Inventory
from dr.model.sets import BackupSet
from dr.store.restore import restore_version
from engine.errors import AuthenticationError

from .conftest import Lab

MakeLab = Callable[..., Lab]


def _set(inv: Inventory, name: str) -> BackupSet:
    return next(s for s in inv.backup_sets if s.name == name)


def _restored(lab: Lab, result: BackupResult, dest: Path) -> dict[str, bytes]:
    restore_version(lab.repo, result.version, dest)
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}


def _truth(lab: Lab, count: int) -> dict[str, bytes]:
    """The last ``count`` backups the simulator took, as the store lays them out."""
    out: dict[str, bytes] = {}
    for backup in lab.sim.backups[-count:]:
        folder = backup.stream.replace(" ", "-")
        out.update({f"{folder}/{name}": data for name, data in backup.files.items()})
    return out


def _last(lab: Lab, stream: str):  # type: ignore[no-untyped-def]
    return [b for b in lab.sim.backups if b.stream == stream][-1]


def _logs(lab: Lab, run_id: int, sg: str) -> tuple[int, int]:
    gens = [
        (a.first_gen, a.last_gen)
        for a in lab.catalog.artifacts(run_id=run_id, storage_group=sg)
        if a.kind == "logs"
    ]
    return min(g[0] for g in gens), max(g[1] for g in gens)  # type: ignore[type-var]


def test_2016_full_incremental_then_differential(make_lab: MakeLab, tmp_path: Path) -> None:
    lab = make_lab("EX2016")
    bset = _set(lab.inventory, "ex2016-exchange")

    full = run_remote_backup(lab.context(), bset, "full")
    assert _restored(lab, full, tmp_path / "r1") == _truth(lab, 2)
    edb = lab.catalog.artifacts(run_id=full.run_id, database="EX2016/DB01/DB01")
    assert [(a.kind, a.state) for a in edb] == [("database", "Dirty Shutdown")]
    stream = lab.sim.streams["DB01"]
    assert (edb[0].log_required_first, edb[0].log_required_last) == (4, 5)
    assert edb[0].log_signature == stream.signature
    assert _logs(lab, full.run_id, "EX2016/DB01") == (1, 4)
    assert lab.sim.logs(stream) == [4]  # the full truncated below the checkpoint

    lab.sim.workload("DB01", 3)
    incremental = run_remote_backup(lab.context(), bset, "incremental")
    assert _restored(lab, incremental, tmp_path / "r2") == _truth(lab, 2)
    assert _logs(lab, incremental.run_id, "EX2016/DB01") == (4, 8)
    assert not lab.catalog.artifacts(run_id=incremental.run_id, kind="database")

    # An incremental truncated the logs since the full: a differential now has a hole.
    versions = lab.repo.version_ids()
    lab.sim.workload("DB01", 1)
    with pytest.raises(LogSequenceViolation, match="differential"):
        run_remote_backup(lab.context(), bset, "differential")
    assert lab.repo.version_ids() == versions
    assert len(lab.catalog.runs(set_name=bset.name)) == 2

    run_remote_backup(lab.context(), bset, "full")
    lab.sim.workload("DB01", 2)
    differential = run_remote_backup(lab.context(), bset, "differential")
    assert _restored(lab, differential, tmp_path / "r3") == _truth(lab, 2)
    types = [r.backup_type for r in lab.catalog.runs(set_name=bset.name)]
    assert types == ["full", "incremental", "full", "differential"]
    assert lab.sim.logs(stream)[0] <= _logs(lab, differential.run_id, "EX2016/DB01")[0]


def test_2003_storage_groups_full_differential_incremental(
    make_lab: MakeLab, tmp_path: Path
) -> None:
    lab = make_lab("EX2003")
    bset = _set(lab.inventory, "ex2003-exchange")
    sg = "EX2003/First Storage Group"

    full = run_remote_backup(lab.context(), bset, "full")
    assert _restored(lab, full, tmp_path / "r1") == _truth(lab, 2)
    bkf = lab.catalog.artifacts(run_id=full.run_id, storage_group=sg)
    assert [(a.kind, a.first_gen, a.last_gen) for a in bkf] == [("database", 1, 4)]
    assert bkf[0].log_signature == lab.sim.streams["First Storage Group"].signature
    assert b"priv1.edb\t" in _last(lab, "First Storage Group").files["backup.bkf"]

    lab.sim.workload("First Storage Group", 2)
    differential = run_remote_backup(lab.context(), bset, "differential")
    assert _restored(lab, differential, tmp_path / "r2") == _truth(lab, 2)
    truth = _last(lab, "First Storage Group")
    assert _logs(lab, differential.run_id, sg) == (truth.first_gen, truth.last_gen) == (4, 7)
    assert not _last(lab, "First Storage Group").truncated

    lab.sim.workload("First Storage Group", 1)
    incremental = run_remote_backup(lab.context(), bset, "incremental")
    assert _restored(lab, incremental, tmp_path / "r3") == _truth(lab, 2)
    truth = _last(lab, "First Storage Group")
    assert _logs(lab, incremental.run_id, sg) == (truth.first_gen, truth.last_gen) == (4, 9)
    assert _last(lab, "First Storage Group").truncated
    assert [r.backup_type for r in lab.catalog.runs(set_name=bset.name)] == [
        "full", "differential", "incremental"]  # fmt: skip


def test_a_refused_incremental_sends_no_command(make_lab: MakeLab, estate: Inventory) -> None:
    server = estate.server("EX2016")
    groups = [server.storage_groups[0].model_copy(update={"circular_logging": True}),
              *server.storage_groups[1:]]  # fmt: skip
    inv = estate.model_copy(
        update={"servers": [s if s.name != "EX2016" else server.model_copy(
            update={"storage_groups": groups}) for s in estate.servers]}
    )  # fmt: skip
    lab = make_lab("EX2016", inv)
    with pytest.raises(CircularLoggingViolation, match="EX2016/DB01"):
        run_remote_backup(lab.context(), _set(inv, "ex2016-exchange"), "incremental")
    assert lab.commands() == 0
    assert lab.repo.version_ids() == []


def test_circular_logging_found_on_the_host_stops_the_run(make_lab: MakeLab) -> None:
    lab = make_lab("EX2016")
    bset = _set(lab.inventory, "ex2016-exchange")
    run_remote_backup(lab.context(), bset, "full")
    lab.sim.set_circular_logging("DB02", True)
    backups = len(lab.sim.backups)
    with pytest.raises(CircularLoggingViolation, match="circular logging is on for DB02"):
        run_remote_backup(lab.context(), bset, "incremental")
    assert len(lab.repo.version_ids()) == 1
    assert all(b.stream != "DB02" for b in lab.sim.backups[backups:])


def test_a_wrong_password_is_one_transport_error(make_lab: MakeLab) -> None:
    lab = make_lab("EX2016")
    lab.password = "wrong"
    with pytest.raises(AuthenticationError, match="rejected"):
        run_remote_backup(lab.context(), _set(lab.inventory, "ex2016-exchange"), "full")
    assert lab.server.rejected_logins >= 1
    assert lab.commands() == 0
