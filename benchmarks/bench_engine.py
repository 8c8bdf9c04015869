"""Engine benchmarks: overhead per step, parallel efficiency, journal size per step.

    .venv/bin/python benchmarks/bench_engine.py [--journal-dir DIR]

1. Overhead: a chain of 300 steps through the dry-run transport (which answers at once),
   one at a time: the median time from one step's "running" record to the next one's.
2. Parallelism: 1 000 steps in layers of 16 (each step needs one step of the layer before),
   every command sleeping 20 ms, --parallel 16: elapsed time against the critical-path bound.
3. Journal size per step: the journal file (with its WAL checkpointed) / steps.

Both journals are measured on the directory given (default: a temporary directory) — the
journal's commits are fsynced (synchronous=FULL), so the disk under it matters most.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from engine.executor import StepSpec
from engine.journal import Journal
from engine.plan import Plan, Step, Target
from engine.runner import Runner, RunOptions, create_run
from engine.transports.base import Command
from engine.transports.dryrun import DryRunTransport, Recorder, Scripted


def plan_and_specs(needs: dict[str, list[str]]) -> tuple[Plan, dict[str, StepSpec]]:
    steps = [
        Step(id=s, kind="echo", host=f"h{i % 16}", needs=n)
        for i, (s, n) in enumerate(needs.items())
    ]
    plan = Plan(scenario="bench", target=Target(what="bench"), created_from="0" * 64, steps=steps)
    specs = {
        s.id: StepSpec(id=s.id, host=s.host, action="check", needs=tuple(s.needs),
                       command=Command(f"echo {s.id}", shell="posix"))
        for s in steps
    }  # fmt: skip
    return plan, specs


def execute(
    journal: Journal, needs: dict[str, list[str]], parallel: int, recorder: Recorder
) -> tuple[str, float]:
    plan, specs = plan_and_specs(needs)
    opts = RunOptions(parallel=parallel, non_interactive=True, poll_seconds=0.05)
    info = create_run(journal, plan, Path("bench.json"), "bench", opts)
    started = time.perf_counter()
    state = Runner(journal, info, specs, lambda h: DryRunTransport(h, recorder)).run()
    assert state == "succeeded", state
    return info.id, time.perf_counter() - started


def overhead(journal: Journal, n: int = 300) -> tuple[float, float]:
    needs = {f"s{i}": ([f"s{i - 1}"] if i else []) for i in range(n)}
    run_id, elapsed = execute(journal, needs, 1, Recorder())
    starts = [
        datetime.fromisoformat(r.at)
        for r in journal.records(run_id, kinds=["step"])
        if r.body["state"] == "running"
    ]
    gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(starts)]
    return statistics.median(gaps), elapsed / n * 1000


def parallel(
    journal: Journal, n: int = 1000, width: int = 16, sleep: float = 0.02
) -> tuple[float, float]:
    rng = random.Random(1)
    needs: dict[str, list[str]] = {}
    for i in range(n):
        layer = i // width
        needs[f"s{i}"] = [f"s{(layer - 1) * width + rng.randrange(width)}"] if layer else []
    recorder = Recorder(handler=lambda host, cmd: time.sleep(sleep) or Scripted())
    _, elapsed = execute(journal, needs, width, recorder)
    bound = -(-n // width) * sleep
    return elapsed, bound


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--journal-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.journal_dir) as tmp:
        with Journal.open(Path(tmp) / "overhead.sqlite") as journal:
            median_ms, mean_ms = overhead(journal)
        print(f"overhead per step (dry-run, sequential): median {median_ms:.2f} ms, "
              f"mean {mean_ms:.2f} ms")  # fmt: skip
        path = Path(tmp) / "parallel.sqlite"
        with Journal.open(path) as journal:
            elapsed, bound = parallel(journal)
            journal._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        excess = (elapsed / bound - 1) * 100
        print(f"1000 steps, width 16, 20 ms each, --parallel 16: {elapsed:.2f} s "
              f"(critical-path bound {bound:.2f} s, +{excess:.1f} %)")  # fmt: skip
        print(f"journal size: {path.stat().st_size / 1000:.0f} bytes per step")


if __name__ == "__main__":
    main()
