"""`dr plan database` on a catalog of about a million artifacts, as a responder runs it.

    .venv/bin/python benchmarks/bench_plan_catalog.py [--databases 100] [--days 365] [--repeat 5]

Builds a workspace (``dr init``) whose inventory has N Exchange 2016 databases (10 per
server, each its own log stream and set) and imports D days of hourly log backups with a
daily full (database + checkpoint + logs) through ``dr catalog import`` (the CSV fast path):
with the defaults 100 x 365 days = 985 500 artifacts. Then it runs, each in a fresh process:

- ``python -c pass``: the interpreter's own start;
- ``dr plan database --db X --at T --json``: the plan as dr makes it now (CatalogFacts);
- the same plan made the earlier way, every run and artifact read into memory first
  (``catalog_facts``), in a process that imports what ``dr`` imports;

and prints each one's median wall time and peak RSS (from ``wait4``), and whether the two
plans are byte-identical (they must be).

``--depth-years 1,2,5,10`` then measures planning against one stream's depth: a workspace
per depth with one database and that many years of hourly log backups, and for each the
`dr plan` command's wall time and, in one process, the stream's read from the catalog and
the planner alone (median of ``--repeat``), for a target mid-history and for the point of
failure.

The processes run with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE`` is dropped
from their environment and one warm-up run writes the caches), as an installed `dr` runs:
with it off, every run compiles dr's modules again (about 0.13 s).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_planner import estate

START = datetime(2024, 1, 1, tzinfo=UTC)
DEPTH_START = datetime(2014, 1, 1, tzinfo=UTC)  # ten years of history end before now
PER_SERVER = 10
COLUMNS = [
    "run_id", "set", "host", "type", "start", "end", "kind", "name", "size", "stored_size",
    "storage_group", "database", "state", "log_required_first", "log_required_last",
    "log_prefix", "first_gen", "last_gen", "log_signature", "mounted",
]  # fmt: skip

#: In one process: the stream's read (CatalogFacts) and the planner alone, at one depth.
DEPTH = """
import statistics, sys, time
from dr.cli.plan import _step_facts
from dr.catalog import Catalog
from dr.model.load import workspace_inventory
from dr.planner import plan_database
from dr.planner.catalog_facts import CatalogFacts
from dr.planner.facts import parse_time
from dr.workspace import open_existing
ws = open_existing(sys.argv[1])
inv, steps, stream = workspace_inventory(ws), _step_facts(), sys.argv[2]
targets = {"mid": parse_time(sys.argv[4]), "latest": None}
with Catalog.open(ws.catalog_path) as catalog:
    reads, plans = [], {k: [] for k in targets}
    for _ in range(int(sys.argv[5])):  # CPU time: what the work costs on a shared machine
        provider = CatalogFacts(catalog, inv, (), steps)
        began = time.process_time()
        versions = provider.stream_backups(stream)
        reads.append(time.process_time() - began)
        for name, at in targets.items():
            began = time.process_time()
            plan_database(provider, [sys.argv[3]], at)
            plans[name].append(time.process_time() - began)
print(len(versions), statistics.median(reads), *(statistics.median(p) for p in plans.values()))
"""

#: The earlier `dr plan database`: the whole catalog read into memory, then the plan.
FULL_READ = """
import sys
from dr.cli.plan import _step_facts
from dr.catalog import Catalog
from dr.model.load import workspace_inventory
from dr.planner import plan_database
from dr.planner.catalog_facts import catalog_facts
from dr.planner.facts import parse_time
from dr.workspace import open_existing
ws = open_existing(sys.argv[1])
inv = workspace_inventory(ws)
with Catalog.open(ws.catalog_path) as catalog:
    facts = catalog_facts(catalog, inv, (), _step_facts())
plan = plan_database(facts, [sys.argv[2]], parse_time(sys.argv[3]))
sys.stdout.write(plan.canonical_json())
"""


def inventory(databases: int) -> dict[str, object]:
    """The planner benchmark's estate, with one Exchange set per database."""
    data = estate(databases).model_dump(mode="json", exclude_none=True)
    data["backup_sets"] = [
        {"name": _set(db), "host": _server(db), "type": "exchange", "covers": [f"DB{db:03d}"]}
        for db in range(databases)
    ]
    return data


def _server(db: int) -> str:
    return f"EX{db // PER_SERVER:02d}"


def _set(db: int) -> str:
    return f"db{db:03d}"


def write_manifest(path: Path, databases: int, days: int, start: datetime = START) -> int:
    rows = 0
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for db in range(databases):
            rows += _database(out, db, days, start)
    return rows


def _database(out: Any, db: int, days: int, start: datetime) -> int:
    host, name = _server(db), f"DB{db:03d}"
    sg, prefix = f"{host}/{name}", f"E{db % PER_SERVER:02X}"
    gen, rows = 1, 0
    for hour in range(days * 24):
        at = start + timedelta(hours=hour)
        kind = "full" if hour % 24 == 0 else "incremental"
        end = (at + timedelta(minutes=1)).isoformat()
        run = [f"{name}-{hour}", _set(db), host, kind, at.isoformat(), end]
        found = []
        if kind == "full":
            image = [f"{sg}/{name}", "Dirty Shutdown", gen, gen + 9, "", "", "", ""]
            found.append(["database", f"{name}.edb", 50 * 2**30, 22 * 2**30, sg, *image])
            found.append(["checkpoint", f"{prefix}.chk", 8192, 800, sg, *[""] * 8])
        logs = ["", "", "", "", prefix, gen, gen + 9, "sig"]
        found.append(["logs", f"{prefix} logs", 40960, 9000, sg, *logs])
        for artifact in found:
            out.writerow([*run, *artifact, "true"])
        gen += 10
        rows += len(found)
    return rows


