"""Retention planning at scale: 900 000 versions in 100 chains (plain script).

Each chain is a stream backed up every 10 minutes for about 62 days: a full each week,
a differential each day, incrementals in between — the shape the log-file schedule of
seeds/000 §3.3 produces. Prints the time to build the input and to plan retention.

    .venv/bin/python benchmarks/retention_bench.py [versions] [chains]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from dr.model.sets import RetentionPolicy
from dr.retention import Version, plan_retention

STEP = timedelta(minutes=10)
PER_DAY = 144


def chain_versions(chain: str, count: int, end: datetime) -> list[Version]:
    versions: list[Version] = []
    start = end - STEP * count
    full = prev = ""
    for i in range(count):
        vid = f"{chain}:{i}"
        if i % (PER_DAY * 7) == 0:
            kind, needs, full = "full", (), vid
        elif i % PER_DAY == 0:
            kind, needs = "differential", (full,)
        else:
            kind, needs = "incremental", (prev,)
        if kind != "differential":
            prev = vid
        versions.append(Version(vid, chain, kind, start + STEP * i, needs))  # type: ignore[arg-type]
    return versions


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 900_000
    chains = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    now = datetime(2026, 6, 1, tzinfo=UTC)
    began = time.perf_counter()
    versions = [v for c in range(chains) for v in chain_versions(f"c{c}", total // chains, now)]
    built = time.perf_counter()
    cpu = time.process_time()
    decisions = plan_retention(versions, RetentionPolicy(keep_days=14, keep_weekly_days=60), now)
    planned = time.perf_counter()
    cpu = time.process_time() - cpu
    kept = sum(d.keep for d in decisions)
    print(f"versions: {len(versions)}  chains: {chains}  kept: {kept}")
    print(f"build input: {built - began:.2f} s")
    print(f"plan_retention: {planned - built:.2f} s wall, {cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
