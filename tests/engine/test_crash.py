"""Kill -9 the engine at random journal transitions; every resume runs each step once.

Each iteration executes a run in a child process (forked, so that fifty iterations do not
pay fifty interpreter start-ups), watches the journal from here and SIGKILLs the child as
soon as the chosen number of records exists, then resumes the run in this process. The
steps append a line to a file through the local transport, after a short pause, and have an
idempotency check that looks for the line. A kill lands before a command started (it runs
again), while it runs (the command outlives the engine in its own process group: resume must
stop it before the check, or it would write its line after the check said "not done" and
the step would run twice), or after it wrote (found done).

When the resume has finished, no process any attempt started may be left alive: only then
is the file's content final, and the count of lines proves exactly once.

The journals live on a RAM disk when there is one: a killed process loses nothing the
kernel already has, so fsync cost (what ``synchronous=FULL`` adds against power loss) is
not what this test is about.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_plan

from engine.executor import StepSpec, build_specs
from engine.journal import Journal
from engine.runbook import Library
from engine.runner import Runner, RunOptions, create_run
from engine.transports.local import LocalTransport, group_members

ITERATIONS = 50
# Long enough that kills land while the command runs; short enough for fifty iterations.
SLOW_APPEND = """
kinds:
  slow-append:
    title: Append a line to a file, after a pause
    params: [file, line]
    variants:
      - action: check
        shell: posix
        command: "sleep 0.02; echo {{ line }} >> {{ file }}"
        idempotency:
          command: "grep -qxF {{ line }} {{ file }}"
        timeout_seconds: 20
"""
SHAPE = {"s1": (), "s2": ("s1",), "s3": ("s1",), "s4": ("s2", "s3"), "s5": (), "s6": ("s4", "s5")}


def plan_for(out: Path):  # type: ignore[no-untyped-def]
    return make_plan(
        [
            {"id": sid, "kind": "slow-append", "host": "orchestrator", "needs": list(needs),
             "params": {"file": str(out), "line": f"line-{sid}"}}
            for sid, needs in SHAPE.items()
        ]
    )  # fmt: skip


def execute(journal_path: str, run_id: str, specs: dict[str, StepSpec]) -> None:
    """The engine process: execute the run as `dr run start` / `resume` would (the specs
    come from the parent's memory through fork, rendered from the same library)."""
    with Journal.open(Path(journal_path)) as journal:
        info = journal.run(run_id)
        Runner(journal, info, specs, lambda host: LocalTransport()).run()


def kill_at(
    proc: multiprocessing.process.BaseProcess, journal: Journal, run_id: str, n: int
) -> bool:
    """SIGKILL ``proc`` once the run has ``n`` records; False if it finished first."""
    while proc.is_alive():
        if journal.count(run_id) >= n:
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            return True
        time.sleep(0.001)  # polling the journal, not waiting for an outcome
    proc.join()
    return False


@pytest.fixture
def scratch() -> Iterator[Path]:
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as name:
        yield Path(name)


@pytest.mark.slow
def test_kill_minus_9_at_random_transitions_then_resume_runs_each_step_once(
    scratch: Path, library_dir: Path
) -> None:
    rng = random.Random(20240611)
    (library_dir / "crash.yaml").write_text(SLOW_APPEND, encoding="utf-8")
    library = Library.load(extra_dirs=[library_dir])
    fork = multiprocessing.get_context("fork")
    tmp_path = scratch
    killed = rechecked = stopped = 0
    for i in range(ITERATIONS):
        out = tmp_path / f"out-{i}.txt"
        plan = plan_for(out)
        with Journal.open(tmp_path / f"j{i}" / "journal.sqlite") as journal:
            info = create_run(journal, plan, tmp_path / "plan.json", "ci", RunOptions(parallel=2))
            specs = build_specs(plan, library)
            proc = fork.Process(target=execute, args=(str(journal.path), info.id, specs))
            proc.start()
            killed += kill_at(proc, journal, info.id, rng.randint(3, 30))
            state = Runner(journal, journal.run(info.id), specs, lambda h: LocalTransport()).run()
            assert state == "succeeded", f"iteration {i}: {journal.step_states(info.id)}"
            for rec in journal.records(info.id, kinds=["started"]):
                handle = rec.body["handle"]
                assert not group_members(handle["pgid"], handle["start_ticks"]), f"iteration {i}"
            lines = out.read_text().splitlines()
            assert sorted(lines) == sorted(f"line-{sid}" for sid in SHAPE), f"iteration {i}"
            assert journal.verify_chain(info.id).ok
            rechecked += sum(
                1 for r in journal.records(info.id, kinds=["step"]) if r.body.get("via")
            )
            stops = journal.records(info.id, kinds=["stop"])
            stopped += sum(1 for r in stops if r.body["result"].startswith("stopped"))
    assert killed >= ITERATIONS // 2, "the engine was rarely killed: the test proves little"
    assert rechecked > 0, "no kill landed while a step was in flight"
    assert stopped > 0, "no command outlived the engine: the race this test is for never ran"
