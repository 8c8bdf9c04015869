"""dr's artifact store beside restic and borg: same data, same rounds, one run.

Workloads (see _store_workloads.py): a database of 8 KiB pages changed in place (1 % random
rounds, 1 % clustered rounds, a 60 % round, a 100-byte insertion), a shifting container,
many small files, and incompressible random data. Every tool backs up every round; then the
first, middle, deepest and last versions are restored and compared by SHA-256 with the
source, and the repositories are verified by reading all their data. The report opens with
the issue's targets as dr ÷ reference ratios with PASS / FAIL marks, then the tables.

    .venv/bin/python benchmarks/bench_store.py --out benchmarks/RESULTS-store.md
    .venv/bin/python benchmarks/bench_store.py --quick                  # a smoke run, minutes
    .venv/bin/python benchmarks/bench_store.py --only db --rounds 4 --tools dr,borg-fixed

restic and borg are not dependencies of dr: install them to compare
(``apt-get install -y restic borgbackup time``), or pass ``--tools dr``.
Exit status: 0 when every restore matched and every verify passed; 1 when a restore
returned wrong data, a verify found damage or a tool failed; 2 for bad options or a missing
tool. ``--json FILE`` keeps the raw measurements; ``--render FILE --notes NOTES.md`` re-renders
a report from them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _store_report as report
import _store_tools as tools
import _store_workloads as workloads

FULL = {"size_mib": 300, "random_mib": 1024, "files": 20000, "rounds": 6}
QUICK = {"size_mib": 8, "random_mib": 16, "files": 300, "rounds": 2}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Benchmark dr's artifact store beside restic and borg on the same data.",
        epilog="Example: bench_store.py --only db --rounds 4 --out /tmp/store.md",
    )
    ap.add_argument("--size-mib", type=int, help="database and container size (default 300)")
    ap.add_argument("--random-mib", type=int, help="incompressible data size (default 1024)")
    ap.add_argument("--files", type=int, help="number of small files (default 20000)")
    ap.add_argument(
        "--rounds",
        type=int,
        help="change rounds per workload (default 6; db: this many 1 %% random rounds and "
        "half as many clustered ones)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run ("
        + ", ".join(f"{k}={v}" for k, v in QUICK.items())
        + "); explicit options still win",
    )
    ap.add_argument(
        "--only",
        action="append",
        choices=workloads.WORKLOADS,
        metavar="WORKLOAD",
        help="run only this workload (repeatable): " + ", ".join(workloads.WORKLOADS),
    )
    ap.add_argument(
        "--tools",
        default=",".join(tools.TOOLS),
        help="comma-separated tools to run (default: all of %(default)s)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="write the Markdown report here (default: print it)")
    ap.add_argument("--json", dest="json_out", help="also write the raw measurements as JSON")
    ap.add_argument("--work-dir", help="parent of the temporary work dir (default: $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep data and repositories")
    ap.add_argument(
        "--render",
        metavar="JSON",
        help="only re-render the report from measurements saved with --json (no run)",
    )
    ap.add_argument(
        "--notes",
        metavar="MARKDOWN",
        help="a Markdown file of observations to include under 'Notes on this run'",
    )
    ap.add_argument(
        "--no-snapshot",
        action="store_true",
        help="run the installed dr instead of a copy of its source taken at the start",
    )
    a = ap.parse_args(argv)
    for key, value in (QUICK if a.quick else FULL).items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    a.tool_list = [t.strip() for t in a.tools.split(",") if t.strip()]
    unknown = [t for t in a.tool_list if t not in tools.TOOLS]
    if unknown or not a.tool_list:
        ap.error(
            f"--tools: unknown {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(tools.TOOLS)}"
        )
    if min(a.size_mib, a.random_mib, a.files, a.rounds) < 1:
        ap.error("--size-mib, --random-mib, --files and --rounds must be at least 1")
    return a


def rerun_command(argv: list[str]) -> str:
    return shlex.join([".venv/bin/python", "benchmarks/bench_store.py", *argv])


# ----------------------------------------------------------------------- workloads


def build_workload(name: str, base: Path, a: argparse.Namespace) -> workloads.Workload:
    makers: dict[str, Callable[[], workloads.Workload]] = {
        "db": lambda: workloads.db_workload(base, a.size_mib, a.rounds, a.seed),
        "container": lambda: workloads.container_workload(base, a.size_mib, a.rounds, a.seed),
        "files": lambda: workloads.files_workload(base, a.files, a.rounds, a.seed),
        "random": lambda: workloads.random_workload(base, a.random_mib, a.seed),
    }
    return makers[name]()


def restore_plan(wl: workloads.Workload) -> list[tuple[int, str]]:
    """(round, which) to restore: the first, middle and last versions, and the deepest one.

    "deepest" is the last small change before a bulk rewrite or an insertion, the version
    at the end of the longest chain of incrementals: restoring it must not be slower than
    restoring the first.
    """
    last = len(wl.rounds)
    small = [i + 1 for i, r in enumerate(wl.rounds) if r.kind in report.INCREMENTAL_KINDS]
    picks = {0: "first", last: "last"}
    if small and small[-1] not in picks:
        picks[small[-1]] = "deepest"
    free = [r for r in range(1, last) if r not in picks]
    if free:
        picks[min(free, key=lambda r: abs(r - last // 2))] = "middle"
    return sorted(picks.items())


# ------------------------------------------------------------------------- running


class WorkloadRun:
    """All tools through one workload: rounds, restores, verification."""

    def __init__(self, wl: workloads.Workload, chosen: list[tools.Tool]) -> None:
        self.wl = wl
        self.tools = chosen
        self.digests: dict[int, str] = {}
        self.backups: list[dict[str, Any]] = []
        self.restores: list[dict[str, Any]] = []
        self.verify: dict[str, dict[str, Any]] = {}

    def run(self, work: Path) -> dict[str, Any]:
        repo_desc = {t.name: t.init() for t in self.tools}
        self.backup_round(0, "full", "full")
        for i, change in enumerate(self.wl.rounds, start=1):
            change.apply()
            self.backup_round(i, change.label, change.kind)
        for rnd, which in restore_plan(self.wl):
            for tool in self.tools:
                self.restore(tool, rnd, which, work / "restore")
        for tool in self.tools:
            self.verify_repo(tool)
        return self.result(repo_desc)

    def backup_round(self, rnd: int, label: str, kind: str) -> None:
        self.digests[rnd] = self.wl.digest()
        for tool in self.tools:
            before = tools.du_bytes(tool.repo)
            m = tool.backup(rnd, self.wl.root)
            after = tools.du_bytes(tool.repo)
            self.backups.append(
                {
                    "tool": tool.name,
                    "round": rnd,
                    "label": label,
                    "kind": kind,
                    **tools.describe(m),
                    "added": after - before,
                    "reported": tool.reported.get(rnd),
                    "total": after,
                }
            )
            log(
                f"{self.wl.name} round {rnd:2d} {tool.name:10s} wall {m.wall:6.2f}s "
                f"cpu {m.cpu:6.2f}s added {(after - before) / workloads.MIB:8.2f} MiB"
            )

    def restore(self, tool: tools.Tool, rnd: int, which: str, parent: Path) -> None:
        """Restore one version into an empty directory and compare it with the source."""
        target = parent / f"{self.wl.name}-{tool.name}-{rnd}"
        target.mkdir(parents=True)
        try:
            m: tools.Measured | None = tool.restore(rnd, target)
            root = tool.restored_root(target, self.wl.root)
            got = workloads.tree_digest(root) if root.is_dir() else "(nothing restored)"
        except tools.ToolFailed as exc:
            m, root, got = None, target, f"(restore failed: {str(exc).splitlines()[0]})"
        ok = got == self.digests[rnd]
        self.restores.append(
            {
                "tool": tool.name,
                "round": rnd,
                "which": which,
                **tools.describe(m),
                "ok": ok,
                "expected": self.digests[rnd],
                "got": got,
                "size": workloads.total_size(root) if ok else 0,
            }
        )
        log(
            f"{self.wl.name} restore {tool.name:10s} round {rnd:2d} "
            + ("SHA-256 ok" if ok else f"FAIL: RESTORED DATA DOES NOT MATCH {got}")
        )
        shutil.rmtree(target)

    def verify_repo(self, tool: tools.Tool) -> None:
        """Read the whole repository back; a tool that reports damage is a FAIL, not a crash."""
        problem = None
        try:
            m: tools.Measured | None = tool.verify()
        except tools.ToolFailed as exc:
            m, problem = None, str(exc).splitlines()[0]
        self.verify[tool.name] = {
            **tools.describe(m),
            "command": tool.verify_command,
            "repo_size": tools.du_bytes(tool.repo),
            "problem": problem,
        }
        log(f"{self.wl.name} verify {tool.name:10s} " + (f"FAIL: {problem}" if problem else "ok"))

    def result(self, repo_desc: dict[str, str]) -> dict[str, Any]:
        return {
            "description": self.wl.description,
            "size": self.wl.size,
            "tools": [t.name for t in self.tools],
            "repo_desc": repo_desc,
            "digests": self.digests,
            "backups": self.backups,
            "restores": self.restores,
            "verify": self.verify,
        }


def run_all(a: argparse.Namespace, work: Path, argv: list[str]) -> dict[str, Any]:
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    env = tools.tool_env(work)
    results: dict[str, Any] = {"workloads": {}, "repo_desc": {}, "dr_source": "installed dr"}
    if "dr" in a.tool_list and not a.no_snapshot:
        results["dr_source"] = tools.snapshot_dr(work, env)
        log(f"dr: {results['dr_source']}")
    for name in a.only or workloads.WORKLOADS:
        t0 = time.perf_counter()
        wl = build_workload(name, work / "data", a)
        log(
            f"generated {name}: {wl.size / workloads.MIB:.1f} MiB in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        chosen = [tools.TOOLS[t](work, name, env) for t in a.tool_list]
        results["workloads"][name] = WorkloadRun(wl, chosen).run(work)
        results["repo_desc"].update(results["workloads"][name]["repo_desc"])
        if not a.keep:
            shutil.rmtree(work / "data" / name)
            shutil.rmtree(work / "repos" / name)
    results.update(
        {
            "command": rerun_command(argv),
            "machine": machine_info(work, load_start),
            "versions": {t: tools.TOOLS[t].version(env) for t in a.tool_list},
            "runtime": time.perf_counter() - start,
            "when": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        }
    )
    return results


# ------------------------------------------------------------------------- machine


def _first_line(path: str, prefix: str) -> str:
    try:
        with open(path) as fh:
            return next((ln for ln in fh if ln.startswith(prefix)), "")
    except OSError:
        return ""


def machine_info(work: Path, load_start: float) -> dict[str, Any]:
    cpu = _first_line("/proc/cpuinfo", "model name").split(":", 1)[-1].strip() or "unknown"
    flags = _first_line("/proc/cpuinfo", "flags").split()
    mem = _first_line("/proc/meminfo", "MemTotal").split()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "aes": "yes" if "aes" in flags else "no",
        "sha_ni": "yes" if "sha_ni" in flags else "no",
        "mem": f"{int(mem[1]) / (1 << 20):.1f} GiB" if len(mem) > 1 else "unknown",
        "os": tools.capture(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "kernel": platform.release(),
        "fs": tools.capture(["findmnt", "-n", "-o", "FSTYPE", "-T", str(work)]),
        "python": platform.python_version(),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
    }


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)
    if a.render:
        return write_outputs(a, json.loads(Path(a.render).read_text(encoding="utf-8")))
    missing = tools.missing_programs(a.tool_list)
    if missing:
        for line in missing:
            print(f"bench_store: {line} (or leave it out with --tools)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="dr-store-bench-", dir=a.work_dir))
    log(f"work dir {work}")
    try:
        results = run_all(a, work, argv)
    except tools.ToolFailed as exc:
        print(f"bench_store: FAIL: {exc}", file=sys.stderr)
        return 1
    finally:
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return write_outputs(a, results)


def write_outputs(a: argparse.Namespace, results: dict[str, Any]) -> int:
    """Write the report (and the raw JSON); 1 when any restore or verify failed."""
    if a.notes:
        results["notes"] = Path(a.notes).read_text(encoding="utf-8").strip()
    text = report.render(results)
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
        log(f"wrote {a.out}")
    else:
        print(text)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    failures = report.failures(results)
    for line in failures:
        print(f"bench_store: FAIL: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
