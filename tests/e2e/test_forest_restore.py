"""B7 on the lab: a domain controller's system state restored, and the directory proved.

The lab's nightly backups take DC2016's system state through dr's backup path (wbadmin on
the lab DC; the catalog keeps wbadmin's own version identifier). A user is deleted by
mistake and the deletion replicates; or DC2016's directory database is lost. ``dr plan
forest`` from the catalog restarts DC2016 into Directory Services Restore Mode over WinRM;
there domain accounts cannot sign in, so the person signs in at the console as the DSRM
administrator and types the commands the rendered runbook gives (``wbadmin start
systemstaterecovery``, ``ntdsutil``, ``bcdedit``, ``shutdown``) — this test types exactly
those, taken from the rendered instructions, so a wrong command in the runbook fails here.
The directory is then compared with the truth: the deleted user is back on both domain
controllers, changes made after the backup survive, SYSVOL keeps its newer policy.
"""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.conftest import (
    LabWorkspace,
    at_the_console,
    dr_with,
    newest_run,
    step_state,
    steps_in,
)

CONSOLE = ("wbadmin ", "ntdsutil ", "bcdedit ", "shutdown ")


def test_a_deleted_user_comes_back_on_both_dcs_by_an_authoritative_restore(
    lab_ws: LabWorkspace,
) -> None:
    lab = lab_ws.lab()
    store = lab.directory_store
    victim, other = _two_users(lab)
    before = dict(store.find(victim))
    store.modify(other, "title", "changed after the backup")
    sysvol = store.edit_policy()
    lab_ws.dr("lab", "break", "delete-object", "--dn", victim)
    assert store.find(victim) is None

    plan = lab_ws.plan("forest", "--domain", "corp.contoso.com", "--object", victim,
                       "--partners-survive")  # fmt: skip
    restore = next(s for s in plan["steps"] if s["kind"] == "restore-system-state")
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}-\d{2}:\d{2}", restore["params"]["version"])
    assert restore["params"]["authoritative"] is False  # a targeted restore: SYSVOL from DC1

    typed = _run_to_the_directory(lab_ws, plan)

    assert any("-authsysvol" not in t and "systemstaterecovery" in t for t in typed), typed
    assert any('"popups off"' in t for t in typed), typed
    back = lab_ws.lab().directory_store
    assert back.find(victim) == before  # the object as it was, not a new one
    assert back.find(other)["title"] == "changed after the backup"
    assert back.meta()["sysvol"] == sysvol  # DC1's newer SYSVOL kept, not rolled back
    name = before["displayName"]
    for dc in ("DC2016", "DC1"):
        said = lab_ws.dr("lab", "exec", dc, "--cmd", f'dsquery user -name "{name}"')
        assert f'"{before["distinguishedName"]}"' in said.stdout, (dc, said.stdout)


def test_a_lost_dc_restored_non_authoritatively_takes_its_partners_changes(
    lab_ws: LabWorkspace,
) -> None:
    lab = lab_ws.lab()
    store = lab.directory_store
    gone, changed = _two_users(lab)
    lab_ws.dr("lab", "break", "lose-dc", "--host", "DC2016")
    store.modify(changed, "title", "changed on DC1 after the backup")
    lab_ws.dr("lab", "break", "delete-object", "--dn", gone)  # deleted on purpose, on DC1
    truth = store.snapshot()["objects"]

    plan = lab_ws.plan("forest", "--domain", "corp.contoso.com", "--partners-survive")
    assert "authoritative-restore" not in [s["kind"] for s in plan["steps"]]
    _run_to_the_directory(lab_ws, plan)

    after = lab_ws.lab().directory_store
    assert after.snapshot()["objects"] == truth  # DC1's changes and deletions won
    state = lab_ws.lab().dc("DC2016").load()
    assert state.mode == "normal" and state.ntds == "ok" and state.copy is None


# --------------------------------------------------------------------------- the person


def _two_users(lab: Any) -> tuple[str, str]:
    users = sorted(dn for dn, o in lab.directory_store.objects().items()
                   if o["objectClass"] == "user")  # fmt: skip
    objects = lab.directory_store.objects()
    return objects[users[0]]["distinguishedName"], objects[users[1]]["distinguishedName"]


def _run_to_the_directory(lab_ws: LabWorkspace, plan: dict[str, Any]) -> list[str]:
    """Run the plan; at each step for a person do what its rendered instructions say (at
    DC2016's console, signed in as the DSRM administrator); stop once the directory is
    verified and the Exchange checks wait. Returns the console commands typed."""
    from engine.executor import build_specs
    from engine.plan import Plan
    from engine.runbook import Library

    specs = build_specs(Plan.model_validate(plan), Library.load())
    kinds = {s["id"]: s["kind"] for s in plan["steps"]}
    typed: list[str] = []
    with lab_ws.serving() as env:
        out = dr_with(env, "run", "start", str(lab_ws.root / "plan.json"), "--non-interactive")
        run = newest_run(env)
        while (
            out.returncode == 10 and step_state(env, run, "verify-directory.DC2016") != "succeeded"
        ):
            for step in steps_in(env, run, "waiting"):
                if kinds[step] in ("restore-system-state", "authoritative-restore",
                                   "leave-dsrm"):  # fmt: skip
                    typed += at_the_console(lab_ws, env, specs[step].instructions, CONSOLE)
                by = "second-admin" if kinds[step] == "approve" else "responder"
                acked = dr_with(env, "run", "ack", run, step, "--by", by, "--decision", "done")
                assert acked.returncode == 0, acked.stdout + acked.stderr
            out = dr_with(env, "run", "resume", run)
        assert step_state(env, run, "verify-directory.DC2016") == "succeeded", (
            out.stdout + out.stderr
        )
        assert step_state(env, run, "boot-dsrm.DC2016") == "succeeded"
    return typed
