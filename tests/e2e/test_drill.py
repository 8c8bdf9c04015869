"""C1 on the lab: `dr drill run` restores a database into the recovery forest, checks it on
the recovery server, compares it with the ground truth, cleans up and signs the evidence."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.e2e.conftest import LabWorkspace

DB = "EX2016/DB02/DB02"


def test_a_drill_restores_checks_cleans_up_and_leaves_signed_evidence(
    lab_ws: LabWorkspace,
) -> None:
    lab_ws.dr("evidence", "keygen")
    before = lab_ws.lab()
    assert before.verify("DB02", before.now()).equal

    out = lab_ws.dr("drill", "run", "DB02", "--json")

    (record,) = json.loads(out.stdout)["drills"]
    assert record["verdict"] == "passed", record
    assert record["database"] == DB and record["lab"] is True
    assert record["target"] == "recovery.contoso.lab/RX2016"
    checks = {c["name"]: c for c in record["checks"]}
    truth = checks["equal to the lab's ground truth"]
    assert truth["passed"] and " 0 missing, 0 extra" in truth["detail"], truth
    counts = next(c for name, c in checks.items() if name.startswith("Item counts"))
    assert counts["passed"] and "Mismatches: 0" in counts["detail"]
    assert all(c["passed"] for c in record["checks"]) and len(record["checks"]) == 5
    assert record["sample_seed"] and record["library_digest"] and record["evidence_record_id"]
    assert record["backup_runs"], "the record names the catalog runs it restored"
    states = {s["id"].split(".")[0]: s["state"] for s in record["steps"]}
    assert states["cleanup-recovery-forest"] == "succeeded"

    lab = lab_ws.lab()
    rx = lab.host("RX2016")
    assert not rx.path("E:\\ExchangeDatabases\\DB02\\DB02.edb").exists(), "cleaned up"
    assert not any(rx.path("E:\\DRStaging\\DB02").iterdir()), "staging emptied"
    assert lab.verify("DB02", lab.now()).equal, "production DB02 is untouched"

    history = json.loads(lab_ws.dr("drill", "history", "--json").stdout)["drills"]
    assert [h["drill_id"] for h in history] == [record["drill_id"]]
    due = json.loads(lab_ws.dr("drill", "due", "--json").stdout)["drills"]
    mine = next(d for d in due if d["key"] == DB)
    assert not mine["due"] and mine["last_success"], mine
    others = [d for d in due if d["kind"] == "database" and d["key"] != DB]
    assert others and all(d["due"] for d in others), "never drilled: due"

    # the recovery server gets another PowerShell (recorded by `dr inventory probe`): the
    # passed drill no longer proves today's restore, whatever the calendar says
    from dr import hostfacts

    hostfacts.record(lab_ws.ws, [hostfacts.HostFacts(host="RX2016", powershell="2.0",
                                                     probed_at=datetime.now(UTC))])  # fmt: skip
    due = json.loads(lab_ws.dr("drill", "due", "--json").stdout)["drills"]
    mine = next(d for d in due if d["key"] == DB)
    assert mine["due"] and mine["changed_since_last_test"], mine
    assert mine["why"].startswith("changed since last test: the estate changed"), mine

    verified = lab_ws.dr("evidence", "verify", str(lab_ws.ws / "evidence"), "--json")
    assert json.loads(verified.stdout)["ok"] is True, verified.stdout
    shown = json.loads(lab_ws.dr("evidence", "show", record["run_id"], "--json").stdout)
    assert record["run_id"] in json.dumps(shown)
    assert "sha256(seed|guid)" in json.dumps(shown), "the sampling method is in the record"


def test_a_drill_held_with_keep_leaves_the_restored_copy_until_acknowledged(
    lab_ws: LabWorkspace,
) -> None:
    out = lab_ws.dr("drill", "run", "DB02", "--keep", "--json", check=False)

    assert out.returncode == 10, out.stdout + out.stderr
    (record,) = json.loads(out.stdout)["drills"]
    assert record["verdict"] == "passed" and record["evidence_record_id"] is None
    rx = lab_ws.lab().host("RX2016")
    assert rx.path("E:\\ExchangeDatabases\\DB02\\DB02.edb").exists(), "kept for inspection"
    point = datetime.fromisoformat(record["checks"][-1]["detail"].split(" at ")[1].split(";")[0])
    assert lab_ws.lab().verify("DB02", point, host="RX2016").equal
    assert "dr run ack" in out.stderr and record["run_id"] in out.stderr


def test_a_drill_from_a_damaged_backup_fails_and_leaves_a_signed_failed_record(
    lab_ws: LabWorkspace, tmp_path: Path
) -> None:
    """Bit rot in the repository: the fetch finds it (every file's SHA-256 is checked), no
    retry can fix it, the drill is FAILED with the reason, signed, and the report shows it."""
    lab_ws.dr("evidence", "keygen")
    for blob in (lab_ws.ws / "repository" / "data").rglob("*"):
        if blob.is_file() and blob.stat().st_size > 64:
            data = bytearray(blob.read_bytes())
            data[len(data) // 2] ^= 0xFF
            blob.write_bytes(bytes(data))

    out = lab_ws.dr("drill", "run", "DB02", "--json", check=False)

    assert out.returncode == 7, out.stdout + out.stderr
    (record,) = json.loads(out.stdout)["drills"]
    assert record["verdict"] == "failed" and "fetch-artifacts" in record["failure"], record
    assert record["evidence_record_id"], "a failed drill is evidence too"
    shown = json.loads(lab_ws.dr("evidence", "show", record["run_id"], "--json").stdout)
    assert "aborted" in json.dumps(shown)
    verified = lab_ws.dr("evidence", "verify", str(lab_ws.ws / "evidence"), "--json")
    assert json.loads(verified.stdout)["ok"] is True
    page = tmp_path / "audit.html"
    lab_ws.dr("report", "audit", "-o", str(page))
    html = page.read_text(encoding="utf-8")
    assert record["drill_id"] in html and "FAILED" in html and "verified" in html
    due = json.loads(lab_ws.dr("drill", "due", "--json").stdout)["drills"]
    assert next(d for d in due if d["key"] == DB)["due"], "a failed drill does not count"


def test_a_drill_into_a_recovery_database_on_2016_equals_the_truth_and_leaves_nothing(
    lab_ws: LabWorkspace,
) -> None:
    """2010+: the drill restores into a recovery database on the production server
    (Microsoft's "Restore data using a recovery database"), checks it there, compares it with
    the truth, removes the RDB and deletes its files; production is not touched."""
    out = lab_ws.dr("drill", "run", "DB02", "--into", "rdb", "--json")

    (record,) = json.loads(out.stdout)["drills"]
    assert record["verdict"] == "passed", record
    assert record["target"] == "RDB-DB02 on EX2016"
    truth = next(c for c in record["checks"] if c["name"] == "equal to the lab's ground truth")
    assert truth["passed"] and " 0 missing, 0 extra" in truth["detail"]
    kinds = [s["id"].split(".")[0] for s in record["steps"]]
    assert kinds[-2:] == ["remove-recovery-database", "remove-recovery-database-files"]
    assert all(s["state"] == "succeeded" for s in record["steps"])
    lab = lab_ws.lab()
    ex = lab.host("EX2016")
    plan = json.loads((lab_ws.ws / "drills" / record["drill_id"] / "plan.json").read_text())
    edb = ex.path(plan["facts"]["rdb_files"]["edb"])
    logs = ex.path(plan["facts"]["rdb_files"]["log_path"])
    assert edb.parent.is_dir() and not edb.exists(), "the RDB's database file is deleted"
    assert not any(logs.iterdir()), "and its logs"
    assert not [sg for sg in ex.groups() if sg.name == "RDB-DB02"], "the RDB is removed"
    assert lab.verify("DB02", lab.now()).equal and lab.verify("DB01", lab.now()).equal
