"""C1 on Exchange 2003: a drill into the recovery forest's RX2003, run to its end on the lab.

The restore's person steps (Exchange System Manager, NTBackup) are done at the lab's console
as the runbook says (``dr lab operator``, the helpers of ``test_legacy_plan``); the checks
that are commands — the forest's names, the log sequence, the header, the item counts through
the ``Exchange_Mailbox`` WMI class — run on RX2003. Before the clean-up the restored store is
compared with the ground truth; the clean-up (a person's step on 2003) is then done and
acknowledged, and production is untouched.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tests.e2e.conftest import LabWorkspace
from tests.e2e.conftest import dr_with as _dr
from tests.e2e.conftest import newest_run as _run_id
from tests.e2e.test_legacy_plan import DB, _console_action, _untouched, _waiting

STORE = "Mailbox Store (EX2003)"


def test_a_2003_drill_into_the_recovery_forest_runs_to_its_end_and_equals_the_truth(
    lab_ws: LabWorkspace,
) -> None:
    plan = lab_ws.plan("drill", "--db", DB)
    steps = {s["id"]: s for s in plan["steps"]}
    assert {s["host"] for s in plan["steps"]} <= {"RX2003", "orchestrator"}
    counts = next(s for s in plan["steps"] if s["kind"] == "verify-item-counts")
    assert counts["params"]["expected"], "the backups counted the mailboxes"
    point = datetime.fromisoformat(plan["recoverable_point"])

    seen: list[str] = []
    with lab_ws.serving() as env:
        out = _dr(env, "run", "start", str(lab_ws.root / "plan.json"), "--non-interactive")
        run = _run_id(env)
        while out.returncode == 10:
            for step_id in _waiting(env, run):
                step = steps[step_id]
                seen.append(step["kind"])
                said = _act(lab_ws, env, step, point)
                acked = _dr(env, "run", "ack", run, step_id, "--by", "drill-operator",
                            "--decision", "done", "--note", said)  # fmt: skip
                assert acked.returncode == 0, acked.stdout + acked.stderr
            out = _dr(env, "run", "resume", run)
    assert out.returncode == 0, out.stdout + out.stderr
    status = json.loads(_dr(env, "run", "status", run, "--json").stdout)
    states = {s["id"].split(".")[0]: s["state"] for s in status["steps"]}
    assert states["verify-item-counts"] == "succeeded", "counted through WMI, by mailbox GUID"
    assert seen[-1] == "cleanup-recovery-forest"
    rx = lab_ws.lab().host("RX2003")
    assert not rx.path("E:\\Exchsrvr\\mdbdata\\priv1.edb").exists(), "cleaned up"
    _untouched(lab_ws)
    lab = lab_ws.lab()
    assert lab.verify(DB, lab.now()).equal, "production's store was not touched"


def _act(lab_ws: LabWorkspace, env: dict[str, str], step: dict[str, Any], point: datetime) -> str:
    """What the step's instructions ask a person to do, at RX2003's console."""
    kind, p = step["kind"], step["params"]
    if kind == "verify-mailbox-sample":
        return _ok(_dr(env, "lab", "operator", "open-mailbox", "--host", "RX2003",
                       "--store", p["db"]))  # fmt: skip
    if kind == "cleanup-recovery-forest":
        verdict = json.loads(lab_ws.dr("lab", "verify", "--db", DB, "--at", point.isoformat(),
                                       "--host", "RX2003", "--json").stdout)  # fmt: skip
        assert verdict["equal"] and verdict["found"] == verdict["expected"] > 0, verdict
        _ok(_dr(env, "lab", "operator", "dismount-store", "--host", "RX2003", "--store", STORE))
        files = [p["edb"], p["stm"]]
        script = "; ".join(f"Remove-Item -LiteralPath '{f}'" for f in files if f)
        return _ok(_dr(env, "lab", "exec", "RX2003", script)) or "files removed"
    return _ok(_dr(env, *_console_action(step)))


def _ok(out: Any) -> str:
    assert out.returncode == 0, out.stdout + out.stderr
    return str(out.stdout.strip())


def test_a_2003_drill_with_a_person_at_the_terminal_passes_and_is_recorded(
    lab_ws: LabWorkspace, monkeypatch: Any
) -> None:
    """`dr drill run` at a terminal asks about each step that needs a person (the engine's
    Operator, as `dr run start` uses it). Here the person is scripted: for each question it
    does the console action the instructions ask for (`dr lab operator ...`) and answers
    "done". The held clean-up is asked about last: the drill compares the restored store
    with the truth first, then releases it, and on 2003 the clean-up is a person's too."""
    from pathlib import Path

    from dr.cli import common
    from dr.drill.run import run_database_drill
    from dr.workspace import Workspace
    from engine.runner import Decision

    for name, value in lab_ws.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(common.STATE, "workspace", str(lab_ws.ws))  # an earlier in-process CLI
    asked: list[str] = []

    class Person:
        def ask(self, run_id: str, spec: Any, state: str, message: str) -> Decision:
            (plan_file,) = (lab_ws.ws / "drills").glob("*/plan.json")
            step = next(s for s in json.loads(Path(plan_file).read_text())["steps"]
                        if s["id"] == spec.id)  # fmt: skip
            asked.append(step["kind"])
            env = {**lab_ws.env, "DR_WINRM_USER": "lab\\operator",
                   "DR_WINRM_PASSWORD": lab_ws.lab().password}  # fmt: skip
            if step["kind"] == "verify-mailbox-sample":
                _ok(_dr(env, "lab", "operator", "open-mailbox", "--host", "RX2003", "--store",
                        step["params"]["db"]))  # fmt: skip
            elif step["kind"] == "cleanup-recovery-forest":  # asked once the hold is released
                _ok(_dr(env, "lab", "operator", "dismount-store", "--host", "RX2003",
                        "--store", STORE))  # fmt: skip
                files = [step["params"]["edb"], step["params"]["stm"]]
                _ok(_dr(env, "lab", "exec", "RX2003",
                        "; ".join(f"Remove-Item -LiteralPath '{f}'" for f in files)))  # fmt: skip
            else:
                _ok(_dr(env, *_console_action(step)))
            return Decision(by="drill-operator", note="done at the console")

    outcome = run_database_drill(Workspace(lab_ws.ws), DB, by="drill-operator",
                                 operator=Person())  # fmt: skip

    record = outcome.record
    assert record.verdict == "passed", record.failure
    assert "restore-database-backup" in asked and asked[-1] == "cleanup-recovery-forest"
    assert asked.count("cleanup-recovery-forest") == 1
    sample = next(c for c in record.checks if c.name.startswith("Open the restored database"))
    assert sample.passed and "done at the console" in sample.detail, "the person's word"
    assert not lab_ws.lab().host("RX2003").path("E:\\Exchsrvr\\mdbdata\\priv1.edb").exists()
    truth = next(c for c in record.checks if c.name == "equal to the lab's ground truth")
    assert truth.passed, truth.detail
    steps = {s.id.split(".")[0]: s.state for s in record.steps}
    assert steps["verify-item-counts"] == "succeeded"
