"""Real runs for the evidence tests: a workspace, a step library, plans run by `dr run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Tr0ub4dor&3-not-for-evidence"

LIBRARY = """
kinds:
  append-line:
    title: Append a line
    params: [file, line]
    variants:
      - action: check
        shell: posix
        command: "echo {{ line }} >> {{ file }}; cat {{ file }}"
  with-secret:
    title: Uses a secret
    variants:
      - action: check
        shell: posix
        secrets: [dsrm-password]
        command: "echo the password is {{ secret('dsrm-password') }}"
  wipe:
    title: Delete a file
    params: [file]
    variants:
      - action: check
        shell: posix
        destructive: true
        command: "rm -f {{ file }}"
  flaky:
    title: Fails with exit 3
    variants:
      - action: check
        shell: posix
        retries: 1
        backoff_seconds: 0
        command: "echo failing; exit 3"
"""


@dataclass
class Env:
    tmp: Path
    vars: dict[str, str]

    @property
    def workspace(self) -> Path:
        return self.tmp / "ws"

    @property
    def library(self) -> Path:
        return self.tmp / "lib"

    def dr(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=self.vars,
            cwd=ROOT, check=False,
        )  # fmt: skip
        if ok:
            assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out

    def last_run(self) -> str:
        return str(json.loads(self.dr("run", "status", "--json").stdout)[-1]["id"])


def make_env(tmp: Path) -> Env:
    tmp.mkdir(parents=True, exist_ok=True)
    env = Env(tmp, dict(os.environ))
    env.vars.update(
        DR_WORKSPACE=str(tmp / "ws"),
        DR_KEY_DIR=str(tmp / "keys"),
        DR_OPERATOR="alice",
        DR_SECRET_DSRM_PASSWORD=SECRET,
        COLUMNS="200",
    )
    env.dr("init")
    env.library.mkdir(exist_ok=True)
    (env.library / "t.yaml").write_text(LIBRARY)
    return env


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


def good_plan(tmp: Path, *, rto: float | None = 3600.0) -> Path:
    """Three steps: a command, a command with a secret, a destructive step (approval)."""
    from engine.plan import Plan, SecretRef, Sla, Step, Target

    victim = tmp / "victim"
    victim.write_text("x")
    secret = SecretRef(
        name="dsrm-password", location="vault dr/dsrm", env="DR_SECRET_DSRM_PASSWORD"
    )
    steps = [
        Step(id="a", kind="append-line", host="orchestrator",
             params={"file": str(tmp / "out.txt"), "line": "one"}),
        Step(id="s", kind="with-secret", host="orchestrator", needs=["a"], secrets=[secret]),
        Step(id="wipe", kind="wipe", host="orchestrator", needs=["s"], destructive=True,
             params={"file": str(victim)}),
    ]  # fmt: skip
    plan = Plan(
        scenario="database", target=Target(what="database EX1/SG1/DB1"), created_from="e" * 64,
        data_loss_window_seconds=120.0, sla=Sla(rpo_seconds=900.0, rto_seconds=rto), steps=steps,
    )  # fmt: skip
    return plan.sealed().save(tmp / "plan.json")


def failing_plan(tmp: Path) -> Path:
    from engine.plan import Plan, Step, Target

    steps = [Step(id="f", kind="flaky", host="orchestrator")]
    plan = Plan(scenario="drill", target=Target(what="drill"), created_from="d" * 64, steps=steps)
    return plan.sealed().save(tmp / "failing.json")


def run_good(env: Env, plan: Path) -> str:
    """Start, wait for the approval, approve as bob, resume to the end."""
    lib = str(env.library)
    started = env.dr("run", "start", str(plan), "--runbooks", lib, "--non-interactive", ok=False)
    assert started.returncode == 10, started.stderr
    rid = env.last_run()
    env.dr("run", "ack", rid, "wipe", "--by", "bob", "--note", "checked the backup first")
    done = env.dr("run", "resume", rid, ok=False)
    assert done.returncode == 0, done.stderr
    return rid
