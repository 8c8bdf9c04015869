"""Exchange 2003 plans from the lab's own NTBackup backups, run to their end on the lab.

NTBackup writes one media file (``.bkf``) per storage group and run: the catalog records
it as the group's database artifact with no single database named. The planner's facts
must read that file as an image of every database of the group, with the logs it holds —
before they did, every 2003 point-in-time plan from dr's own backups was refused with
"no full backup at or before" the target although the full was there.

A 2003 restore is partly a person's work (Exchange System Manager, NTBackup): the run waits
at each manual step (exit 10), the test does what the step's instructions say with
``dr lab operator ...`` — every input read from the step's parameters, as a person reads
them from the runbook — then ``dr run ack`` and ``dr run resume``, until the run succeeds.
The restored store is then proved equal to the lab's ground truth.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from dr.lab import exstore
from dr.lab.legacy import RESTORE_ENV
from tests.e2e.conftest import LabWorkspace, dr_with, iso, newest_run

DB = "EX2003/First Storage Group/Mailbox Store (EX2003)"
PUBLIC = "EX2003/First Storage Group/Public Folder Store (EX2003)"
OTHER_GROUP = "EX2003/Second Storage Group/Sales Store"
LIVE_LOGS = r"F:\Exchsrvr\Logs\First Storage Group"
# what a person does at the console for each manual step of the 2003 variants
MANUAL = (
    "dismount-database",
    "allow-file-restore",
    "restore-database-backup",
    "restore-log-backup",
    "mount-database",
    "verify-mount",
)


def test_a_2003_database_is_planned_from_the_labs_ntbackup_backups(lab_ws: LabWorkspace) -> None:
    start = datetime.fromisoformat(lab_ws.lab().state["start"])
    target = start + timedelta(hours=23)  # after the 22:00 full and the 02:00 incremental
    plan = lab_ws.plan("database", "--db", DB, "--at", iso(target))
    (chain,) = plan["facts"]["chains"]
    assert chain["stream"] == "EX2003/First Storage Group"
    assert chain["base_type"] == "full"
    assert datetime.fromisoformat(chain["base_at"]) <= target
    assert len(chain["versions"]) >= 2  # the full and at least one incremental after it
    assert datetime.fromisoformat(chain["recoverable_point"]) <= target
    kinds = [s["kind"] for s in plan["steps"]]
    assert kinds.index("restore-database-backup") < kinds.index("hard-recovery")
    assert kinds.count("restore-log-backup") == len(chain["versions"]) - 1


def test_a_point_in_time_restore_of_a_damaged_2003_store_runs_to_its_end_and_equals_the_truth(
    lab_ws: LabWorkspace,
) -> None:
    """B3/B4 on 2003: the store crashed with a damaged page; NTBackup restores the full and
    the incremental without "Last Restore Set", ``eseutil /cc /t`` replays only the
    restored logs, the store mounts, and it holds what it held at the recoverable point."""
    lab_ws.dr("lab", "break", "corrupt-page", "--db", DB)
    start = datetime.fromisoformat(lab_ws.lab().state["start"])
    plan = lab_ws.plan("database", "--db", DB, "--at", iso(start + timedelta(hours=23)))
    point = datetime.fromisoformat(plan["recoverable_point"])
    replay = _step(plan, "hard-recovery")
    assert replay["params"]["play_forward"] is False  # /t: nothing past the restored logs
    kinds = [s["kind"] for s in plan["steps"]]
    assert kinds.index("verify-log-sequence") < kinds.index("hard-recovery")

    done = _run_to_the_end(lab_ws, plan)

    assert [kind for kind, _ in done] == [k for k in kinds if k in MANUAL]
    verdict = _verify(lab_ws, DB, point)
    assert verdict["equal"] and verdict["found"] == verdict["expected"] > 0, verdict
    lab = lab_ws.lab()
    assert lab.truth(DB, lab.now()) != lab.truth(DB, point), "the workload changed it after"
    host = lab.host("EX2003")
    sg, db = host.find_db("Mailbox Store (EX2003)")
    assert host.dbs[host.db_key(sg, db)].mounted
    aside = host.path("E:\\Exchsrvr\\mdbdata.pre-restore\\priv1.edb")
    _, bad = exstore.check_pages(aside)
    assert bad == [1], "the damaged original is kept aside, as it was"
    temp = replay["params"]["temp_folder"]
    assert not host.fs.exists(f"{temp}\\{RESTORE_ENV}"), "a finished hard recovery removes it"
    _untouched(lab_ws)


def test_a_2003_store_restored_to_the_point_of_failure_loses_nothing(
    lab_ws: LabWorkspace,
) -> None:
    """B3 on 2003: the logs still on the server (the open E00.log among them) are listed
    with ``eseutil /ml``; eseutil /cc without /t replays them where they are, after the
    restored ones, to the moment of the crash."""
    start = datetime.fromisoformat(lab_ws.lab().state["start"])
    backups_only = lab_ws.plan("database", "--db", DB, "--at", iso(start + timedelta(hours=23)))
    last_backup = datetime.fromisoformat(backups_only["recoverable_point"])
    lab_ws.dr("lab", "break", "crash-store", "--db", DB)
    listing = lab_ws.root / "e00-listing.txt"
    out = lab_ws.dr(
        "lab", "exec", "EX2003", "--cmd",
        f'cd /d "{LIVE_LOGS}" && "%ProgramFiles%\\Exchsrvr\\bin\\eseutil.exe" /ml E00',
    )  # fmt: skip
    listing.write_text(out.stdout, encoding="utf-8")
    now = lab_ws.lab().now()
    plan = lab_ws.plan("database", "--db", DB, "--server-logs",
                       f"EX2003/First Storage Group={listing}", "--logs-listed-at",
                       now.isoformat())  # fmt: skip
    assert plan["data_loss_window_seconds"] == 0
    assert _step(plan, "hard-recovery")["params"]["play_forward"] is True
    checked = [s["params"]["log_path"] for s in plan["steps"] if s["kind"] == "verify-log-sequence"]
    assert LIVE_LOGS in checked

    _run_to_the_end(lab_ws, plan)

    verdict = _verify(lab_ws, DB, now)
    assert verdict["equal"] and verdict["found"] == verdict["expected"] > 0, verdict
    lab = lab_ws.lab()
    assert lab.truth(DB, now) != lab.truth(DB, last_backup), "the server's logs added mail"
    _untouched(lab_ws)


# --------------------------------------------------------------------------- the person


def _run_to_the_end(lab_ws: LabWorkspace, plan: dict[str, Any]) -> list[tuple[str, str]]:
    """``dr run start``, then for each step that waits: the console action its instructions
    ask for, ``dr run ack``, ``dr run resume`` — until the run ends. Returns the manual
    steps done, in order (kind, id)."""
    steps = {s["id"]: s for s in plan["steps"]}
    done: list[tuple[str, str]] = []
    with lab_ws.serving() as env:
        out = dr_with(env, "run", "start", str(lab_ws.root / "plan.json"), "--non-interactive")
        run = newest_run(env)
        while out.returncode == 10:
            waiting = _waiting(env, run)
            assert waiting, out.stdout + out.stderr
            for step_id in waiting:
                step = steps[step_id]
                assert step["kind"] in MANUAL, f"{step_id} waits for no person: {out.stderr}"
                said = dr_with(env, *_console_action(step))
                assert said.returncode == 0, said.stdout + said.stderr
                acked = dr_with(env, "run", "ack", run, step_id, "--by", "responder",
                            "--decision", "done", "--note", said.stdout.strip())  # fmt: skip
                assert acked.returncode == 0, acked.stdout + acked.stderr
                done.append((step["kind"], step_id))
            out = dr_with(env, "run", "resume", run)
    assert out.returncode == 0, out.stdout + out.stderr
    return done


def _console_action(step: dict[str, Any]) -> list[str]:
    """What the step's instructions tell the person to do, as a lab console command."""
    p, host, kind = step["params"], step["host"], step["kind"]
    esm = {
        "dismount-database": "dismount-store",
        "allow-file-restore": "allow-restore",
        "mount-database": "mount-store",
        "verify-mount": "open-mailbox",
    }
    if kind in esm:
        return ["lab", "operator", esm[kind], "--host", host, "--store", p["db"]]
    restore = ["lab", "operator", "ntbackup-restore", "--host", host, "--bkf", p["bkf"],
               "--temp", p["temp_folder"], "--set", p["version"]]  # fmt: skip
    if kind == "restore-database-backup":
        restore += ["--store", p["db"]]
    return restore + (["--last-restore-set"] if p["last_restore_set"] else [])


def _waiting(env: dict[str, str], run: str) -> list[str]:
    status = json.loads(dr_with(env, "run", "status", run, "--json").stdout)
    return [s["id"] for s in status["steps"] if s["state"] == "waiting"]


def _step(plan: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(s for s in plan["steps"] if s["kind"] == kind)


def _verify(lab_ws: LabWorkspace, db: str, at: datetime) -> dict[str, Any]:
    out = lab_ws.dr("lab", "verify", "--db", db, "--at", at.isoformat(), "--json")
    return dict(json.loads(out.stdout))


def _untouched(lab_ws: LabWorkspace) -> None:
    """The group's other store stayed mounted and the other storage group was not touched."""
    lab = lab_ws.lab()
    assert lab.verify(PUBLIC, lab.now()).equal
    assert lab.verify(OTHER_GROUP, lab.now()).equal and lab.verify(OTHER_GROUP, lab.now()).expected
    host = lab.host("EX2003")
    for name in ("Public Folder Store (EX2003)", "Sales Store"):
        sg, db = host.find_db(name)
        assert host.dbs[host.db_key(sg, db)].mounted, f"{name} stayed mounted"
