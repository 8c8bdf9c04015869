"""B5 on the lab: an offline copy of a database restored on the recovery server
(Exchange 2016 DB01 on RX2016; Exchange 2003 "Mailbox Store (EX2003)" on RX2003).

dr takes online backups only; an offline backup is a person's work: the store dismounted,
its files copied while it is down (Clean Shutdown: no logs needed), the store mounted
again. The test does that on the lab host with the real commands (``dr lab exec``),
records the copy in the catalog with ``dr catalog import`` as any other tool's backup, and
lets the lab's mail run on (``dr lab advance``) so production moves past the copy.

``dr plan database --offline`` then restores the copy on the recovery forest's server of
the same names — its own files and logs moved aside first, as B5 says — and never on
production: an earlier offline plan deleted the production database, so the test proves
the production database still there, mounted and equal to its own truth. The fetch step
waits for a person (the copy is not in dr's repository); the test copies the files where
the step says, marks it done and resumes; the restored copy must equal the truth at the
copy's instant.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from typing import Any

from dr.exchange.eseutil import parse_mh
from tests.e2e.conftest import LabWorkspace, dr_with, newest_run

BACKUP_DIR = "T:\\OfflineBackups\\DB01"
SNAPIN = "Microsoft.Exchange.Management.PowerShell.SnapIn"
MAILBOX_2003 = "EX2003/First Storage Group/Mailbox Store (EX2003)"
BACKUP_2003 = "T:\\OfflineBackups\\First Storage Group"
ESEUTIL_2003 = '"%ProgramFiles%\\Exchsrvr\\bin\\eseutil.exe"'
# what a person does at Exchange System Manager for each manual step (docs/lab.md)
ESM = {
    "dismount-database": "dismount-store",
    "allow-file-restore": "allow-restore",
    "mount-database": "mount-store",
    "verify-mount": "open-mailbox",
}
EDB = "E:\\ExchangeDatabases\\DB01\\DB01.edb"


def test_an_offline_copy_is_restored_on_the_recovery_server_and_production_is_untouched(
    lab_ws: LabWorkspace,
) -> None:
    taken = _offline_copy_2016(lab_ws)
    lab_ws.dr("lab", "advance", "--hours", "3")
    plan = lab_ws.plan("database", "--offline", "--db", "DB01")
    point = datetime.fromisoformat(plan["recoverable_point"])
    assert point == taken
    assert {s["host"] for s in plan["steps"]} == {"RX2016", "orchestrator"}
    assert plan["facts"]["recovery_server"] == "RX2016" and plan["facts"]["in_place"] is False
    assert not any(s["kind"] == "remove-database-files" for s in plan["steps"])
    fetch = next(s for s in plan["steps"] if s["kind"] == "fetch-artifacts")

    with lab_ws.serving() as env:
        out = dr_with(env, "run", "start", str(lab_ws.root / "plan.json"), "--non-interactive")
        said = out.stdout + out.stderr
        assert out.returncode == 10, said
        assert "E6400" in said and "not retried" in said, "a person copies it; no retry helps"
        run = newest_run(env)
        _copy_like_a_person(lab_ws, fetch, "EX2016", [f"{BACKUP_DIR}\\DB01.edb"])
        acked = dr_with(env, "run", "ack", run, fetch["id"], "--by", "responder",
                    "--decision", "done", "--note", "copied from T:\\OfflineBackups")  # fmt: skip
        assert acked.returncode == 0, acked.stdout + acked.stderr
        resumed = dr_with(env, "run", "resume", run)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    verdict = json.loads(lab_ws.dr("lab", "verify", "--db", "DB01", "--at", point.isoformat(),
                                   "--host", "RX2016", "--json").stdout)  # fmt: skip
    assert verdict["equal"] and verdict["found"] == verdict["expected"] > 0, verdict
    lab = lab_ws.lab()
    assert lab.truth("DB01", lab.now()) != lab.truth("DB01", point), "production moved on"
    recovery = lab.host("RX2016")
    sg, db = recovery.find_db("DB01")
    assert recovery.dbs[recovery.db_key(sg, db)].mounted
    assert recovery.fs.exists("E:\\ExchangeDatabases\\DB01.pre-restore\\DB01.edb"), (
        "the recovery server's own files were moved aside, not deleted"
    )
    _production_untouched(lab_ws)


def test_in_place_an_offline_copy_replaces_a_lost_database_and_keeps_what_was_there(
    lab_ws: LabWorkspace,
) -> None:
    """``--in-place``, for when the online restore has failed: DB01's .edb is lost; the copy
    goes back over it on EX2016, the group's logs moved aside (kept), and DB01 holds what
    it held at the copy. DB02, on the same server, is not touched."""
    taken = _offline_copy_2016(lab_ws)
    lab_ws.dr("lab", "advance", "--hours", "3")
    lab_ws.dr("lab", "break", "lose-database", "--db", "DB01")
    plan = lab_ws.plan("database", "--offline", "--in-place", "--db", "DB01")
    assert datetime.fromisoformat(plan["recoverable_point"]) == taken
    assert {s["host"] for s in plan["steps"]} == {"EX2016", "orchestrator"}

    done = _run_to_the_end(lab_ws, plan, "EX2016", [f"{BACKUP_DIR}\\DB01.edb"])

    assert done == ["fetch-artifacts"]
    shown = lab_ws.dr("lab", "verify", "--db", "DB01", "--at", taken.isoformat(), "--json")
    verdict = json.loads(shown.stdout)
    assert verdict["equal"] and verdict["found"] == verdict["expected"] > 0, verdict
    lab = lab_ws.lab()
    host = lab.host("EX2016")
    sg, db = host.find_db("DB01")
    assert host.dbs[host.db_key(sg, db)].mounted
    aside = host.fs.host_path("E:\\ExchangeDatabases\\DB01.pre-restore")
    assert any(aside.glob("E00*.log")), "the group's logs were moved aside, not deleted"
    assert lab.verify("DB02", lab.now()).equal, "DB02 was not touched"


def test_an_offline_copy_of_a_2003_store_is_restored_on_the_recovery_server(
    lab_ws: LabWorkspace,
) -> None:
    """The same on Exchange 2003: .edb and .stm copied together while the store is
    dismounted in System Manager; on RX2003 the dismounts, the overwrite flag and the
    mounts are a person's steps (``dr lab operator``), the files are moved and copied by
    PowerShell 2.0, and EX2003's store is never touched."""
    taken = _offline_copy_2003(lab_ws)
    lab_ws.dr("lab", "advance", "--hours", "3")
    plan = lab_ws.plan("database", "--offline", "--db", MAILBOX_2003)
    point = datetime.fromisoformat(plan["recoverable_point"])
    assert point == taken
    assert {s["host"] for s in plan["steps"]} == {"RX2003", "orchestrator"}
    put = next(s for s in plan["steps"] if s["kind"] == "restore-offline-files")
    assert put["params"]["stm"].endswith("priv1.stm"), ".edb and .stm go back together"

    done = _run_to_the_end(lab_ws, plan, "EX2003", [f"{BACKUP_2003}\\priv1.edb",
                                                     f"{BACKUP_2003}\\priv1.stm"])  # fmt: skip

    assert done[0] == "fetch-artifacts"
    assert {"dismount-database", "allow-file-restore", "mount-database"} <= set(done)
    shown = lab_ws.dr("lab", "verify", "--db", MAILBOX_2003, "--at", point.isoformat(),
                      "--host", "RX2003", "--json")  # fmt: skip
    verdict = json.loads(shown.stdout)
    assert verdict["equal"] and verdict["found"] == verdict["expected"] > 0, verdict
    lab = lab_ws.lab()
    assert lab.truth(MAILBOX_2003, lab.now()) != lab.truth(MAILBOX_2003, point)
    recovery = lab.host("RX2003")
    for store in ("Mailbox Store (EX2003)", "Public Folder Store (EX2003)"):
        sg, db = recovery.find_db(store)
        assert recovery.dbs[recovery.db_key(sg, db)].mounted, store
    now = lab.now()
    own = json.loads(lab_ws.dr("lab", "verify", "--db", MAILBOX_2003, "--at", now.isoformat(),
                               "--json").stdout)  # fmt: skip
    assert own["equal"] and own["expected"] > 0, own
    host = lab.host("EX2003")
    for store in ("Mailbox Store (EX2003)", "Public Folder Store (EX2003)", "Sales Store"):
        sg, db = host.find_db(store)
        assert host.dbs[host.db_key(sg, db)].mounted, f"production {store} stayed mounted"
    assert not host.fs.exists("E:\\Exchsrvr\\mdbdata.pre-restore")


