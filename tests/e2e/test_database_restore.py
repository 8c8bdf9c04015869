"""B3 / B4 on Exchange 2016: a damaged database restored to a point in time, on the lab."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from dr.lab import exstore
from tests.e2e.conftest import LabWorkspace, iso


def _target(lab_ws: LabWorkspace) -> datetime:
    start = datetime.fromisoformat(lab_ws.lab().state["start"])
    return start + timedelta(hours=8)  # 14:00: after the 12:00 incremental, before 16:00


def test_point_in_time_restore_of_a_damaged_database_equals_the_truth(
    lab_ws: LabWorkspace,
) -> None:
    before = lab_ws.lab()
    other = before.verify("DB02", before.now())
    assert other.equal and other.expected > 0
    lab_ws.dr("lab", "break", "corrupt-page", "--db", "DB01")
    plan = lab_ws.plan("database", "--db", "DB01", "--at", iso(_target(lab_ws)))
    point = datetime.fromisoformat(plan["recoverable_point"])
    assert point == datetime.fromisoformat(before.state["start"]) + timedelta(hours=6)

    out = lab_ws.run_plan()

    assert out.returncode == 0, out.stdout + out.stderr
    verdict = lab_ws.dr("lab", "verify", "--db", "DB01", "--at", point.isoformat(), "--json")
    result = json.loads(verdict.stdout)
    assert result["equal"] and result["found"] == result["expected"] > 0, result
    lab = lab_ws.lab()
    host = lab.host("EX2016")
    sg, db = host.find_db("DB01")
    assert host.dbs[host.db_key(sg, db)].mounted
    later = lab.truth("DB01", lab.now())
    assert later != lab.truth("DB01", point), "the workload changed DB01 after the point"
    aside = host.path("E:\\ExchangeDatabases\\DB01.pre-restore\\DB01.edb")
    _, bad = exstore.check_pages(aside)
    assert bad == [1], "the damaged original is kept aside, as it was"
    assert lab.verify("DB02", lab.now()).equal, "the other database was not touched"


def test_alternate_restore_into_the_recovery_forest_equals_the_truth(lab_ws: LabWorkspace) -> None:
    """B8: DB02 restored on RX2016 in the isolated forest; production is not touched."""
    plan = lab_ws.plan("alternate", "--db", "DB02", "--at", iso(_target(lab_ws)))
    assert {s["host"] for s in plan["steps"]} <= {"RX2016", "orchestrator"}
    point = datetime.fromisoformat(plan["recoverable_point"])

    out = lab_ws.run_plan()

    assert out.returncode == 0, out.stdout + out.stderr
    verdict = lab_ws.dr(
        "lab", "verify", "--db", "DB02", "--at", point.isoformat(), "--host", "RX2016", "--json"
    )
    result = json.loads(verdict.stdout)
    assert result["equal"] and result["expected"] > 0, result
    lab = lab_ws.lab()
    assert lab.verify("DB02", lab.now()).equal, "production DB02 is untouched"


def test_point_of_failure_with_the_logs_left_on_the_server_loses_nothing(
    lab_ws: LabWorkspace,
) -> None:
    """B3: the store crashed; the logs on the server (the open E00.log among them) are
    listed with eseutil /ml, and the plan replays them to the moment of the crash."""
    lab_ws.dr("lab", "break", "crash-store", "--db", "DB01")
    listing = lab_ws.root / "e00-listing.txt"
    out = lab_ws.dr(
        "lab", "exec", "EX2016",
        "Set-Location -LiteralPath 'F:\\ExchangeLogs\\DB01'; eseutil /ml E00",
    )  # fmt: skip
    listing.write_text(out.stdout, encoding="utf-8")
    now = lab_ws.lab().now()
    plan = lab_ws.plan("database", "--db", "DB01", "--server-logs", f"EX2016/DB01={listing}",
                       "--logs-listed-at", now.isoformat())  # fmt: skip
    assert plan["data_loss_window_seconds"] == 0
    copy = next(s for s in plan["steps"] if s["kind"] == "copy-live-logs")
    assert copy["params"]["current_gen"] == copy["params"]["last_gen"] > 0

    run = lab_ws.run_plan()

    assert run.returncode == 0, run.stdout + run.stderr
    verdict = json.loads(
        lab_ws.dr("lab", "verify", "--db", "DB01", "--at", now.isoformat(), "--json").stdout
    )
    assert verdict["equal"] and verdict["expected"] > 0, verdict


def test_a_mailbox_restored_through_a_recovery_database_equals_the_truth(
    lab_ws: LabWorkspace,
) -> None:
    """B2 on 2016: files restored and recovered first, then New-MailboxDatabase -Recovery,
    mount, New-MailboxRestoreRequest by MailboxGuid, the RDB removed (issue 10 item 7)."""
    plan = lab_ws.plan("mailbox", "--mailbox", "finance", "--at", iso(_target(lab_ws)))
    point = datetime.fromisoformat(plan["recoverable_point"])
    request = next(s for s in plan["steps"] if s["kind"] == "mailbox-restore-request")

    out = lab_ws.run_plan()

    assert out.returncode == 0, out.stdout + out.stderr
    verdict = json.loads(lab_ws.dr(
        "lab", "verify", "--mailbox", "finance", "--at", point.isoformat(),
        "--folder", request["params"]["target_folder"], "--json",
    ).stdout)  # fmt: skip
    assert verdict["equal"] and verdict["expected"] > 0, verdict
    lab = lab_ws.lab()
    host = lab.host("EX2016")
    assert not host.extra, "the recovery database was removed"
    assert lab.verify("DB02", lab.now()).equal


def test_a_restore_runs_again_where_an_earlier_one_left_its_files(lab_ws: LabWorkspace) -> None:
    """A second restore of DB01 on the same server (a failure after the first restore, or a
    drill after it): the staging folder still holds the first fetch and the temporary
    folder the first replay's logs. The fetch keeps what is identical, the temporary folder's
    leftovers are moved aside (never deleted), and the run ends equal to the truth."""
    target = iso(_target(lab_ws))
    for _ in range(2):
        lab_ws.dr("lab", "break", "corrupt-page", "--db", "DB01")
        plan = lab_ws.plan("database", "--db", "DB01", "--at", target)
        out = lab_ws.run_plan()
        assert out.returncode == 0, out.stdout + out.stderr
    assert "moved aside to" in lab_ws.dr("run", "log", _newest_run(lab_ws),
                                         "prepare-temp-folder.EX2016.DB01").stdout  # fmt: skip
    point = plan["recoverable_point"]
    verdict = json.loads(lab_ws.dr("lab", "verify", "--db", "DB01", "--at", point, "--json").stdout)
    assert verdict["equal"] and verdict["expected"] > 0, verdict
    aside = [p.name for p in lab_ws.lab().host("EX2016").path("T:\\DRTemp").iterdir()]
    assert any(name.startswith("DB01.before-") for name in aside), aside


def _newest_run(lab_ws: LabWorkspace) -> str:
    runs = json.loads(lab_ws.dr("run", "status", "--json").stdout)
    return str(max(runs, key=lambda r: r["created"])["id"])
