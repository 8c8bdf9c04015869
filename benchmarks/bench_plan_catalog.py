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
PER_SERVER = 10
COLUMNS = [
    "run_id", "set", "host", "type", "start", "end", "kind", "name", "size", "stored_size",
    "storage_group", "database", "state", "log_required_first", "log_required_last",
    "log_prefix", "first_gen", "last_gen", "log_signature", "mounted",
]  # fmt: skip

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


def write_manifest(path: Path, databases: int, days: int) -> int:
    rows = 0
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for db in range(databases):
            rows += _database(out, db, days)
    return rows


def _database(out: Any, db: int, days: int) -> int:
    host, name = _server(db), f"DB{db:03d}"
    sg, prefix = f"{host}/{name}", f"E{db % PER_SERVER:02X}"
    gen, rows = 1, 0
    for hour in range(days * 24):
        at = START + timedelta(hours=hour)
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


def measured(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall seconds, peak RSS (MiB) and stdout of one fresh process."""
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
        return seconds, usage.ru_maxrss / 1024, out.read()


def repeat(label: str, argv: list[str], env: dict[str, str], times: int) -> bytes:
    runs = [measured(argv, env) for _ in range(times)]
    wall = statistics.median(r[0] for r in runs)
    rss = max(r[1] for r in runs)
    print(f"{label:<44} median {wall:6.3f} s wall  peak RSS {rss:6.0f} MiB  ({times} runs)")
    return runs[-1][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--databases", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--full-read-repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
        env["DR_WORKSPACE"] = str(root / "ws")
        dr = [sys.executable, "-m", "dr"]
        (root / "inventory.yaml").write_text(json.dumps(inventory(args.databases)))
        subprocess.run([*dr, "init", "--inventory", str(root / "inventory.yaml")],
                       env=env, check=True, capture_output=True)  # fmt: skip
        began = time.perf_counter()
        rows = write_manifest(root / "history.csv", args.databases, args.days)
        wrote = time.perf_counter() - began
        began = time.perf_counter()
        subprocess.run([*dr, "catalog", "import", str(root / "history.csv")],
                       env=env, check=True, capture_output=True)  # fmt: skip
        imported = time.perf_counter() - began
        print(f"catalog: {rows} artifacts; manifest written in {wrote:.1f} s, "
              f"`dr catalog import` {imported:.1f} s")  # fmt: skip
        db = f"DB{args.databases // 2:03d}"
        at = (START + timedelta(days=args.days // 2, hours=5, minutes=30)).isoformat()
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
