"""B1 on Exchange 2016: deleted messages recovered from a backup, on the lab.

A user deletes messages of the Finance mailbox and they are purged (``dr lab break
purge-messages``): gone from the store, so Recover Deleted Items cannot bring them back.
Planned at once with ``--purged``, or eight days later beyond the 7-day deleted-item
retention, the plan restores DB02 from the catalog's backups into a recovery database,
``New-MailboxRestoreRequest`` copies the mailbox into the live one under "Recovered
Items" and the recovery database is removed. The run goes through ``dr run start`` over
WinRM against ``dr lab serve``, and ``dr lab verify --deleted-by`` proves every message
deleted since the recoverable point back in the live mailbox, in its folder.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from dr.lab import exstore
from tests.e2e.conftest import LabWorkspace, iso

MAILBOX = "finance"


def test_purged_messages_come_back_into_the_live_mailbox_from_a_recovery_database(
    lab_ws: LabWorkspace,
) -> None:
    said = lab_ws.dr("lab", "break", "purge-messages", "--mailbox", MAILBOX, "--count", "3")
    lab = lab_ws.lab()
    (fault,) = [f for f in lab.state["faults"] if f["kind"] == "purge-messages"]
    purged = set(fault["messages"])
    assert len(purged) == 3 and all(m in said.stdout for m in purged)
    deleted_at = datetime.fromisoformat(fault["at"])
    host = lab.host("EX2016")
    live = exstore.contents(host.path("E:\\ExchangeDatabases\\DB02\\DB02.edb")).values()
    assert not purged & {m.id for m in live if m.mailbox == MAILBOX}, "they are gone"

    soon = lab_ws.plan("message", "--mailbox", MAILBOX, "--deleted-at", iso(deleted_at),
                       "--as-of", iso(deleted_at + timedelta(hours=1)), "--purged")  # fmt: skip
    assert soon["facts"]["needs_backup"] is True, "purged: no retention window holds them"
    plan = lab_ws.plan("message", "--mailbox", MAILBOX, "--deleted-at", iso(deleted_at),
                       "--as-of", iso(deleted_at + timedelta(days=8)))  # fmt: skip
    assert [s["kind"] for s in plan["steps"]] == [s["kind"] for s in soon["steps"]]
    assert plan["facts"]["needs_backup"] is True
    assert plan["facts"]["method"] == "recovery-database"
    point = datetime.fromisoformat(plan["recoverable_point"])
    assert point <= deleted_at
    request = next(s for s in plan["steps"] if s["kind"] == "mailbox-restore-request")
    folder = request["params"]["target_folder"]
    assert request["params"]["mailbox"] == MAILBOX
    assert {s["host"] for s in plan["steps"]} <= {"EX2016", "orchestrator"}
    check = ("lab", "verify", "--mailbox", MAILBOX, "--at", point.isoformat(),
             "--deleted-by", deleted_at.isoformat(), "--folder", folder, "--json")  # fmt: skip
    before = lab_ws.dr(*check, check=False)
    assert before.returncode == 3, before.stdout + before.stderr
    missing = {row[1] for row in json.loads(before.stdout)["missing"]}
    assert purged <= missing, "the check sees them missing before the restore"

    out = lab_ws.run_plan()

    assert out.returncode == 0, out.stdout + out.stderr
    verdict = json.loads(lab_ws.dr(*check).stdout)
    assert verdict["equal"] and verdict["found"] == verdict["expected"] >= len(purged), verdict
    whole = lab_ws.dr("lab", "verify", "--mailbox", MAILBOX, "--at", point.isoformat(),
                      "--folder", folder, "--json")  # fmt: skip
    whole = json.loads(whole.stdout)
    assert whole["equal"] and whole["expected"] > 0, whole
    lab = lab_ws.lab()
    host = lab.host("EX2016")
    truth = lab.truth("DB02", point)
    back = {m.id.removesuffix("-r"): m for m in
            exstore.contents(host.path("E:\\ExchangeDatabases\\DB02\\DB02.edb")).values()
            if m.mailbox == MAILBOX and m.folder.startswith(folder + "/")}  # fmt: skip
    for message_id in purged:
        was = truth[f"{MAILBOX}/{message_id}"]
        assert back[message_id].folder == f"{folder}/{was.folder}"
        assert back[message_id].subject == was.subject
    sg, db = host.find_db("DB02")
    assert host.dbs[host.db_key(sg, db)].mounted, "the live database stayed mounted"
    assert not host.extra, "the recovery database was removed"
    assert lab.verify("DB02", lab.now()).equal, "DB02 holds what the store logged, no more"
    assert lab.verify("DB01", lab.now()).equal, "the other database was not touched"