def _production_untouched(lab_ws: LabWorkspace) -> None:
    """EX2016's DB01 still there, mounted, equal to its own truth now; nothing moved aside."""
    now = lab_ws.lab().now()
    own = json.loads(lab_ws.dr("lab", "verify", "--db", "DB01", "--at", now.isoformat(),
                               "--json").stdout)  # fmt: skip
    assert own["equal"] and own["expected"] > 0, own
    host = lab_ws.lab().host("EX2016")
    sg, db = host.find_db("DB01")
    assert host.dbs[host.db_key(sg, db)].mounted, "production DB01 stayed mounted"
    assert host.path(EDB).is_file()
    assert not host.fs.exists("E:\\ExchangeDatabases\\DB01.pre-restore")
    assert lab_ws.lab().verify("DB02", now).equal


# --------------------------------------------------------------------------- the person


def _offline_copy_2016(lab_ws: LabWorkspace) -> datetime:
    """Dismount DB01, copy its .edb, mount it again (Exchange Management Shell), read the
    copy's header and hash, and import the copy into the catalog; returns its time."""
    script = "\n".join([
        f"Add-PSSnapin {SNAPIN} -ErrorAction SilentlyContinue",
        "Dismount-Database -Identity DB01 -Confirm:$false -ErrorAction Stop",
        f"New-Item -ItemType Directory -Force -Path {BACKUP_DIR} | Out-Null",
        f"Copy-Item -LiteralPath {EDB} -Destination {BACKUP_DIR} -ErrorAction Stop",
        "Mount-Database -Identity DB01 -ErrorAction Stop",
    ])  # fmt: skip
    lab_ws.dr("lab", "exec", "EX2016", script)
    copy = f"{BACKUP_DIR}\\DB01.edb"
    header = parse_mh(lab_ws.dr("lab", "exec", "EX2016", f"eseutil /mh {copy}").stdout)
    assert header.state_text == "Clean Shutdown", "an offline copy is of a stopped database"
    facts = lab_ws.dr("lab", "exec", "EX2016", "; ".join([
        f"(Get-FileHash -LiteralPath {copy} -Algorithm SHA256).Hash",
        f"(Get-Item -LiteralPath {copy}).Length",
    ])).stdout.split()  # fmt: skip
    at = lab_ws.lab().now()
    _import(lab_ws, "ex2016-exchange", "EX2016", at, [{
        "kind": "database", "name": "DB01.edb", "size": int(facts[1]),
        "sha256": facts[0].lower(), "location": copy, "storage_group": "EX2016/DB01",
        "database": "EX2016/DB01/DB01", "state": header.state_text, "mounted": False,
    }])  # fmt: skip
    return at


