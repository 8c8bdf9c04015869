"""Exchange 2003 restores on the lab: NTBackup's restore and ``eseutil /cc``, proved
against the ground truth (Exchange Server 2003 Disaster Recovery Operations Guide)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dr.exchange import ese
from dr.lab import extools, legacy
from dr.lab.estate import Lab
from dr.lab.exhost import ExchangeHost
from dr.lab.hostsim import _ToolError

ROOT = Path(__file__).resolve().parents[2]
SG, DB, OTHER = "First Storage Group", "Mailbox Store (EX2003)", "Second Storage Group"
TEMP = "T:\\DRTemp\\First Storage Group"


def _drain(gen: Any) -> Any:
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


def _backup(host: ExchangeHost, kind: str, dest: str, sg: str = SG) -> str:
    _drain(host.ntbackup({"sg": sg, "type": kind, "dest": dest}))
    return dest + "\\backup.bkf"


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    made = Lab.create(tmp_path / "lab", ROOT / "examples" / "estate.yaml", seed=7)
    made.advance(made.now() + timedelta(hours=2))
    return made


def _after_full(lab: Lab) -> tuple[ExchangeHost, str, datetime]:
    """A full backup, then two more hours of mail, then the store dismounted for a restore."""
    host = lab.host("EX2003")
    bkf = _backup(host, "full", "T:\\Backups\\full")
    at_backup = lab.now()
    lab.advance(lab.now() + timedelta(hours=2))
    host.dismount(DB)
    return host, bkf, at_backup


def _allow(host: ExchangeHost) -> None:
    sg, db = host.find_db(DB)
    host.dbs[host.db_key(sg, db)].allow_file_restore = True


def _log_folder(host: ExchangeHost) -> dict[str, str]:
    folder = host.log_dir(host.streams[SG])
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _cc(host: ExchangeHost, *argv: str) -> Any:
    host.native_cwd = None
    return extools.eseutil(["/cc", *argv], host)


def test_a_restore_needs_the_store_dismounted_and_the_overwrite_flag(lab: Lab) -> None:
    host = lab.host("EX2003")
    bkf = _backup(host, "full", "T:\\Backups\\full")
    with pytest.raises(_ToolError, match="is mounted"):
        legacy.ntbackup_restore(host, bkf, "Set 1", TEMP, last_restore_set=False, databases=[DB])
    host.dismount(DB)
    with pytest.raises(_ToolError, match="can be overwritten by a restore"):
        legacy.ntbackup_restore(host, bkf, "Set 1", TEMP, last_restore_set=False, databases=[DB])
    _allow(host)
    report = legacy.ntbackup_restore(
        host, bkf, "Set 1", TEMP, last_restore_set=False, databases=[DB]
    )
    assert "1 database(s)" in report[0]
    assert host.fs.host_path(TEMP + "\\restore.env").exists()


def test_another_groups_restore_env_in_the_temp_folder_fails_the_restore(lab: Lab) -> None:
    host = lab.host("EX2003")
    other = _backup(host, "full", "T:\\Backups\\sales", sg=OTHER)
    ours = _backup(host, "full", "T:\\Backups\\full")
    host.dismount(DB)
    for sg in host.groups():
        for db in sg.databases:
            host.dismount(db.name)
    for sg in host.groups():
        for db in sg.databases:
            host.dbs[host.db_key(sg, db)].allow_file_restore = True
    legacy.ntbackup_restore(host, other, "Set 1", TEMP, last_restore_set=False)
    with pytest.raises(_ToolError, match=r"restore\.env of storage group 'Second Storage Group'"):
        legacy.ntbackup_restore(host, ours, "Set 2", TEMP, last_restore_set=False, databases=[DB])


def test_point_in_time_cc_t_plays_only_the_restore_folder(lab: Lab) -> None:
    host, bkf, at_backup = _after_full(lab)
    _allow(host)
    live = _log_folder(host)
    legacy.ntbackup_restore(host, bkf, "Set 1", TEMP, last_restore_set=False, databases=[DB])
    dirty = ese.read_file(host.path(host.find_db(DB)[1].edb))
    assert dirty.state == ese.DbState.DIRTY_SHUTDOWN  # type: ignore[union-attr]
    out = _cc(host, TEMP, "/t")
    assert out.exit_code == 0, out.stdout
    assert _log_folder(host) == live  # the live log folder is never touched
    assert not host.fs.host_path(TEMP + "\\restore.env").exists()
    verdict = lab.verify(DB, at_backup)
    assert verdict.equal, verdict.as_dict()
    assert not lab.verify(DB, lab.now()).equal  # the later mail is not there: a point in time


def test_point_of_failure_cc_plays_the_groups_logs_too(lab: Lab) -> None:
    host, bkf, _ = _after_full(lab)
    _allow(host)
    legacy.ntbackup_restore(host, bkf, "Set 1", TEMP, last_restore_set=False, databases=[DB])
    out = _cc(host, TEMP)
    assert out.exit_code == 0, out.stdout
    verdict = lab.verify(DB, lab.now())
    assert verdict.equal, verdict.as_dict()


def test_last_restore_set_starts_hard_recovery_itself(lab: Lab) -> None:
    host, bkf, _ = _after_full(lab)
    _allow(host)
    report = legacy.ntbackup_restore(
        host, bkf, "Set 1", TEMP, last_restore_set=True, databases=[DB]
    )
    assert "hard recovery" in report[-1]
    assert lab.verify(DB, lab.now()).equal
    host.mount(DB)  # Clean Shutdown: the store mounts it


def test_a_full_and_an_incremental_restore_into_one_restore_env(lab: Lab) -> None:
    host = lab.host("EX2003")
    full = _backup(host, "full", "T:\\Backups\\full")
    lab.advance(lab.now() + timedelta(hours=2))
    incr = _backup(host, "incremental", "T:\\Backups\\incr")
    at_incr = lab.now()
    lab.advance(lab.now() + timedelta(hours=1))
    host.dismount(DB)
    _allow(host)
    legacy.ntbackup_restore(host, full, "Set 1", TEMP, last_restore_set=False, databases=[DB])
    legacy.ntbackup_restore(host, incr, "Set 2", TEMP, last_restore_set=False, databases=[DB])
    assert _cc(host, TEMP, "/t").exit_code == 0
    assert lab.verify(DB, at_incr).equal


def test_a_missing_generation_stops_cc_with_543(lab: Lab) -> None:
    host, bkf, _ = _after_full(lab)
    _allow(host)
    legacy.ntbackup_restore(host, bkf, "Set 1", TEMP, last_restore_set=False, databases=[DB])
    folder = host.fs.host_path(TEMP)
    logs = sorted(p for p in folder.iterdir() if p.suffix == ".log")
    logs[0].unlink()
    out = _cc(host, TEMP, "/t")
    assert out.exit_code == -543 and "JET_errRequiredLogFilesMissing" in out.stdout
    assert (folder / "restore.env").exists()  # nothing is cleaned up after a failure


def test_a_foreign_log_stops_cc_with_530(lab: Lab) -> None:
    host, bkf, _ = _after_full(lab)
    _allow(host)
    legacy.ntbackup_restore(host, bkf, "Set 1", TEMP, last_restore_set=False, databases=[DB])
    folder = host.fs.host_path(TEMP)
    ours = sorted(p for p in folder.iterdir() if p.suffix == ".log")[-1]
    theirs = host.log_dir(host.streams[OTHER])
    foreign = next(p for p in sorted(theirs.iterdir()) if p.suffix == ".log")
    data = foreign.read_bytes()
    header = ese.read_header(data)
    mine = ese.read_header(ours.read_bytes())
    assert isinstance(header, ese.LogHeader) and isinstance(mine, ese.LogHeader)
    swapped = ese.log_header_bytes(
        ese.LogHeader(generation=mine.generation, signature=header.signature,
                      created=header.created, previous_created=None, page_size=4096)
    )  # fmt: skip
    ours.write_bytes(swapped + data[len(swapped) :])
    out = _cc(host, TEMP, "/t")
    assert out.exit_code == -530 and "JET_errBadLogSignature" in out.stdout


def test_cc_without_a_restore_env_is_file_not_found(lab: Lab) -> None:
    host = lab.host("EX2003")
    out = _cc(host, TEMP)
    assert out.exit_code == -1811


def test_cm_shows_the_restore_env_until_hard_recovery_removes_it(lab: Lab) -> None:
    """``eseutil /cm TEMP`` (the restore step's check) lists the group, the store restored
    and its files, and the log range; after a good ``/cc`` there is no restore.env: -1811."""
    host, bkf, _ = _after_full(lab)
    _allow(host)
    legacy.ntbackup_restore(host, bkf, "Set 1", TEMP, last_restore_set=False, databases=[DB])
    host.native_cwd = None
    shown = extools.eseutil(["/cm", TEMP], host)
    assert shown.exit_code == 0, shown.stdout
    for line in (f"Restore log file: {TEMP}", f"Backup Instance: {SG}", "Databases: 1 database(s)",
                 f"Database Name: {DB}", "E:\\Exchsrvr\\mdbdata\\priv1.edb",
                 "Recover Status: recoverNotStarted"):  # fmt: skip
        assert line in shown.stdout
    assert _cc(host, TEMP, "/t").exit_code == 0
    assert extools.eseutil(["/cm", TEMP], host).exit_code == -1811


def test_esm_actions_on_one_store_leave_the_others_mounted(lab: Lab) -> None:
    """Dismount Store, the overwrite flag and Mount Store act on one store; mount refuses a
    restored store whose hard recovery has not run; a mailbox opens only on a mounted one."""
    host = lab.host("EX2003")
    bkf = _backup(host, "full", "T:\\Backups\\full")
    assert "dismounted" in legacy.esm_dismount(host, DB)
    mounted = {d.name: host.dbs[host.db_key(sg, d)].mounted for sg in host.groups()
               for d in sg.databases}  # fmt: skip
    assert mounted == {DB: False, "Public Folder Store (EX2003)": True, "Sales Store": True}
    with pytest.raises(_ToolError, match="not mounted"):
        legacy.open_mailbox(host, DB)
    legacy.esm_allow_restore(host, DB)
    sg, db = host.find_db(DB)
    assert host.dbs[host.db_key(sg, db)].allow_file_restore
    legacy.ntbackup_restore(host, bkf, "Set 1", TEMP, last_restore_set=False, databases=[DB])
    with pytest.raises(_ToolError):
        legacy.esm_mount(host, DB)  # Dirty Shutdown until eseutil /cc
    assert _cc(host, TEMP, "/t").exit_code == 0
    assert "mounted" in legacy.esm_mount(host, DB)
    assert "messages" in legacy.open_mailbox(host, DB)


def test_robocopy_copies_the_named_files_and_leaves_out_xf(lab: Lab) -> None:
    """The 2003 copy aside: a mounted store holds its files open (ERROR 32, exit 8), so the
    restored store's files are named and the open E00.log left out with /XF; words after
    /XF and /XD are those options' values, never patterns of files to copy."""
    host = lab.host("EX2003")
    host.crash(DB)
    data, logs = "E:\\Exchsrvr\\mdbdata", "F:\\Exchsrvr\\Logs\\First Storage Group"
    out = extools.robocopy([data, data + ".aside", "priv1.edb", "priv1.stm", "/COPY:DAT"], host)
    assert out.exit_code == 1, out.stdout
    assert sorted(p.name for p in host.fs.host_path(data + ".aside").iterdir()) == [
        "priv1.edb", "priv1.stm"]  # fmt: skip
    held = extools.robocopy([logs, logs + ".a", "E00*.log", "E00.chk", "/R:2"], host)
    assert held.exit_code & 8 and "ERROR 32" in held.stdout and "E00.log" in held.stdout
    out = extools.robocopy([logs, logs + ".b", "E00*.log", "E00.chk", "/XF", "E00.log"], host)
    assert out.exit_code == 1, out.stdout
    copied = {p.name for p in host.fs.host_path(logs + ".b").iterdir()}
    there = {p.name for p in host.fs.host_path(logs).iterdir() if p.name.startswith("E00")}
    assert copied == there - {"E00.log"} and "E00.chk" in copied
    whole = extools.robocopy(["E:\\Exchsrvr", "E:\\Copy", "/E", "/XD", "E:\\Exchsrvr\\x"], host)
    assert whole.exit_code & 8, "every file was tried: the mounted stores' files fail"


def test_eseutil_runs_from_exchsrvr_bin_only_and_not_on_a_mounted_store(lab: Lab) -> None:
    """The 2003 variants call ``<install path>\\bin\\eseutil.exe`` (KB 825088): a
    path where setup put no eseutil is "not recognized" (9009); a store's file while it is
    mounted is -1032 (JET_errFileAccessDenied), a plain error, not a crash."""
    from ps_tinyhost import collect

    from dr.lab.ps import run_cmd

    host = lab.host("EX2003")
    right = '"%ProgramFiles%\\Exchsrvr\\bin\\eseutil.exe" /mh E:\\Exchsrvr\\mdbdata\\pub1.edb'
    wrong = right.replace("Exchsrvr\\bin\\", "Exchsrvr\\")
    _, err, code = collect(run_cmd(wrong, host))
    assert code == 9009 and "is not recognized" in err
    out, _, code = collect(run_cmd(right, host))
    assert code == -1032 and "JET_errFileAccessDenied" in out  # the Public Folder Store runs
    host.dismount("Public Folder Store (EX2003)")
    out, _, code = collect(run_cmd(right, host))
    assert code == 0 and "Clean Shutdown" in out
    modern = lab.host("EX2016")
    assert not modern.program_found(wrong.split('"')[1].replace("%ProgramFiles%", "C:\\x"))
    assert modern.program_found(modern.env["ExchangeInstallPath"] + "Bin\\eseutil.exe")
    # "$env:ExchangeInstallPath\Bin\eseutil.exe": the install path's own trailing backslash
    assert modern.program_found(modern.env["ExchangeInstallPath"] + "\\Bin\\eseutil.exe")
