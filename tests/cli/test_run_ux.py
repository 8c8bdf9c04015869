"""What `dr run` tells a responder: a failed attempt's reason at once, how to resume after
Ctrl-C, what a plan lacks before it starts, and a dry run that never looks like a restore.

Every test runs the real `dr` in a subprocess, 80 columns wide, its output through a pipe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def dr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env, cwd=ROOT,
        check=False, timeout=120,
    )  # fmt: skip


def popen(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dr", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, DR_WORKSPACE=str(tmp_path / "ws"), DR_OPERATOR="alice", COLUMNS="80")
    assert dr("init", env=e).returncode == 0
    return e


def library(tmp_path: Path, kinds: dict[str, dict[str, Any]]) -> Path:
    """A step library of posix kinds (one variant each) in tmp_path/lib."""
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    doc = {
        name: {"title": name, "params": sorted(v.pop("params", [])),
               "variants": [{"action": "check", "shell": "posix", **v}]}
        for name, v in kinds.items()
    }  # fmt: skip
    (lib / "t.yaml").write_text(yaml.safe_dump({"kinds": doc}), encoding="utf-8")
    return lib


def plan(tmp_path: Path, steps: list[dict[str, Any]], name: str = "plan.json") -> Path:
    from engine.plan import Plan, Step, Target

    made = Plan(
        scenario="t", target=Target(what="t"), created_from="0" * 64,
        steps=[Step(**{"host": "orchestrator", **s}) for s in steps],
    )  # fmt: skip
    return made.sealed().save(tmp_path / name)


def run_ids(env: dict[str, str]) -> list[str]:
    return [r["id"] for r in json.loads(dr("run", "status", "--json", env=env).stdout)]


# -- a failed attempt's reason, at once ---------------------------------------------------


def test_the_reason_is_printed_while_the_retry_waits(tmp_path: Path, env: dict[str, str]) -> None:
    """The reason and the retry come before the backoff, not when the run stops: the test
    reads them from the pipe while dr still waits 600 s, then aborts the run."""
    lib = library(tmp_path, {"share": {
        "command": "echo 'copying' ; echo 'T: share not ready, password=hunter2' >&2; exit 1",
        "retries": 2, "backoff_seconds": 600, "on_failure": "pause",
    }})  # fmt: skip
    proc = popen("run", "start", str(plan(tmp_path, [{"id": "copy", "kind": "share"}])),
                 "--runbooks", str(lib), "--non-interactive", env=env)  # fmt: skip
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if "retrying in" in line:
            break
    assert seen[-3:] == [
        "copy: attempt 1 of 3 failed — exit code 1",
        "  | T: share not ready, password=[redacted]",
        "  retrying in 600 s (attempt 2 of 3)",
    ]
    assert proc.poll() is None  # still waiting for the retry
    (rid,) = run_ids(env)
    assert dr("run", "abort", rid, env=env).returncode == 0
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 7
    assert "hunter2" not in out


def test_a_configuration_error_is_not_retried(tmp_path: Path, env: dict[str, str]) -> None:
    script = (
        "echo \"error E2300 T:\\\\DRTemp is a folder on a Windows host; this machine does not "
        "know where it is mounted\" >&2; exit 2"
    )
    lib = library(tmp_path, {"fetch": {
        "command": script, "retries": 2, "backoff_seconds": 600, "on_failure": "pause",
    }})  # fmt: skip
    out = dr("run", "start", str(plan(tmp_path, [{"id": "fetch", "kind": "fetch"}])),
             "--runbooks", str(lib), "--non-interactive", env=env)  # fmt: skip
    assert out.returncode == 10, out.stderr
    lines = out.stdout.splitlines()
    i = lines.index("fetch: attempt 1 of 3 failed — exit code 2")
    assert lines[i + 1].startswith("  | error E2300 T:\\DRTemp is a folder")
    assert lines[i + 2].startswith("  not retried: a dr command refused its input")
    assert lines[i + 3] == "fetch: paused — waiting for the operator"
    assert "retrying" not in out.stdout
    status = json.loads(dr("run", "status", run_ids(env)[0], "--json", env=env).stdout)
    assert status["steps"][0]["attempt"] == 1 and status["steps"][0]["state"] == "paused"
    assert "not retried" in status["steps"][0]["message"]
    assert f"dr run ack {run_ids(env)[0]} fetch --by alice --decision retry" in out.stderr


# -- Ctrl-C -------------------------------------------------------------------------------


def test_ctrl_c_stops_the_run_and_resume_finishes_it(tmp_path: Path, env: dict[str, str]) -> None:
    """SIGINT while a slow local step runs: dr stops the command, says how to resume, exits
    130; resume re-checks the step (its command was stopped, so it is not done) and runs it
    again to success. The step tells the test it runs through a FIFO, so no timing guess."""
    fifo, marker, out = tmp_path / "fifo", tmp_path / "marker", tmp_path / "out.txt"
    os.mkfifo(fifo)
    slow = (
        f"if [ ! -e {marker} ]; then touch {marker}; echo started > {fifo}; sleep 60; fi; "
        f"echo done >> {out}"
    )
    lib = library(tmp_path, {"slow": {
        "command": slow, "idempotency": {"command": f"grep -qx done {out}"},
        "timeout_seconds": 300,
    }})  # fmt: skip
    proc = popen("run", "start", str(plan(tmp_path, [{"id": "slow", "kind": "slow"}])),
                 "--runbooks", str(lib), "--non-interactive", env=env)  # fmt: skip
    told: list[str] = []
    reader = threading.Thread(target=lambda: told.append(fifo.read_text()), daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert told == ["started\n"], "the slow step did not start"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    (rid,) = run_ids(env)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"interrupted: run {rid} stopped; continue with: dr run resume {rid}"
    )
    assert "Traceback" not in stderr and not out.exists()
    assert json.loads(dr("run", "status", rid, "--json", env=env).stdout)["state"] == "interrupted"
    resumed = dr("run", "resume", rid, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_text() == "done\n"
    from engine.journal import Journal

    with Journal.open(tmp_path / "ws" / "journal.sqlite") as journal:
        stops = journal.records(rid, kinds=["stop"])
        assert [r.body["by"] for r in stops][:1] == ["interrupt"]
        assert journal.verify_chain(rid).ok
