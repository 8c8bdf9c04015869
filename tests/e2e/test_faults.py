"""What a plan from the catalog meets on the lab when a host's disk fills, a host drops off the
network mid-step, or the backups are gone — and that the run, once the fault is mended,
ends with the database equal to the truth (issue 9).

Each test breaks DB01 on EX2016 (a damaged page), plans its restore with ``dr plan``, adds
the fault with ``dr lab break``, runs the plan with ``dr run start --non-interactive`` over
WinRM against ``dr lab serve``, and reads what the run said and where it stopped; then mends
the fault as a responder would (``dr lab repair``, ``dr run ack --decision retry``,
``dr run resume``) and proves the restored database with ``dr lab verify``.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from typing import Any

from dr.exchange import ese
from dr.lab import exstore
from tests.e2e.conftest import LabWorkspace, dr_with, iso

EDB = "E:\\ExchangeDatabases\\DB01\\DB01.edb"


def _target(lab_ws: LabWorkspace) -> datetime:
    start = datetime.fromisoformat(lab_ws.lab().state["start"])
    return start + timedelta(hours=8)  # after the 12:00 incremental, before 16:00


def _steps(env: dict[str, str]) -> tuple[str, dict[str, dict[str, Any]]]:
    """The newest run's id, and its steps by id as `dr run status --json` shows them."""
    runs = json.loads(dr_with(env, "run", "status", "--json").stdout)
    run = str(max(runs, key=lambda r: r["created"])["id"])
    status = json.loads(dr_with(env, "run", "status", run, "--json").stdout)
    return run, {s["id"]: s for s in status["steps"]}


def _journal(env: dict[str, str], run: str, step: str) -> str:
    return dr_with(env, "run", "log", run, step).stdout


def _restored(lab_ws: LabWorkspace, point: datetime) -> None:
    verdict = json.loads(
        lab_ws.dr("lab", "verify", "--db", "DB01", "--at", point.isoformat(), "--json").stdout
    )
    assert verdict["equal"] and verdict["found"] == verdict["expected"] > 0, verdict
    lab = lab_ws.lab()
    assert lab.verify("DB02", lab.now()).equal, "the other database was not touched"


def _retry_and_resume(
    lab_ws: LabWorkspace, run: str, step: str
) -> subprocess.CompletedProcess[str]:
    with lab_ws.serving() as env:
        acked = dr_with(env, "run", "ack", run, step, "--by", "responder", "--decision", "retry")
        assert acked.returncode == 0, acked.stdout + acked.stderr
        return dr_with(env, "run", "resume", run)


# --- a full disk ----------------------------------------------------------------------------


def test_a_full_database_drive_pauses_the_copy_aside_and_the_run_ends_once_it_is_freed(
    lab_ws: LabWorkspace,
) -> None:
    lab_ws.dr("lab", "break", "corrupt-page", "--db", "DB01")
    plan = lab_ws.plan("database", "--db", "DB01", "--at", iso(_target(lab_ws)))
    point = datetime.fromisoformat(plan["recoverable_point"])
    said = lab_ws.dr("lab", "break", "fill-disk", "--db", "DB01")
    assert "EX2016: drive E: is full" in said.stdout

    out = lab_ws.run_plan()

    assert out.returncode == 10, out.stdout + out.stderr  # waiting for a person
    run, steps = _steps(lab_ws.env)
    copy = "copy-database-files.EX2016.DB01"
    assert steps[copy]["state"] == "paused", steps[copy]
    text = out.stdout + out.stderr
    assert f"{copy} (paused)" in text and "There is not enough space on the disk." in text
    assert "not retried: the drive the step writes to is full" in text, text
    assert "free space on that drive" in text
    assert "attempt 2" not in _journal(lab_ws.env, run, copy), "a full disk is not retried"
    assert "E: has 0 bytes free; copying DB01's files aside needs" in text, text
    later = [s for s in plan["steps"] if s["kind"] in ("restore-database-backup", "soft-recovery")]
    assert all(steps[s["id"]]["state"] == "pending" for s in later), "nothing replaced DB01"
    host = lab_ws.lab().host("EX2016")
    assert exstore.check_pages(host.path(EDB))[1] == [1], "DB01 is as the failure left it"
    free = lab_ws.dr("lab", "exec", "EX2016", "(Get-PSDrive -Name E).Free").stdout.strip()
    assert free == "0", "where a responder looks, the drive is full"

    lab_ws.dr("lab", "repair", "fill-disk", "--host", "EX2016", "--drive", "E")
    resumed = _retry_and_resume(lab_ws, run, copy)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _restored(lab_ws, point)
    aside = lab_ws.lab().host("EX2016").path("E:\\ExchangeDatabases\\DB01.pre-restore\\DB01.edb")
    assert exstore.check_pages(aside)[1] == [1], "the damaged original was copied aside"
    faults = json.loads((lab_ws.ws / "lab" / "lab.json").read_text())
    assert [f["kind"] for f in faults["faults"]] == ["corrupt-page", "fill-disk"]
    assert [r["kind"] for r in faults["repairs"]] == ["fill-disk"]


