"""C2 on the lab: a whole failure rehearsed — broken, planned from the catalog, run, proved.

`dr drill run --scenario store-failure` damages a database in the lab, lists the logs left on
the server as a responder would, plans the point-of-failure restore from the catalog and runs
it over WinRM: every message must be back, to the moment of the failure. The server-loss
drill takes EX2016 away; the rebuild needs people (the hardware, the computer account,
Windows, the certificates), asked at the terminal — here a scripted person who does at the
lab's console what each step says — and every database must equal the truth. Each is a
scenario drill in the history, with signed evidence that names who acknowledged each step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, LabWorkspace, _env, dr_with

JOIN = {"DR_SECRET_DOMAIN_JOIN_ACCOUNT": "CORP\\dr-join", "DR_SECRET_DOMAIN_JOIN_PASSWORD": "x"}


def test_a_store_failure_drill_restores_to_the_moment_of_failure_and_is_recorded(
    lab_ws: LabWorkspace,
) -> None:
    lab_ws.dr("evidence", "keygen")
    failed_at = lab_ws.lab().now()

    out = lab_ws.dr("drill", "run", "--scenario", "store-failure", "--target", "DB01", "--json")

    (record,) = json.loads(out.stdout)["drills"]
    assert record["verdict"] == "passed", record
    assert record["kind"] == "scenario" and record["scenario"] == "store-failure"
    assert record["database"] is None and record["lab"] is True
    truth = next(c for c in record["checks"] if c["name"] == "DB01 equal to the lab's ground truth")
    assert truth["passed"] and " 0 missing, 0 extra" in truth["detail"], truth
    assert failed_at.isoformat() in truth["detail"], "to the point of failure, not a backup"
    assert record["rpo_seconds"] == 0 and record["evidence_record_id"]
    plan = json.loads(next((lab_ws.ws / "drills").glob("*/plan.json")).read_text())
    kinds = [s["kind"] for s in plan["steps"]]
    assert "copy-live-logs" in kinds, "the logs left on the server are replayed"
    lab = lab_ws.lab()
    assert lab.verify("DB01", failed_at).equal
    host = lab.host("EX2016")
    assert host.dbs[host.db_key(*host.find_db("DB01"))].mounted
    assert [f["kind"] for f in lab.state["faults"]][-1] == "corrupt-page"

    history = json.loads(lab_ws.dr("drill", "history", "--json").stdout)
    assert [r["scenario"] for r in history["drills"]] == ["store-failure"]
    verified = lab_ws.dr("evidence", "verify", str(lab_ws.ws / "evidence"), "--json")
    assert json.loads(verified.stdout)["ok"] is True, verified.stdout
    shown = json.dumps(json.loads(lab_ws.dr("evidence", "show", record["run_id"], "--json").stdout))
    assert record["run_id"] in shown


def test_a_server_loss_drill_asks_people_for_their_steps_and_rebuilds_every_database(
    lab_ws: LabWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dr.cli import common
    from dr.drill.scenario import run_scenario_drill
    from dr.workspace import Workspace
    from engine.runner import Decision

    lab_ws.dr("evidence", "keygen")
    for name, value in {**lab_ws.env, **JOIN}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(common.STATE, "workspace", str(lab_ws.ws))
    asked: list[str] = []

    class Person:
        def ask(self, run_id: str, spec: Any, state: str, message: str) -> Decision:
            (plan_file,) = (lab_ws.ws / "drills").glob("*/plan.json")
            step = next(s for s in json.loads(Path(plan_file).read_text())["steps"]
                        if s["id"] == spec.id)  # fmt: skip
            asked.append(step["kind"])
            env = {**lab_ws.env, "DR_WINRM_USER": "lab\\operator",
                   "DR_WINRM_PASSWORD": lab_ws.lab().password}  # fmt: skip
            for action in _console(step["kind"]):
                said = dr_with(env, "lab", "operator", *action, "--host", "EX2016")
                assert said.returncode == 0, said.stdout + said.stderr
            return Decision(by="site-engineer", note=f"{step['kind']} done")

    outcome = run_scenario_drill(Workspace(lab_ws.ws), "server-loss", by="drill-lead",
                                 operator=Person())  # fmt: skip

    record = outcome.record
    assert record.verdict == "passed", record.failure
    assert record.scenario == "server-loss" and record.kind == "scenario"
    assert asked == ["verify-hardware", "reset-computer-account", "install-windows",
                     "reimport-certificates"]  # fmt: skip
    truths = [c for c in record.checks if c.name.endswith("equal to the lab's ground truth")]
    assert [c.name.split()[0] for c in truths] == ["DB01", "DB02"]
    assert all(c.passed for c in truths), [c.detail for c in truths]
    host = lab_ws.lab().host("EX2016")
    assert host.machine.installed and all(s.mounted for s in host.dbs.values())
    assert record.evidence_record_id, "signed"
    shown = lab_ws.dr("evidence", "show", str(record.run_id), "--json").stdout
    assert "site-engineer" in shown, "the record names who acknowledged the people's steps"


def test_a_directory_loss_drill_restores_the_dc_in_dsrm_and_the_directory_equals_the_truth(
    lab_ws: LabWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DC2016's directory database is lost; its partner DC1 runs. The people sign in at the
    DC's console as the DSRM administrator and type what the rendered steps say; the plan
    then restarts the Exchange servers and checks their stores (a person opens each 2003
    store). The directory must equal what DC1 held, and DC2016 run normally again."""
    from dr.cli import common
    from dr.drill.scenario import run_scenario_drill
    from dr.workspace import Workspace
    from engine.runner import Decision
    from tests.e2e.conftest import at_the_console
    from tests.e2e.test_forest_restore import CONSOLE

    lab_ws.dr("evidence", "keygen")
    for name, value in lab_ws.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(common.STATE, "workspace", str(lab_ws.ws))
    env = {**lab_ws.env, "DR_WINRM_USER": "lab\\operator",
           "DR_WINRM_PASSWORD": lab_ws.lab().password}  # fmt: skip
    typed: list[str] = []

    class Person:
        def ask(self, run_id: str, spec: Any, state: str, message: str) -> Decision:
            kind = spec.id.split(".")[0]
            if kind in ("restore-system-state", "authoritative-restore", "leave-dsrm"):
                typed.extend(at_the_console(lab_ws, env, spec.instructions, CONSOLE))
            if kind == "verify-mount":  # Exchange 2003: open a mailbox of the store in Outlook
                store = spec.id.split(".", 3)[3]
                plan = json.loads(next((lab_ws.ws / "drills").glob("*/plan.json")).read_text())
                db = next(s["params"]["db"] for s in plan["steps"] if s["id"] == spec.id)
                said = dr_with(env, "lab", "operator", "open-mailbox", "--host", "EX2003",
                               "--store", db)  # fmt: skip
                assert said.returncode == 0, (store, said.stdout, said.stderr)
            return Decision(by="directory-admin", note=f"{kind} done at the console")

    outcome = run_scenario_drill(Workspace(lab_ws.ws), "directory-loss", by="drill-lead",
                                 operator=Person())  # fmt: skip

    record = outcome.record
    assert record.verdict == "passed", record.failure
    assert record.scenario == "directory-loss"
    assert any(t.startswith("wbadmin start systemstaterecovery") for t in typed), typed
    assert all(t.startswith(CONSOLE) for t in typed)
    checks = {c.name: c for c in record.checks}
    assert checks["the directory equal to the lab's ground truth"].passed
    assert checks["DC2016 back in normal mode with its directory"].passed
    steps = {s.id: s.state for s in record.steps}
    assert steps["verify-mount.EX2016.DB01.DB01"] == "succeeded", "the plan ran to its end"
    state = lab_ws.lab().dc("DC2016").load()
    assert state.mode == "normal" and state.ntds == "ok"