def _offline_copy_2003(lab_ws: LabWorkspace) -> datetime:
    """System Manager: Dismount Store; priv1.edb and priv1.stm copied together (PowerShell
    2.0, WMF on EX2003); Mount Store. The checksums are the person's (any SHA-256 tool:
    Get-FileHash needs PowerShell 4.0)."""
    store = ("--host", "EX2003", "--store", "Mailbox Store (EX2003)")
    lab_ws.dr("lab", "operator", "dismount-store", *store)
    names = ("priv1.edb", "priv1.stm")
    lab_ws.dr("lab", "exec", "EX2003", "; ".join([
        f"New-Item -ItemType Directory -Force -Path '{BACKUP_2003}' | Out-Null",
        *(f"Copy-Item -LiteralPath 'E:\\Exchsrvr\\mdbdata\\{n}' -Destination '{BACKUP_2003}' "
          "-ErrorAction Stop" for n in names),
    ]))  # fmt: skip
    lab_ws.dr("lab", "operator", "mount-store", *store)
    edb = f"{BACKUP_2003}\\priv1.edb"
    shown = lab_ws.dr("lab", "exec", "EX2003", "--cmd", f'{ESEUTIL_2003} /mh "{edb}"')
    header = parse_mh(shown.stdout)
    assert header.state_text == "Clean Shutdown"
    lab = lab_ws.lab()
    artifacts = []
    for name, kind in zip(names, ("database", "stm"), strict=True):
        path = lab.host("EX2003").path(f"{BACKUP_2003}\\{name}")
        artifacts.append({
            "kind": kind, "name": name, "size": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "location": f"{BACKUP_2003}\\{name}", "storage_group": "EX2003/First Storage Group",
            "database": MAILBOX_2003, "mounted": False,
            **({"state": header.state_text} if kind == "database" else {}),
        })  # fmt: skip
    _import(lab_ws, "ex2003-exchange", "EX2003", lab.now(), artifacts)
    return lab.now()


