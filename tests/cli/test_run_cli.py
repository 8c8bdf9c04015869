"""`dr run`: start (dry run and real), status --json, ack with two-person rule, log, verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LIBRARY = """
kinds:
  append-line:
    title: Append a line
    params: [file, line]
    variants:
      - action: check
        shell: posix
        command: "echo {{ line }} password=hunter2 >> {{ file }}; cat {{ file }}"
        idempotency:
          command: "grep -qF {{ line }} {{ file }}"
  person:
    title: A person looks
    variants:
      - action: manual
        instructions: "Open the console and note what it says."
  wipe:
    title: Delete a file
    params: [file]
    variants:
      - action: check
        shell: posix
        destructive: true
        command: "rm -f {{ file }}"
"""


def dr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env, cwd=ROOT,
        check=False,
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, DR_WORKSPACE=str(tmp_path / "ws"), DR_OPERATOR="alice")
    assert dr("init", env=e).returncode == 0
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "t.yaml").write_text(LIBRARY)
    return e


def write_plan(tmp_path: Path) -> Path:
    from engine.plan import Plan, Step, Target

    out = tmp_path / "out.txt"
    victim = tmp_path / "victim"
    victim.write_text("x")
    line = {"file": str(out), "line": "one"}
    steps = [
        Step(id="a", kind="append-line", host="orchestrator", params=line),
        Step(id="look", kind="person", host="operator", needs=["a"]),
        Step(
            id="wipe",
            kind="wipe",
            host="orchestrator",
            needs=["look"],
            params={"file": str(victim)},
        ),
    ]
    plan = Plan(scenario="t", target=Target(what="t"), created_from="0" * 64, steps=steps)
    return plan.sealed().save(tmp_path / "plan.json")


def run_id(env: dict[str, str]) -> str:
    return json.loads(dr("run", "status", "--json", env=env).stdout)[-1]["id"]


def test_dry_run_lists_commands_and_sends_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    plan = write_plan(tmp_path)
    out = dr("run", "start", str(plan), "--dry-run", "--runbooks", str(tmp_path / "lib"),
             "--non-interactive", env=env)  # fmt: skip
    assert out.returncode == 10, out.stderr  # the manual step waits even in a dry run
    assert "echo one password=[redacted]" in out.stdout
    assert not (tmp_path / "out.txt").exists()
    assert "dr run ack" in out.stderr and "look" in out.stderr


def test_full_cycle_with_second_person_log_and_verify(tmp_path: Path, env: dict[str, str]) -> None:
    plan = write_plan(tmp_path)
    lib = str(tmp_path / "lib")
    out = dr("run", "start", str(plan), "--runbooks", lib, "--non-interactive", env=env)
    assert out.returncode == 10, out.stderr
    rid = run_id(env)
    status = json.loads(dr("run", "status", rid, "--json", env=env).stdout)
    assert {s["id"]: s["state"] for s in status["steps"]} == {
        "a": "succeeded", "look": "waiting", "wipe": "pending"
    }  # fmt: skip
    assert dr("run", "ack", rid, "look", "--by", "alice", "--note", "ok", env=env).returncode == 0
    assert dr("run", "resume", rid, env=env).returncode == 10  # now the destructive approval
    refused = dr("run", "ack", rid, "wipe", "--by", "alice", env=env)
    assert refused.returncode == 7 and "second person" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert dr("run", "ack", rid, "wipe", "--by", "bob", env=env).returncode == 0
    done = dr("run", "resume", rid, env=env)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "victim").exists()
    log = dr("run", "log", rid, "a", env=env)
    assert "one password=[redacted]" in log.stdout and "hunter2" not in log.stdout
    verify = json.loads(dr("run", "verify", rid, "--json", env=env).stdout)
    assert verify["ok"] and verify["records"] > 10
    again = dr("run", "resume", rid, env=env)
    assert again.returncode == 0
    assert (tmp_path / "out.txt").read_text().count("one") == 1


def test_unknown_run_is_one_line_and_exit_2(env: dict[str, str]) -> None:
    out = dr("run", "status", "nope", env=env)
    assert out.returncode == 2
    assert "E8410" in out.stderr and "Traceback" not in out.stderr


def test_bad_plan_is_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"scenario": 1}')
    out = dr("run", "start", str(bad), env=env)
    assert out.returncode == 2 and "bad.json" in out.stderr and "Traceback" not in out.stderr


def test_start_json_prints_a_summary_and_keeps_the_exit_code(
    tmp_path: Path, env: dict[str, str]
) -> None:
    plan = write_plan(tmp_path)
    out = dr("run", "start", str(plan), "--runbooks", str(tmp_path / "lib"), "--json",
             "--journal-sync", "normal", env=env)  # fmt: skip
    assert out.returncode == 10, out.stderr
    summary = json.loads(out.stdout)
    assert summary["state"] == "waiting" and summary["exit_code"] == 10
    assert {s["id"]: s["state"] for s in summary["steps"]} == {
        "a": "succeeded", "look": "waiting", "wipe": "pending"
    }  # fmt: skip
    assert summary["id"] == run_id(env)
    assert "dr run ack" in out.stderr
