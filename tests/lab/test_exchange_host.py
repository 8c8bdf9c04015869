"""The lab Exchange host behaves like the real thing where recovery depends on it."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from dr.exchange import ese
from dr.exchange.eseutil import parse_mh, parse_ml
from dr.lab import exstore, extools
from dr.lab.estate import Lab
from dr.lab.exhost import ExchangeHost

ROOT = Path(__file__).resolve().parents[2]
EDB = "E:\\ExchangeDatabases\\DB01\\DB01.edb"
LOGS = "F:\\ExchangeLogs\\DB01"


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    made = Lab.create(tmp_path / "lab", ROOT / "examples" / "estate.yaml", seed=5)
    made.advance(made.now() + timedelta(hours=3))
    return made


def _eseutil(host: ExchangeHost, *argv: str, cwd: str | None = None) -> extools.Any:
    host.native_cwd = cwd
    return extools.eseutil(list(argv), host)


def test_the_database_file_carries_a_real_ese_header_and_the_mail(lab: Lab) -> None:
    host = lab.host("EX2016")
    header = ese.read_file(host.path(EDB))
    assert isinstance(header, ese.DatabaseHeader)
    assert header.state == ese.DbState.DIRTY_SHUTDOWN and header.page_size == 32768
    log = ese.read_file(host.path(LOGS + "\\E00.log"))
    assert isinstance(log, ese.LogHeader) and log.signature == header.log_signature
    held = exstore.contents(host.path(EDB))
    assert held == lab.truth("DB01", lab.now()) and held


def test_2003_stores_have_4k_pages_and_a_streaming_file(lab: Lab) -> None:
    host = lab.host("EX2003")
    _sg, db = host.find_db("Sales Store")
    assert ese.read_file(host.path(db.edb)).page_size == 4096  # type: ignore[union-attr]
    assert host.path(db.stm).exists()  # type: ignore[arg-type]


def test_eseutil_answers_in_the_format_the_parsers_read(lab: Lab) -> None:
    host = lab.host("EX2016")
    host.dismount("DB01")
    mh = _eseutil(host, "/mh", EDB)
    assert mh.exit_code == 0
    facts = parse_mh(mh.stdout)
    assert facts.state_text == "Clean Shutdown" and facts.log_required == (0, 0)
    ml = _eseutil(host, "/ml", "E00", cwd=LOGS)
    assert ml.exit_code == 0 and parse_ml(ml.stdout) is not None


def test_a_mounted_database_and_its_current_log_are_locked(lab: Lab) -> None:
    host = lab.host("EX2016")
    out = extools.robocopy(["E:\\ExchangeDatabases\\DB01", "T:\\aside", "DB01.edb"], host)
    assert out.exit_code & 8 and "being used by another process" in out.stdout
    out = extools.robocopy([LOGS, "T:\\aside", "E00.log"], host)
    assert out.exit_code & 8
    host.dismount("DB01")
    out = extools.robocopy(["E:\\ExchangeDatabases\\DB01", "T:\\aside", "DB01.edb"], host)
    assert out.exit_code == 1 and host.path("T:\\aside\\DB01.edb").exists()


def test_mount_refuses_a_dirty_database(lab: Lab) -> None:
    host = lab.host("EX2016")
    host.crash("DB01")
    with pytest.raises(Exception, match="ec=-550"):
        host.mount("DB01")


def test_mounting_a_database_whose_file_is_missing_creates_an_empty_one(lab: Lab) -> None:
    host = lab.host("EX2016")
    host.dismount("DB01")
    host.path(EDB).unlink()
    warnings = host.mount("DB01")
    assert any("new, empty database" in w for w in warnings)
    assert exstore.contents(host.path(EDB)) == {}


def _restore_copy(host: ExchangeHost, work: str) -> None:
    """A restore to ``work``: the database copied while dirty, its logs beside it."""
    target = host.path(work)
    target.mkdir(parents=True)
    shutil.copy2(host.path(EDB), target / "DB01.edb")
    for log in host.path(LOGS).glob("E00*.log"):
        shutil.copy2(log, target / log.name)


def test_soft_recovery_replays_the_logs_to_clean_shutdown(lab: Lab) -> None:
    host = lab.host("EX2016")
    first = exstore.read_db_header(host.path(EDB)).gen_min_required
    host.roll_all()
    lab.advance(lab.now() + timedelta(hours=2))
    host.roll_all()
    work = "T:\\work"
    _restore_copy(host, work)
    path = host.path(work + "\\DB01.edb")
    stale = ese.DatabaseHeader(**{**vars(exstore.read_db_header(path)), "gen_min_required": first})
    exstore.write_header(path, stale)
    out = _eseutil(host, "/r", "E00", "/l", work, "/s", work, "/d", work)
    assert out.exit_code == 0, out.stdout
    assert exstore.read_db_header(path).state == ese.DbState.CLEAN_SHUTDOWN
    assert exstore.contents(path) == exstore.contents(host.path(EDB))


def test_soft_recovery_stops_on_a_missing_generation_and_a_foreign_log(lab: Lab) -> None:
    host = lab.host("EX2016")
    host.roll_all()
    lab.advance(lab.now() + timedelta(hours=1))
    host.roll_all()
    work = "T:\\work"
    _restore_copy(host, work)
    path = host.path(work + "\\DB01.edb")
    header = exstore.read_db_header(path)
    exstore.write_header(path, ese.DatabaseHeader(**{**vars(header), "gen_min_required": 1}))
    logs = sorted(host.path(work).glob("E00000*.log"))
    logs[0].unlink()
    out = _eseutil(host, "/r", "E00", "/l", work, "/s", work, "/d", work)
    assert out.exit_code == -543 and "JET_errRequiredLogFilesMissing" in out.stdout
    assert exstore.read_db_header(path).state == ese.DbState.DIRTY_SHUTDOWN


def test_verify_names_every_message_that_differs(lab: Lab) -> None:
    host = lab.host("EX2016")
    early = lab.now()
    lab.advance(lab.now() + timedelta(hours=2))
    verdict = lab.verify("DB01", early)
    assert not verdict.equal
    assert verdict.extra or verdict.moved or verdict.missing
    assert lab.verify("DB01", lab.now()).equal
    assert host.find_db("DB01")


def test_the_same_seed_builds_the_same_lab(tmp_path: Path) -> None:
    made = []
    for name in ("a", "b"):
        lab = Lab.create(tmp_path / name, ROOT / "examples" / "estate.yaml", seed=9)
        lab.advance(lab.now() + timedelta(hours=2))
        made.append(sorted(m.row() for m in lab.truth("DB01", lab.now()).values()))
    assert made[0] == made[1] and made[0]


def test_a_recovery_database_mounted_before_its_files_exist_is_empty(lab: Lab) -> None:
    """Why the order matters: Exchange mounts a new, empty database over a missing file."""
    host = lab.host("EX2016")
    host.new_recovery_database("RDB1", "T:\\RDB1\\DB01.edb", "T:\\RDB1\\Logs")
    warnings = host.mount("RDB1")
    assert any("new, empty database" in w for w in warnings)
    assert exstore.contents(host.path("T:\\RDB1\\DB01.edb")) == {}
    host.new_recovery_database("RDB2", "T:\\RDB2\\DB02.edb", "T:\\RDB2\\Logs")
    with pytest.raises(Exception, match="Only one recovery database"):
        host.mount("RDB2")


def test_purged_messages_are_gone_from_the_store_and_the_truth_says_which(lab: Lab) -> None:
    """``dr lab break purge-messages``: the oldest messages of one mailbox deleted as the
    store logs a delete; a message-restore check names each of them until it is back."""
    from dr.errors import LabError
    from dr.lab import faults

    before = lab.now()
    held = {m.id for m in lab.truth("DB02", before).values() if m.mailbox == "finance"}
    lab.set_now(before + timedelta(minutes=5))
    said = faults.purge_messages(lab, "finance", 2)
    fault = lab.state["faults"][-1]
    assert fault["kind"] == "purge-messages" and fault["mailbox"] == "finance"
    gone = set(fault["messages"])
    assert len(gone) == 2 and gone <= held and all(m in said for m in gone)
    live = exstore.contents(lab.host("EX2016").path("E:\\ExchangeDatabases\\DB02\\DB02.edb"))
    assert not gone & {m.id for m in live.values()}
    assert lab.verify("DB02", lab.now()).equal, "the truth logged the deletes"
    verdict = lab.verify_mailbox("finance", before, "Recovered Items", deleted_by=lab.now())
    assert {m.id for m in verdict.missing} == gone and verdict.expected == 2
    assert not verdict.equal and verdict.found == 0
    with pytest.raises(LabError, match="no mailbox"):
        faults.purge_messages(lab, "nobody", 1)
    with pytest.raises(LabError, match="at least one"):
        faults.purge_messages(lab, "finance", 0)


def test_a_file_the_directory_does_not_know_mounts_only_with_allow_file_restore(lab: Lab) -> None:
    """Set-MailboxDatabase -AllowFileRestore (2010+): "$false: … You can't mount a database
    that doesn't match the database entry in Active Directory. This is the default value." """
    host = lab.host("EX2016")
    host.dismount("DB01")
    kept = host.path("T:\\kept.edb")
    shutil.copy2(host.path(EDB), kept)
    host.path(EDB).unlink()
    host.mount("DB01")  # a new, empty database: the directory now knows that one
    host.dismount("DB01")
    shutil.copy2(kept, host.path(EDB))  # the old database's file put back
    with pytest.raises(Exception, match="ec=-531"):
        host.mount("DB01")
    assert not host.dbs[host.db_key(*host.find_db("DB01"))].mounted
    host.dbs[host.db_key(*host.find_db("DB01"))].allow_file_restore = True
    host.mount("DB01")
    assert exstore.contents(host.path(EDB)) == exstore.contents(kept)
    host.dismount("DB01")
    host.dbs[host.db_key(*host.find_db("DB01"))].allow_file_restore = False
    host.mount("DB01")  # now the file the directory knows: no flag needed


def test_the_same_database_s_own_backup_mounts_without_the_flag(lab: Lab) -> None:
    host = lab.host("EX2016")
    host.dismount("DB01")
    kept = host.path("T:\\kept.edb")
    shutil.copy2(host.path(EDB), kept)
    host.mount("DB01")
    host.dismount("DB01")
    shutil.copy2(kept, host.path(EDB))
    host.mount("DB01")