def _run_to_the_end(
    lab_ws: LabWorkspace, plan: dict[str, Any], source_host: str, files: list[str]
) -> list[str]:
    """``dr run start``; for each step that waits, what a person does — the copy's files
    for the fetch step, the System Manager action for a manual one — then ``dr run ack``
    and ``dr run resume``, until the run ends. Returns the kinds done by hand, in order."""
    steps = {s["id"]: s for s in plan["steps"]}
    done: list[str] = []
    with lab_ws.serving() as env:
        out = dr_with(env, "run", "start", str(lab_ws.root / "plan.json"), "--non-interactive")
        run = newest_run(env)
        while out.returncode == 10:
            status = json.loads(dr_with(env, "run", "status", run, "--json").stdout)
            waiting = [s["id"] for s in status["steps"] if s["state"] in ("waiting", "paused")]
            assert waiting, out.stdout + out.stderr
            for step_id in waiting:
                step = steps[step_id]
                if step["kind"] == "fetch-artifacts":
                    _copy_like_a_person(lab_ws, step, source_host, files)
                else:
                    assert step["kind"] in ESM, f"{step_id} waits: {out.stdout}{out.stderr}"
                    said = dr_with(env, "lab", "operator", ESM[step["kind"]], "--host",
                               step["host"], "--store", step["params"]["db"])  # fmt: skip
                    assert said.returncode == 0, said.stdout + said.stderr
                acked = dr_with(env, "run", "ack", run, step_id, "--by", "responder",
                            "--decision", "done")  # fmt: skip
                assert acked.returncode == 0, acked.stdout + acked.stderr
                done.append(step["kind"])
            out = dr_with(env, "run", "resume", run)
    assert out.returncode == 0, out.stdout + out.stderr
    return done


def _import(
    lab_ws: LabWorkspace, bset: str, host: str, at: datetime, artifacts: list[dict[str, Any]]
) -> None:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = {"format": "dr-manifest/1", "runs": [{
        "set": bset, "host": host, "type": "copy", "start": stamp, "end": stamp,
        "source": "offline file copy (store dismounted)", "artifacts": artifacts,
    }]}  # fmt: skip
    path = lab_ws.root / "offline-manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    lab_ws.dr("catalog", "import", str(path))


def _copy_like_a_person(
    lab_ws: LabWorkspace, fetch: dict[str, Any], source_host: str, files: list[str]
) -> None:
    """What the waiting fetch step asks: the copy's files into its staging folder/run-N."""
    params = fetch["params"]
    (version,) = params["versions"]
    lab = lab_ws.lab()
    into = lab.host(params["host"]).fs.host_path(params["dest"]) / version
    into.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy2(lab.host(source_host).path(name), into)
