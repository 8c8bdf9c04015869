"""`dr run` and `dr runbook render` against a tampered plan, secret hunting, the hosts table."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LIBRARY = """
kinds:
  say:
    title: Say a line
    params: [file, line]
    variants:
      - action: check
        shell: posix
        command: "echo {{ line }} >> {{ file }}"
  show-env:
    title: Print the environment
    variants:
      - action: check
        shell: posix
        command: "env; echo DR_PASSPHRASE=$DR_PASSPHRASE; echo PWD=$PWD"
"""

PLANTED = {
    "DR_PASSPHRASE": "planted-passphrase-4a1f",
    "DR_WINRM_PASSWORD": "planted-winrm-9c2e",
    "DR_BACKUP_KEY": "planted-backup-key-77d0",
    "DR_WINRM_EX1_PASSWORD": "planted-ex1-password-31b",
    "DR_SECRET_DSRM_PASSWORD": "planted-dsrm-0e5c",
    "MY_API_TOKEN": "planted-api-token-a9",
}


def dr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env, cwd=ROOT,
        check=False,
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, DR_WORKSPACE=str(tmp_path / "ws"), DR_OPERATOR="alice", COLUMNS="250")
    assert dr("init", env=e).returncode == 0
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "t.yaml").write_text(LIBRARY)
    return e


def plan_file(tmp_path: Path, kind: str = "say") -> Path:
    from engine.plan import Plan, Step, Target

    params = {"file": str(tmp_path / "out.txt"), "line": "one"} if kind == "say" else {}
    steps = [Step(id="a", kind=kind, host="orchestrator", params=params)]
    plan = Plan(scenario="t", target=Target(what="t"), created_from="0" * 64, steps=steps)
    return plan.sealed().save(tmp_path / "plan.json")


def _tamper(path: Path, how: str) -> None:
    doc = json.loads(path.read_text())
    if how in ("blank", "blank+edit"):
        doc["digest"] = ""
    if how in ("deleted", "deleted+edit"):
        del doc["digest"]
    if how.endswith("edit") or how == "edited":
        doc["steps"][0]["params"]["line"] = "$(touch /tmp/pwned)"
    path.write_text(json.dumps(doc))


TAMPERINGS = ["blank", "deleted", "blank+edit", "deleted+edit", "edited"]


@pytest.mark.parametrize("how", TAMPERINGS)
def test_an_unsealed_or_edited_plan_is_refused(
    tmp_path: Path, env: dict[str, str], how: str
) -> None:
    plan = plan_file(tmp_path)
    _tamper(plan, how)
    lib = str(tmp_path / "lib")
    start = dr("run", "start", str(plan), "--runbooks", lib, "--non-interactive", env=env)
    assert start.returncode == 2, start.stdout + start.stderr
    assert "not sealed" in start.stderr or "does not match" in start.stderr
    assert "--unsealed" in start.stderr and "Traceback" not in start.stderr
    assert not (tmp_path / "out.txt").exists()
    render = dr("runbook", "render", str(plan), "-L", lib, "-o", str(tmp_path / "r.md"), env=env)
    assert render.returncode == 2 and not (tmp_path / "r.md").exists()


def test_unsealed_runs_only_when_asked_and_is_journaled(
    tmp_path: Path, env: dict[str, str]
) -> None:
    plan = plan_file(tmp_path)
    _tamper(plan, "blank")
    lib = str(tmp_path / "lib")
    start = dr(
        "run", "start", str(plan), "--runbooks", lib, "--non-interactive", "--unsealed", env=env
    )
    assert start.returncode == 0, start.stderr
    assert "--unsealed, recorded" in start.stderr
    db = sqlite3.connect(tmp_path / "ws" / "journal.sqlite")
    bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM records WHERE kind='option'")]
    assert bodies and bodies[0]["unsealed"] is True and bodies[0]["by"] == "alice"
    render = dr(
        "runbook", "render", str(plan), "-L", lib, "--unsealed", "-o", str(tmp_path / "r.md"),
        env=env,
    )  # fmt: skip
    assert render.returncode == 0 and "**NOT SEALED**" in (tmp_path / "r.md").read_text()


def test_resume_refuses_a_plan_copy_edited_in_the_journal(
    tmp_path: Path, env: dict[str, str]
) -> None:
    plan = plan_file(tmp_path)
    lib = str(tmp_path / "lib")
    start = dr("run", "start", str(plan), "--runbooks", lib, "--non-interactive", env=env)
    assert start.returncode == 0, start.stderr
    db = sqlite3.connect(tmp_path / "ws" / "journal.sqlite")
    (run_id, plan_json) = db.execute("SELECT id, plan_json FROM runs").fetchone()
    db.execute("UPDATE runs SET plan_json = ?", (plan_json.replace('"one"', '"two"'),))
    db.commit()
    db.close()
    resume = dr("run", "resume", run_id, env=env)
    assert resume.returncode == 2, resume.stdout + resume.stderr
    assert "does not match" in resume.stderr and "Traceback" not in resume.stderr


# -- item 4: secrets of the dr process -------------------------------------------------------


def test_no_secret_of_the_dr_process_reaches_a_step_or_any_stored_output(
    tmp_path: Path, env: dict[str, str]
) -> None:
    plan = plan_file(tmp_path, "show-env")
    lib = str(tmp_path / "lib")
    planted = {**env, **PLANTED}
    start = dr("run", "start", str(plan), "--runbooks", lib, "--non-interactive", env=planted)
    assert start.returncode == 0, start.stderr
    run_id = json.loads(dr("run", "status", "--json", env=env).stdout)[0]["id"]
    log = dr("run", "log", run_id, "a", "--json", env=planted)
    text = "".join(row["text"] for row in json.loads(log.stdout))
    assert "PATH=" in text and f"PWD={ROOT}" in text  # the step ran; PWD is not a secret
    stored = b"".join(p.read_bytes() for p in (tmp_path / "ws").rglob("*") if p.is_file())
    outputs = [start.stdout, start.stderr, log.stdout, text]
    found = [
        name
        for name, value in PLANTED.items()
        if value.encode() in stored or any(value in o for o in outputs)
    ]
    print(f"\nsecrets planted {len(PLANTED)} / found {len(found)}")
    assert found == []


def test_a_declared_secret_reaches_its_step_and_is_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.redact import Redactor
    from engine.transports.base import Command
    from engine.transports.local import LocalTransport

    secret = "declared-secret-5151"
    monkeypatch.setenv("DR_PASSPHRASE", "undeclared-passphrase-8e")
    cmd = Command(script="echo got=$DR_SECRET_X; env", shell="posix", env={"DR_SECRET_X": secret})
    result = LocalTransport().run(cmd, timeout=30)
    assert f"got={secret}".encode() in result.stdout  # the step has what it declared
    assert b"undeclared-passphrase-8e" not in result.stdout  # not what it did not declare
    assert secret not in Redactor([secret]).data(result.stdout).decode()


# -- item 5: the hosts table's host: ----------------------------------------------------------


def test_run_connects_to_the_hosts_table_address_not_the_bare_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dr.cli.run import _transports
    from engine.runner import RunOptions

    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(
        "EX1: {kind: winrm, host: ex1.corp.example, scheme: https, auth: ntlm, username: a}\n"
    )
    from dr.workspace import init

    init(tmp_path / "ws")
    monkeypatch.setenv("DR_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("DR_WINRM_PASSWORD", "x")
    factory, _ = _transports(RunOptions(hosts_file=str(hosts)))
    transport = factory("EX1")
    assert transport.settings.host == "ex1.corp.example"
