"""The lab and the demo, timed as a user runs them (the CLI, fresh directories each time).

    .venv/bin/python benchmarks/bench_lab.py [--repeat 3] [--days 1,7]

1. ``dr lab up --days D`` for each D: the lab, its mail and every backup through dr's own
   backup path over WinRM (seconds, and seconds per simulated day).
2. ``dr demo`` (a week; the README's first command): seconds from start to the proof.
3. One restore of the demo's plan: ``dr run start`` against ``dr lab serve`` (seconds), and
   the check that it equals the truth (``dr lab verify``) — a run that is not equal fails
   the benchmark rather than giving a time.

Each figure is the median of ``--repeat`` runs; the machine's load average is printed with
it, since two cores shared with another job change the figures more than anything here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env.update({"DR_WORKSPACE": str(root / "ws"), "DR_KEY_DIR": str(root / "keys"),
                "DR_PASSPHRASE": "benchmark passphrase", "COLUMNS": "120"})  # fmt: skip
    return env


def _dr(env: dict[str, str], *args: str, cwd: Path | None = None) -> float:
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "dr", *args], env=env, cwd=cwd,
                         capture_output=True, text=True, check=False)  # fmt: skip
    elapsed = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"dr {' '.join(args)} exited {out.returncode}:\n{out.stderr[-2000:]}")
    return elapsed


def lab_up(days: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(Path(tmp))
        inventory = str(ROOT / "examples" / "estate.yaml")
        return _dr(env, "lab", "up", "--days", str(days), "--inventory", inventory)


def demo() -> tuple[float, float]:
    """The demo's wall time, and the restore's alone (from the demo's own report)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "dr", "demo", "--dir", f"{tmp}/demo"],
                             env=env, capture_output=True, text=True, check=False)  # fmt: skip
        elapsed = time.monotonic() - started
        if out.returncode != 0 or "equal (" not in out.stdout:
            raise SystemExit(f"dr demo failed or did not prove the restore:\n{out.stdout[-2000:]}")
        run = next(line for line in out.stdout.splitlines() if "the lab run took" in line)
        seconds = float(run.split("the lab run took")[1].split("s")[0])
        return elapsed, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--days", default="1,7")
    args = parser.parse_args()
    report: dict[str, object] = {"load_average": os.getloadavg()}
    for days in (int(d) for d in args.days.split(",")):
        times = [lab_up(days) for _ in range(args.repeat)]
        report[f"lab_up_{days}d_s"] = round(statistics.median(times), 1)
        report[f"lab_up_{days}d_s_per_day"] = round(statistics.median(times) / days, 1)
    demos = [demo() for _ in range(args.repeat)]
    report["demo_s"] = round(statistics.median(d[0] for d in demos), 1)
    report["demo_restore_run_s"] = round(statistics.median(d[1] for d in demos), 1)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
