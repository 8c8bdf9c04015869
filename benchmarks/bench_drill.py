"""Drill benchmark: `dr drill due` and `dr report audit` on 500 databases x 2 years of drills.

    .venv/bin/python benchmarks/bench_drill.py [--databases 500] [--years 2] [--repeat 3]

Builds a workspace (`dr init` with a synthetic estate: 50 Exchange 2016 servers of ten
databases, a recovery forest, a six-month drill policy) and a drill history in which every
database is drilled once a quarter, about one drill in ten failing, each record with the
steps and checks a real drill writes. Then times the commands a user runs, through the CLI
in a fresh process each time (start-up included), and prints the median and the peak memory
of the child. Targets (issue C2/C4): `dr drill due` < 2 s, `dr report audit` < 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_planner import estate

from dr.drill import history
from dr.drill.history import DrillCheck, DrillRecord, DrillStep

AT = datetime(2026, 12, 1, tzinfo=UTC)
KINDS = ["verify-recovery-forest", "check-backup-chain", "fetch-artifacts", "allow-file-restore",
         "prepare-temp-folder", "restore-database-backup", "restore-log-backup",
         "verify-log-sequence", "soft-recovery", "verify-database-header", "mount-database",
         "verify-mount", "verify-item-counts", "verify-mailbox-sample",
         "cleanup-recovery-forest"]  # fmt: skip


def inventory(databases: int) -> dict:  # type: ignore[type-arg]
    inv = estate(databases).model_dump(mode="json", exclude_none=True)
    groups = inv["organization"]["administrative_groups"]
    server = {"name": "RX2016", "windows_version": "2016", "exchange_version": 2016,
              "administrative_group": groups[0]["name"], "storage_groups": []}  # fmt: skip
    inv["recovery_forests"] = [{
        "name": "recovery.example.com", "organization": inv["organization"]["name"],
        "domain": "recovery.example.com", "isolated": True, "administrative_groups": groups,
        "servers": [server],
    }]  # fmt: skip
    inv["drills"] = {"period": "182d", "forest": "recovery.example.com"}
    return inv


def records(keys: list[str], years: int, seed: int = 7) -> list[DrillRecord]:
    rnd = random.Random(seed)
    found = []
    start = AT - timedelta(days=365 * years)
    for n, key in enumerate(keys):
        at = start + timedelta(days=rnd.uniform(0, 90))
        while at < AT:
            failed = rnd.random() < 0.1
            t0 = at - timedelta(minutes=50)
            steps = [DrillStep(id=f"{k}.RX2016.{n}", title=k, state="succeeded",
                               started=t0 + timedelta(minutes=i * 3),
                               ended=t0 + timedelta(minutes=i * 3 + 2))
                     for i, k in enumerate(KINDS)]  # fmt: skip
            found.append(DrillRecord(
                drill_id=f"drill-{at:%Y%m%dT%H%M%SZ}-{key.replace('/', '-')}", kind="database",
                database=key, target="recovery.example.com/RX2016", started_at=t0, ended_at=at,
                verdict="failed" if failed else "passed",
                failure="Item counts: Mismatches: 1" if failed else None,
                run_id=f"{n:04x}{len(found):04x}", plan_digest="0" * 64,
                rto_seconds=3000.0, rto_target_seconds=14400, rpo_seconds=7200.0,
                rpo_target_seconds=3600, sample_seed=f"{key}|{at.isoformat()}",
                checks=[DrillCheck(name=k, passed=not failed, detail="Mismatches: 0")
                        for k in KINDS[9:14]],
                steps=steps, backup_runs=[f"run-{n * 10 + 1}", f"run-{n * 10 + 2}"],
            ))  # fmt: skip
            at += timedelta(days=rnd.uniform(80, 100))
    found.sort(key=lambda r: r.ended_at)
    return found


def timed(args: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median wall time of the command (a fresh process each time) and its peak RSS (MiB)."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "dr", *args], env=env, capture_output=True,
                             text=True, check=False)  # fmt: skip
        times.append(time.perf_counter() - began)
        if out.returncode != 0:
            raise SystemExit(f"dr {' '.join(args)} exited {out.returncode}: {out.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return statistics.median(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", type=int, default=500)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "estate.yaml").write_text(yaml.safe_dump(inventory(opts.databases)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
        env["DR_WORKSPACE"] = str(root / "ws")
        init = [sys.executable, "-m", "dr", "init", "--inventory", str(root / "estate.yaml")]
        subprocess.run(init, env=env, check=True, capture_output=True)
        keys = [f"EX{i // 10:02d}/DB{i:03d}/DB{i:03d}" for i in range(opts.databases)]
        made = records(keys, opts.years)
        lines = "".join(r.model_dump_json() + "\n" for r in made)
        (root / "ws" / "drills").mkdir(exist_ok=True)
        (root / "ws" / history.HISTORY_FILE).write_text(lines, encoding="utf-8")
        at = AT.isoformat()
        due, due_mem = timed(["drill", "due", "--at", at, "--json"], env, opts.repeat)
        report, rep_mem = timed(["report", "audit", "--at", at, "-o", str(root / "a.html")],
                                env, opts.repeat)  # fmt: skip
        size = (root / "a.html").stat().st_size
        print(json.dumps({
            "databases": opts.databases, "drill_records": len(made),
            "history_bytes": len(lines),
            "drill_due_seconds": round(due, 2), "report_audit_seconds": round(report, 2),
            "report_bytes": size, "peak_rss_mib_children": round(max(due_mem, rep_mem)),
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