def measured(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes, float]:
    """Wall seconds, peak RSS (MiB), stdout and CPU seconds (user + system) of one fresh
    process: on a shared machine the CPU time is what the command costs."""
    with tempfile.TemporaryFile() as out:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read() if proc.stderr else b""
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode()}")
        out.seek(0)
        return seconds, usage.ru_maxrss / 1024, out.read(), usage.ru_utime + usage.ru_stime


def repeat(label: str, argv: list[str], env: dict[str, str], times: int) -> bytes:
    runs = [measured(argv, env) for _ in range(times)]
    wall = statistics.median(r[0] for r in runs)
    rss = max(r[1] for r in runs)
    cpu = statistics.median(r[3] for r in runs)
    print(f"{label:<44} median {wall:6.3f} s wall {cpu:6.3f} s CPU  peak RSS {rss:6.0f} MiB  "
          f"({times} runs)")  # fmt: skip
    return runs[-1][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--databases", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--full-read-repeat", type=int, default=1)
    parser.add_argument("--depth-years", default="", help="e.g. 1,2,5,10 (one stream each)")
    parser.add_argument("--skip-estate", action="store_true", help="only the depth sweep")
    args = parser.parse_args()
    if not args.skip_estate:
        estate_run(args)
    if args.depth_years:
        depth_sweep([int(y) for y in args.depth_years.split(",")], args.repeat)


def _env(workspace: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["DR_WORKSPACE"] = str(workspace)
    return env


def build(
    root: Path, databases: int, days: int, start: datetime = START
) -> tuple[dict[str, str], int, float, float]:
    """A workspace of ``databases`` sets with ``days`` of history imported."""
    env = _env(root / "ws")
    dr = [sys.executable, "-m", "dr"]
    (root / "inventory.yaml").write_text(json.dumps(inventory(databases)))
    subprocess.run([*dr, "init", "--inventory", str(root / "inventory.yaml")],
                   env=env, check=True, capture_output=True)  # fmt: skip
    began = time.perf_counter()
    rows = write_manifest(root / "history.csv", databases, days, start)
    wrote = time.perf_counter() - began
    began = time.perf_counter()
    subprocess.run([*dr, "catalog", "import", str(root / "history.csv")],
                   env=env, check=True, capture_output=True)  # fmt: skip
    (root / "history.csv").unlink()
    return env, rows, wrote, time.perf_counter() - began


def depth_sweep(years: list[int], times: int) -> None:
    print("\nplanning against one stream's depth (one database, hourly logs, daily full):")
    print(f"{'years':>5} {'versions':>8} {'read':>8} {'plan mid':>9} {'plan latest':>11} "
          f"{'dr plan wall':>12}")  # fmt: skip
    for n in years:
        with tempfile.TemporaryDirectory() as tmp:
            env, _, _, _ = build(Path(tmp), 1, 365 * n, DEPTH_START)
            at = (DEPTH_START + timedelta(days=365 * n // 2, hours=5, minutes=30)).isoformat()
            argv = [sys.executable, "-c", DEPTH, env["DR_WORKSPACE"], "EX00/DB000", "DB000", at,
                    str(times)]  # fmt: skip
            out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
            count, read, mid, latest = out.stdout.split()
            plan = [sys.executable, "-m", "dr", "plan", "database", "--db", "DB000", "--at", at,
                    "--json"]  # fmt: skip
            measured(plan, env)  # warm-up: bytecode caches
            runs = [measured(plan, env) for _ in range(times)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[3] for r in runs)
            print(f"{n:>5} {count:>8} {float(read) * 1000:>6.1f}ms {float(mid) * 1000:>7.1f}ms "
                  f"{float(latest) * 1000:>9.1f}ms {wall:>10.3f} s  ({cpu:.3f} s CPU)")  # fmt: skip


def estate_run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dr = [sys.executable, "-m", "dr"]
        env, rows, wrote, imported = build(root, args.databases, args.days)
        print(f"catalog: {rows} artifacts; manifest written in {wrote:.1f} s, "
              f"`dr catalog import` {imported:.1f} s")  # fmt: skip
        db = f"DB{args.databases // 2:03d}"
        at = (START + timedelta(days=args.days // 2, hours=5, minutes=30)).isoformat()
        measured([*dr, "plan", "database", "--db", db, "--at", at, "--json"], env)  # warm-up
        repeat("interpreter start (python -c pass)", [sys.executable, "-c", "pass"], env,
               args.repeat)  # fmt: skip
        repeat("dr --help (the CLI's imports)", [*dr, "--help"], env, args.repeat)
        lazy = repeat(f"dr plan database --db {db} --at {at[:16]}",
                      [*dr, "plan", "database", "--db", db, "--at", at, "--json"], env,
                      args.repeat)  # fmt: skip
        full = repeat("the same plan from the full read (before)",
                      [sys.executable, "-c", FULL_READ, str(root / "ws"), db, at], env,
                      args.full_read_repeat)  # fmt: skip
        same = json.loads(lazy) == json.loads(full)
        print(f"plans identical: {same}")
        if not same:
            raise SystemExit("the two plans differ")


if __name__ == "__main__":
    main()
