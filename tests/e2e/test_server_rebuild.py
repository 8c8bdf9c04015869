"""B6 on Exchange 2016: a lost server rebuilt on the lab, its databases equal to the truth.

``dr lab break lose-server`` takes EX2016 away with its disks. The plan from the catalog asks
the domain controller whether the directory answers (``dcdiag`` / ``nltest`` on DC1 over
WinRM), then waits for a person four times — the hardware, the computer account reset in
Active Directory, Windows installed under the old name with the setup media mounted, the
certificates after setup — and runs the rest itself: ``Add-Computer`` with the join account
from the environment and the restart it waits for, ``Setup.exe /Mode:RecoverServer`` from the
media, then every database restored from the backups and mounted. Each database must then
equal the truth at its recoverable point.

Deleting the computer account instead of resetting it (what the runbook says not to do) is
what makes a real recovery fail at setup; the lab refuses it the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.e2e.conftest import (
    LabWorkspace,
    dr_with,
    newest_run,
    run_steps,
    steps_in,
)

JOIN = {"DR_SECRET_DOMAIN_JOIN_ACCOUNT": "CORP\\dr-join", "DR_SECRET_DOMAIN_JOIN_PASSWORD": "x"}


def test_a_lost_2016_server_is_rebuilt_and_every_database_equals_the_truth(
    lab_ws: LabWorkspace,
) -> None:
    lab = lab_ws.lab()
    account = lab.directory_store.computer("EX2016")
    assert account is not None
    lab_ws.dr("lab", "break", "lose-server", "--host", "EX2016")
    plan = lab_ws.plan("server", "--server", "EX2016")
    kinds = [s["kind"] for s in plan["steps"]]
    assert kinds[:2] == ["verify-directory", "verify-computer-account"]
    assert kinds.index("join-domain") < kinds.index("exchange-recover-server")
    assert kinds.index("exchange-recover-server") < kinds.index("restore-database-backup")
    chains = {c["stream"]: c for c in plan["facts"]["chains"]}
    assert set(chains) == {"EX2016/DB01", "EX2016/DB02"}

    waited = _rebuild(lab_ws, plan, {"install-windows": _new_machine})

    assert waited == [
        "verify-hardware", "reset-computer-account", "install-windows", "reimport-certificates"
    ]  # fmt: skip
    lab = lab_ws.lab()
    for stream, chain in chains.items():
        point = datetime.fromisoformat(chain["recoverable_point"])
        verdict = lab.verify(stream.split("/")[1], point)
        assert verdict.equal and verdict.expected > 0, verdict.as_dict()
    host = lab.host("EX2016")
    assert all(state.mounted for state in host.dbs.values())
    assert host.machine.domain == "corp.contoso.com" and host.machine.installed
    after = lab.directory_store.computer("EX2016")
    assert after is not None and after["objectGUID"] == account["objectGUID"]


def test_a_deleted_computer_account_stops_the_rebuild_before_the_server_is_touched(
    lab_ws: LabWorkspace,
) -> None:
    """Recovery setup cannot use a new account of the same name: the plan checks, on the
    domain controller, that the account is still there before anything else is done."""
    lab_ws.dr("lab", "break", "lose-server", "--host", "EX2016")
    lab_ws.dr("lab", "break", "delete-computer-account", "--host", "EX2016")
    plan = lab_ws.plan("server", "--server", "EX2016")
    assert [s["kind"] for s in plan["steps"][:2]] == ["verify-directory", "verify-computer-account"]
    refused = lab_ws.dr("lab", "operator", "reset-computer-account", "--host", "EX2016",
                        check=False)  # fmt: skip
    assert refused.returncode != 0 and "deleted" in refused.stderr + refused.stdout

    with lab_ws.serving() as env:
        env.update(JOIN)
        out = dr_with(env, "run", "start", str(lab_ws.root / "plan.json"), "--non-interactive")
        run = newest_run(env)
        failed = steps_in(env, run, "failed")
        started = [s for s in run_steps(env, run) if s["state"] != "pending"]
    assert out.returncode not in (0, 10), out.stdout + out.stderr
    assert failed == ["verify-computer-account.EX2016"], out.stdout + out.stderr
    assert [s["id"] for s in started] == ["verify-directory.DC1", "verify-computer-account.EX2016"]
    assert "it was deleted" in out.stdout + out.stderr and "Recycle Bin" in out.stdout + out.stderr


# --------------------------------------------------------------------------- the person


def _new_machine(env: dict[str, str]) -> None:
    """Windows under the old name, and the Exchange 2016 CU23 media as drive D:."""
    for action in (["install-windows"], ["mount-media", "--drive", "D"]):
        said = dr_with(env, "lab", "operator", *action, "--host", "EX2016")
        assert said.returncode == 0, said.stdout + said.stderr


def _rebuild(lab_ws: LabWorkspace, plan: dict[str, Any], actions: dict[str, Any]) -> list[str]:
    """Run the plan; at each step waiting for a person do what it says, ack, resume."""
    kinds = {s["id"]: s["kind"] for s in plan["steps"]}
    waited: list[str] = []
    with lab_ws.serving() as env:
        env.update(JOIN)
        out = dr_with(env, "run", "start", str(lab_ws.root / "plan.json"), "--non-interactive")
        run = newest_run(env)
        while out.returncode == 10:
            waiting = steps_in(env, run, "waiting")
            assert waiting, out.stdout + out.stderr
            for step_id in waiting:
                kind = kinds[step_id]
                if kind == "reset-computer-account":
                    said = dr_with(env, "lab", "operator", kind, "--host", "EX2016")
                    assert said.returncode == 0, said.stdout + said.stderr
                if kind in actions:
                    actions[kind](env)
                _ack(env, run, step_id)
                waited.append(kind)
            out = dr_with(env, "run", "resume", run)
    assert out.returncode == 0, out.stdout + out.stderr
    return waited


def _ack(env: dict[str, str], run: str, step_id: str) -> None:
    acked = dr_with(env, "run", "ack", run, step_id, "--by", "responder", "--decision", "done")
    assert acked.returncode == 0, acked.stdout + acked.stderr