def _console(kind: str) -> list[list[str]]:
    """What a step that needs a person asks for, done at the lab's console."""
    if kind == "reset-computer-account":
        return [["reset-computer-account"]]
    if kind == "install-windows":
        return [["install-windows"], ["mount-media", "--drive", "D"]]
    return []


def test_a_scenario_drill_breaks_nothing_when_the_run_could_not_start(
    lab_ws: LabWorkspace,
) -> None:
    """The join account's secret is not in the environment: checked before the server is
    taken away, so the lab is left as it was."""
    out = lab_ws.dr("drill", "run", "--scenario", "server-loss", "--json", check=False)

    assert out.returncode == 7, out.stdout + out.stderr
    (record,) = json.loads(out.stdout)["drills"]
    assert record["verdict"] == "failed", record
    assert record["failure"].startswith("not started, nothing broken:"), record["failure"]
    assert "DR_SECRET_DOMAIN_JOIN_PASSWORD" in record["failure"]
    assert lab_ws.lab().host("EX2016").answering(), "the server was not taken away"


def test_a_scenario_drill_without_people_fails_and_says_where_it_stopped(
    lab_ws: LabWorkspace,
) -> None:
    out = dr_with({**lab_ws.env, **JOIN}, "drill", "run", "--scenario", "server-loss", "--json")

    assert out.returncode == 7, out.stdout + out.stderr
    (record,) = json.loads(out.stdout)["drills"]
    assert record["verdict"] == "failed" and "verify-hardware" in record["failure"], record


def test_a_scenario_drill_is_refused_outside_the_lab(tmp_path: Path) -> None:
    """It breaks what it drills: a workspace that is not the lab's is never broken."""
    env = _env(tmp_path)
    made = dr_with(env, "init", "--inventory", str(ROOT / "examples" / "estate.yaml"))
    assert made.returncode == 0, made.stdout + made.stderr
    out = dr_with(env, "drill", "run", "--scenario", "store-failure")

    assert out.returncode == 2, out.stdout + out.stderr
    assert "E7720" in out.stderr and "dr lab up --inventory" in out.stderr
