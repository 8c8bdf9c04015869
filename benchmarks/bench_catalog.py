"""Catalog benchmark: import, list one set, plan retention for everything.

Synthetic history: N databases (each its own log stream and set, Exchange 2016 style) x D
days of hourly log backups and a daily full (database + logs + checkpoint) — with the
defaults, 100 x 365 days ≈ 985 000 artifacts. The history is written as a CSV manifest and
imported through the same path as `dr catalog import` (all checks and Exchange rules on;
on two cores the rows are written by a child process, as `dr catalog import` does; set
DR_CATALOG_WRITER=inline to measure one process).

    .venv/bin/python benchmarks/bench_catalog.py [--databases 100] [--days 365]
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dr.catalog import Catalog, expiry
from dr.catalog.listing import listing
from dr.model.sets import BackupSet

START = datetime(2024, 1, 1, tzinfo=UTC)
COLUMNS = [
    "run_id",
    "set",
    "host",
    "type",
    "start",
    "end",
    "kind",
    "name",
    "size",
    "stored_size",
    "storage_group",
    "log_prefix",
    "first_gen",
    "last_gen",
]


def write_manifest(path: Path, databases: int, days: int) -> int:
    rows = 0
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for db in range(databases):
            rows += _database(out, db, days)
    return rows


def _database(out: csv.writer, db: int, days: int) -> int:  # type: ignore[valid-type]
    name, sg, gen, rows = f"db{db:03d}", f"SRV/DB{db:03d}", 1, 0
    for hour in range(days * 24):
        at = START + timedelta(hours=hour)
        kind = "full" if hour % 24 == 0 else "incremental"
        base = [
            f"{name}-{hour}",
            name,
            "SRV",
            kind,
            at.isoformat(),
            (at + timedelta(minutes=1)).isoformat(),
        ]
        logs = ["logs", "E00 logs", 40960, 9000, sg, "E00", gen, gen + 9]
        gen += 10
        if kind == "full":
            out.writerow([*base, "database", "db.edb", 50 * 2**30, 22 * 2**30, sg, "", "", ""])  # type: ignore[attr-defined]
            out.writerow([*base, "checkpoint", "E00.chk", 8192, 800, sg, "", "", ""])  # type: ignore[attr-defined]
            rows += 2
        out.writerow([*base, *logs])  # type: ignore[attr-defined]
        rows += 1
    return rows


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_peak_mib() -> float:
    """The largest peak of the finished child processes (a large import's writer)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process and of its finished child processes."""
    now = os.times()
    return now.user + now.system, now.children_user + now.children_system


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    """Wall and CPU time: the machine is shared, so CPU time shows what the code costs."""
    began, (own, workers) = time.perf_counter(), _cpu()
    result = fn()
    seconds, (own_now, workers_now) = time.perf_counter() - began, _cpu()
    cpu, worker = own_now - own, workers_now - workers
    extra = f" + {worker:6.2f} s CPU in child processes" if worker > 0.005 else ""
    child = f" (child {child_peak_mib():.0f} MiB)" if worker > 0.005 else ""
    print(
        f"{label:<28} {seconds:7.2f} s wall {cpu:7.2f} s CPU{extra}  "
        f"peak RSS {peak_mib():.0f} MiB{child}"
    )
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--databases", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "history.csv"
        count, _ = timed(
            "write manifest", lambda: write_manifest(manifest, args.databases, args.days)
        )
        cat = Catalog.open(Path(tmp) / "catalog.sqlite")
        for db in range(args.databases):
            cat.register_set(BackupSet(name=f"db{db:03d}", host="SRV", type="exchange"), at=START)
        os.sync()
        report, seconds = timed(
            "import (csv, rules on)", lambda: cat.import_file(manifest, None, "csv")
        )
        rate = report.artifacts_added / seconds
        print(f"  {report.artifacts_added} artifacts, {rate:,.0f} artifacts/s")
        rows, _ = timed(
            "list one set", lambda: listing(cat.conn, "db050" if args.databases > 50 else "db000")
        )
        print(f"  {len(rows)} versions listed")
        at = START + timedelta(days=args.days)
        plans, _ = timed("retention plan (all sets)", lambda: expiry.plan(cat, at))
        print(
            f"  {sum(len(p.decisions) for p in plans)} versions decided; {count} artifacts in all"
        )
        cat.close()


if __name__ == "__main__":
    main()