# --- a host gone mid-step -------------------------------------------------------------------


def test_a_host_lost_during_replay_pauses_the_step_and_the_resumed_run_restores_exactly(
    lab_ws: LabWorkspace,
) -> None:
    """EX2016 runs eseutil /r to its end and drops off the network before its answer comes
    back: the engine knows only that the connection went. Once the host is back, the step
    runs again over a database already replayed — and the result is still the truth."""
    lab_ws.dr("lab", "break", "corrupt-page", "--db", "DB01")
    plan = lab_ws.plan("database", "--db", "DB01", "--at", iso(_target(lab_ws)))
    point = datetime.fromisoformat(plan["recoverable_point"])
    said = lab_ws.dr(
        "lab", "break", "unreachable", "--at-step", "soft-recovery",
        "--plan", str(lab_ws.root / "plan.json"),
    ).stdout  # fmt: skip
    assert "EX2016 will stop answering during step soft-recovery.EX2016.DB01" in said

    out = lab_ws.run_plan()

    assert out.returncode == 10, out.stdout + out.stderr
    run, steps = _steps(lab_ws.env)
    replay = "soft-recovery.EX2016.DB01"
    assert steps[replay]["state"] == "paused", steps[replay]
    text = out.stdout + out.stderr
    line = next(x for x in text.splitlines() if f"{replay} (paused)" in x)
    assert "EX2016: E8640" in line, line  # the plan's host, and the transport's error
    assert "the connection dropped before the host answered; the command may have run" in line
    mount = "mount-database.EX2016.DB01.DB01"
    assert steps[mount]["state"] == "pending"
    header = ese.read_file(lab_ws.lab().host("EX2016").path(EDB))
    assert isinstance(header, ese.DatabaseHeader)
    assert header.state == ese.DbState.CLEAN_SHUTDOWN, "the replay ran before the host dropped"
    with lab_ws.serving() as env:
        again = dr_with(env, "run", "resume", run)
    assert again.returncode == 10, "still paused: nothing answers"

    lab_ws.dr("lab", "repair", "unreachable", "--host", "EX2016")
    resumed = _retry_and_resume(lab_ws, run, replay)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _restored(lab_ws, point)
    host = lab_ws.lab().host("EX2016")
    sg, db = host.find_db("DB01")
    assert host.dbs[host.db_key(sg, db)].mounted


# --- backups gone ---------------------------------------------------------------------------


def test_expired_backups_are_refused_by_the_planner_and_stop_a_plan_made_before(
    lab_ws: LabWorkspace,
) -> None:
    lab_ws.dr("lab", "break", "corrupt-page", "--db", "DB01")
    lab_ws.plan("database", "--db", "DB01", "--at", iso(_target(lab_ws)))  # made before
    before = lab_ws.lab().host("EX2016").path(EDB).read_bytes()
    said = lab_ws.dr("lab", "break", "expire-backups", "--db", "DB01")
    assert "are expired in the catalog (retention)" in said.stdout

    refused = lab_ws.dr(
        "plan", "database", "--db", "DB01", "--at", iso(_target(lab_ws)),
        "-o", str(lab_ws.root / "again.json"), check=False,
    )  # fmt: skip
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "was expired by retention" in refused.stderr
    assert refused.stderr.count("\n") <= 2 and "Traceback" not in refused.stderr

    out = lab_ws.run_plan()

    # the run refuses to begin: what its fetch step needs is no longer in the catalog
    assert out.returncode == 2, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "was expired by retention" in text and "not started" in text, text
    runs = json.loads(lab_ws.dr("run", "status", "--json").stdout)
    assert not [r for r in runs if r["plan"] == "plan.json"], "no run of the plan was begun"
    assert lab_ws.lab().host("EX2016").path(EDB).read_bytes() == before, "nothing changed"


def test_backups_the_repository_lost_stop_the_run_at_the_chain_check(lab_ws: LabWorkspace) -> None:
    """A lost tape: the catalog still lists the backups, so the plan is made; the run's
    first step finds the repository versions gone and stops before the host is touched."""
    lab_ws.dr("lab", "break", "corrupt-page", "--db", "DB01")
    said = lab_ws.dr("lab", "break", "expire-backups", "--db", "DB01", "--lost")
    assert "the catalog still lists them" in said.stdout
    plan = lab_ws.plan("database", "--db", "DB01", "--at", iso(_target(lab_ws)))
    chain = plan["steps"][0]["params"]["chain"]

    out = lab_ws.run_plan()

    assert out.returncode == 7, out.stdout + out.stderr
    run, steps = _steps(lab_ws.env)
    check = "check-backup-chain.EX2016.DB01"
    assert steps[check]["state"] == "failed", steps[check]
    log = _journal(lab_ws.env, run, check)
    assert "the chain is not ready" in log
    assert all(f"{name}: version" in log for name in chain), log
    assert "is not in the repository" in log
    assert all(s["state"] == "pending" for s in steps.values() if s["host"] == "EX2016")
