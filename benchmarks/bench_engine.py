"""Engine benchmarks: overhead per step, parallel efficiency, journal size per step.

    .venv/bin/python benchmarks/bench_engine.py [--journal-dir DIR] [--journal-sync full|normal]
                                                [--sleeps 0.02,0.1] [--local-steps 100]

0. fsync probe: the median latency of fsync after a 4 KiB write in the journal's directory
   (what one durable commit costs at least with synchronous=FULL).
1. Overhead: a chain of 300 steps through the dry-run transport (which answers at once),
   one at a time: the median time from one step's "running" record to the next one's.
   Each step costs one commit here: its end and the next step's start share a transaction.
2. The same chain of real commands (``true``) through the local transport: adds the
   process start, the gate and the ``started`` record (a second commit per step).
3. Parallelism: 1 000 steps in layers of 16 (each step needs one random step of the layer
   before), every command sleeping S seconds (dry-run transport), --parallel 16: elapsed
   time against the critical-path bound (63 layers x S).
4. Journal size per step: the parallel run's journal file (WAL checkpointed) / steps.
"""

from __future__ import annotations

import argparse
import itertools
import os
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
from engine.transports.base import Command, Transport
from engine.transports.dryrun import DryRunTransport, Recorder, Scripted
from engine.transports.local import LocalTransport

WIDTH = 16


def fsync_probe(directory: Path, rounds: int = 50) -> float:
    """Median milliseconds of write(4 KiB) + fsync in ``directory``."""
    fd, name = tempfile.mkstemp(dir=directory)
    times = []
    try:
        for _ in range(rounds):
            os.write(fd, b"x" * 4096)
            start = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        os.unlink(name)
    return statistics.median(times)


def plan_and_specs(needs: dict[str, list[str]]) -> tuple[Plan, dict[str, StepSpec]]:
    steps = [
        Step(id=s, kind="echo", host=f"h{i % WIDTH}", needs=n)
        for i, (s, n) in enumerate(needs.items())
    ]
    plan = Plan(scenario="bench", target=Target(what="bench"), created_from="0" * 64, steps=steps)
    specs = {
        s.id: StepSpec(id=s.id, host=s.host, action="check", needs=tuple(s.needs),
                       command=Command("true", shell="posix"))
        for s in steps
    }  # fmt: skip
    return plan, specs


def execute(
    journal: Journal,
    needs: dict[str, list[str]],
    parallel: int,
    factory: callable,  # type: ignore[valid-type]
    sync: str,
) -> tuple[str, float]:
    plan, specs = plan_and_specs(needs)
    opts = RunOptions(parallel=parallel, non_interactive=True, poll_seconds=0.2, journal_sync=sync)
    info = create_run(journal, plan, Path("bench.json"), "bench", opts)
    started = time.perf_counter()
    state = Runner(journal, info, specs, factory).run()
    assert state == "succeeded", state
    return info.id, time.perf_counter() - started


def chain(journal: Journal, n: int, factory: object, sync: str) -> tuple[float, float, float]:
    """(median ms between starts, mean ms per step, commits per step) of an n-step chain."""
    needs = {f"s{i}": ([f"s{i - 1}"] if i else []) for i in range(n)}
    commits = journal.commits
    run_id, elapsed = execute(journal, needs, 1, factory, sync)
    starts = [
        datetime.fromisoformat(r.at)
        for r in journal.records(run_id, kinds=["step"])
        if r.body["state"] == "running"
    ]
    gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(starts)]
    return statistics.median(gaps), elapsed / n * 1000, (journal.commits - commits) / n


def layered(n: int = 1000, width: int = WIDTH) -> dict[str, list[str]]:
    rng = random.Random(1)
    needs: dict[str, list[str]] = {}
    for i in range(n):
        layer = i // width
        needs[f"s{i}"] = [f"s{(layer - 1) * width + rng.randrange(width)}"] if layer else []
    return needs


def parallel(journal: Journal, sleep: float, sync: str, n: int = 1000) -> tuple[float, float]:
    recorder = Recorder(handler=lambda host, cmd: time.sleep(sleep) or Scripted())
    factory = lambda host: DryRunTransport(host, recorder)  # noqa: E731
    _, elapsed = execute(journal, layered(n), WIDTH, factory, sync)
    return elapsed, -(-n // WIDTH) * sleep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal-dir", type=Path, default=None)
    parser.add_argument("--journal-sync", choices=["full", "normal"], default="full")
    parser.add_argument("--sleeps", default="0.02,0.1", help="step sleeps in seconds")
    parser.add_argument("--local-steps", type=int, default=100)
    args = parser.parse_args()
    sync = args.journal_sync
    with tempfile.TemporaryDirectory(dir=args.journal_dir) as name:
        tmp = Path(name)
        print(f"journal in {tmp} (synchronous={sync}); fsync probe: "
              f"median {fsync_probe(tmp):.2f} ms")  # fmt: skip
        with Journal.open(tmp / "overhead.sqlite") as journal:
            dry: Transport = DryRunTransport("h", Recorder())
            med, mean, commits = chain(journal, 300, lambda h: dry, sync)
            print(f"overhead per step, dry-run chain of 300: median {med:.2f} ms, "
                  f"mean {mean:.2f} ms, {commits:.2f} commits per step")  # fmt: skip
            med, mean, commits = chain(journal, args.local_steps, lambda h: LocalTransport(), sync)
            print(f"local transport chain of {args.local_steps} (`true`): median {med:.2f} ms, "
                  f"mean {mean:.2f} ms, {commits:.2f} commits per step")  # fmt: skip
        for sleep in (float(s) for s in args.sleeps.split(",")):
            path = tmp / f"parallel-{sleep}.sqlite"
            with Journal.open(path) as journal:
                elapsed, bound = parallel(journal, sleep, sync)
                journal._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            excess = (elapsed / bound - 1) * 100
            what = f"1000 steps, width {WIDTH}, {sleep * 1000:g} ms each, --parallel {WIDTH}"
            print(f"{what}: {elapsed:.2f} s (critical-path bound {bound:.2f} s, +{excess:.1f} %)")
        print(f"journal size: {path.stat().st_size / 1000:.0f} bytes per step")


if __name__ == "__main__":
    main()
