"""`dr drill tick`: one at a time per workspace; a second tick says who holds the lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from pathlib import Path
from dr.drill.tick import tick_lock
with tick_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def _dr(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env.update({"DR_WORKSPACE": str(ws), "COLUMNS": "80", "DR_OPERATOR": "tick-test"})
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env,
        check=False, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    out = _dr(ws, "init", "--inventory", str(ROOT / "examples" / "estate.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    return ws


def test_a_second_tick_exits_at_once_and_names_the_holder(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(ws)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        out = _dr(ws, "drill", "tick")
        assert out.returncode == 75, out.stdout + out.stderr
        assert "another `dr drill tick` is running" in out.stderr
        assert f"pid {holder.pid}" in out.stderr
        assert not (ws / "drills" / "history.jsonl").exists(), "nothing started"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)


def test_a_killed_tick_leaves_no_stale_lock_and_a_drill_that_cannot_be_planned_is_failed(
    tmp_path: Path,
) -> None:
    """After the holder is killed (-9) the next tick runs. The workspace has no backups: the
    due drill cannot be planned, which is recorded as a FAILED drill, saying why."""
    ws = _workspace(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(ws)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)

    out = _dr(ws, "drill", "tick", "--max", "1", "--json")

    assert out.returncode == 7, out.stdout + out.stderr
    body = json.loads(out.stdout)
    (record,) = body["drills"]
    assert record["verdict"] == "failed"
    assert record["failure"].startswith("could not be planned: E3120"), record["failure"]
    assert body["left_for_later"], "the other due databases wait for the next tick"
    history = json.loads(_dr(ws, "drill", "history", "--json").stdout)["drills"]
    assert [h["drill_id"] for h in history] == [record["drill_id"]]
