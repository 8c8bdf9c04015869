"""Exchange 2003 plans from the lab's own NTBackup backups.

NTBackup writes one media file (``.bkf``) per storage group and run: the catalog records
it as the group's database artifact with no single database named. The planner's facts
must read that file as an image of every database of the group, with the logs it holds —
before they did, every 2003 point-in-time plan from dr's own backups was refused with
"no full backup at or before" the target although the full was there.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.e2e.conftest import LabWorkspace, iso

DB = "EX2003/First Storage Group/Mailbox Store (EX2003)"


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
