"""Turn the store benchmark's measurements into target verdicts and a Markdown report.

Pure functions over the results dictionary that ``bench_store.py`` fills; no I/O here, so
the verdict rules can be read (and tested) on their own.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

MIB = 1 << 20
MB = 1_000_000
FLAT_LIMIT = 1.10  # restore of the deepest version within 10 % of the first (research §5.9)
INCREMENTAL_KINDS = ("random", "clustered", "shift", "files")


@dataclass
class Verdict:
    """One target from the issue, evaluated on this run's figures."""

    target: str
    workload: str
    dr: float | None
    reference: float | None
    reference_name: str
    limit: float  # the ratio dr / reference must stay under (or over, if ``at_least``)
    unit: str
    at_least: bool = False
    cpu_ratio: float | None = None  # the same comparison on CPU time, for loaded machines

    @property
    def ratio(self) -> float | None:
        if self.dr is None or not self.reference:
            return None
        return self.dr / self.reference

    @property
    def status(self) -> str:
        if self.ratio is None:
            return "n/a"
        ok = self.ratio >= self.limit if self.at_least else self.ratio <= self.limit
        return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------- extraction


def backups(wl: dict[str, Any], tool: str, kinds: tuple[str, ...] | None = None) -> list[dict]:
    return [b for b in wl["backups"] if b["tool"] == tool and (kinds is None or b["kind"] in kinds)]


def median_of(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def full_throughput(wl: dict[str, Any], tool: str) -> float | None:
    """MB/s of the first (full) backup: source bytes / wall time."""
    rows = backups(wl, tool, ("full",))
    return wl["size"] / rows[0]["wall"] / MB if rows else None


def restore_rows(wl: dict[str, Any], tool: str) -> list[dict]:
    return [r for r in wl["restores"] if r["tool"] == tool]


def repo_total(wl: dict[str, Any], tool: str) -> int | None:
    rows = backups(wl, tool)
    return rows[-1]["total"] if rows else None


def total_wall(wl: dict[str, Any], tool: str, key: str = "wall") -> float | None:
    rows = backups(wl, tool)
    return sum(r[key] for r in rows) if rows else None


def better_of(wl: dict[str, Any], value: Any, tools: tuple[str, ...]) -> tuple[str, float | None]:
    """The lower of ``value(wl, tool)`` over the tools that ran: (name, value)."""
    found = [(t, value(wl, t)) for t in tools if t in wl["tools"]]
    found = [(t, v) for t, v in found if v is not None]
    return min(found, key=lambda x: x[1]) if found else ("-", None)


# ------------------------------------------------------------------------ verdicts


def verdicts(results: dict[str, Any]) -> list[Verdict]:
    wls = results["workloads"]
    out: list[Verdict] = []
    if "db" in wls:
        out += db_verdicts(wls["db"])
    for name in ("db", "random", "container", "files"):
        if name in wls:
            out += pipeline_verdicts(name, wls[name])
    for name in ("container", "files"):
        if name in wls:
            out += shifting_verdicts(name, wls[name])
    return out


def _median(wl: dict[str, Any], tool: str, kinds: tuple[str, ...], key: str) -> float | None:
    return median_of(backups(wl, tool, kinds), key) if tool in wl["tools"] else None


def db_verdicts(wl: dict[str, Any]) -> list[Verdict]:
    """The in-place database targets: bytes and time per 1 % round, flat restores."""
    pair = ("dr", "borg-fixed")
    added = [_median(wl, t, ("random",), "added") for t in pair]
    clustered = [_median(wl, t, ("clustered",), "added") for t in pair]
    walls = [_median(wl, t, ("random",), "wall") for t in pair]
    cpu = _ratio(*[_median(wl, t, ("random",), "cpu") for t in pair])
    found = [
        Verdict("bytes added per 1 % round", "db", *added, "borg-fixed", 0.4, "MiB"),
        # not an issue target: with contiguous changes fixed 64 KiB blocks waste nothing, so
        # the check is "no worse than borg-fixed" (the per-version block map shows here)
        Verdict(
            "bytes per 1 % clustered round (extra)", "db", *clustered, "borg-fixed", 1.0, "MiB"
        ),
        Verdict("incremental wall per 1 % round", "db", *walls, "borg-fixed", 1.0, "s", False, cpu),
        Verdict("incremental wall (stretch)", "db", *walls, "borg-fixed", 0.5, "s", False, cpu),
    ]
    flat = _flat_verdict(wl)
    return found + ([flat] if flat else [])


def _flat_verdict(wl: dict[str, Any]) -> Verdict | None:
    """Restoring the end of the longest incremental chain costs what restoring the full does."""
    rows = {r["which"]: r for r in restore_rows(wl, "dr")}
    if "first" not in rows or "deepest" not in rows:
        return None
    first, deepest = rows["first"], rows["deepest"]
    return Verdict(
        f"restore flat in chain depth (version {deepest['round']} vs version 0)",
        "db",
        deepest["wall"],
        first["wall"],
        "dr itself",
        FLAT_LIMIT,
        "s",
        cpu_ratio=_ratio(deepest["cpu"], first["cpu"]),
    )


def pipeline_verdicts(name: str, wl: dict[str, Any]) -> list[Verdict]:
    """Full-backup throughput, restore time and verify time against restic."""
    out = []
    if name in ("db", "random"):
        tp = [full_throughput(wl, t) if t in wl["tools"] else None for t in ("dr", "restic")]
        out.append(
            Verdict("full backup throughput", name, *tp, "restic", 1.0, "MB/s", at_least=True)
        )
    rs = [_restore_median(wl, t, "wall") for t in ("dr", "restic")]
    rc = [_restore_median(wl, t, "cpu") for t in ("dr", "restic")]
    out.append(
        Verdict(
            "restore time (median of restored versions)",
            name,
            *rs,
            "restic",
            1.0,
            "s",
            cpu_ratio=_ratio(*rc),
        )
    )
    vw = [_verify(wl, t, "wall") for t in ("dr", "restic")]
    vc = [_verify(wl, t, "cpu") for t in ("dr", "restic")]
    out.append(
        Verdict(
            "verify --read-data vs check --read-data",
            name,
            *vw,
            "restic",
            1.0,
            "s",
            cpu_ratio=_ratio(*vc),
        )
    )
    return out


def shifting_verdicts(name: str, wl: dict[str, Any]) -> list[Verdict]:
    """Shifting content and small files: within 1.2x of the better of restic and borg."""
    pair = ("restic", "borg")
    ref_b, bytes_ = better_of(wl, repo_total, pair)
    ref_t, wall = better_of(wl, total_wall, pair)
    dr_cpu = total_wall(wl, "dr", "cpu") if "dr" in wl["tools"] else None
    ref_cpu = total_wall(wl, ref_t, "cpu") if ref_t in wl["tools"] else None
    dr_b = repo_total(wl, "dr") if "dr" in wl["tools"] else None
    dr_t = total_wall(wl, "dr") if "dr" in wl["tools"] else None
    return [
        Verdict("repository size after all rounds", name, dr_b, bytes_, ref_b, 1.2, "MiB"),
        Verdict(
            "backup wall, all rounds",
            name,
            dr_t,
            wall,
            ref_t,
            1.2,
            "s",
            cpu_ratio=_ratio(dr_cpu, ref_cpu),
        ),
    ]


def _restore_median(wl: dict[str, Any], tool: str, key: str) -> float | None:
    return median_of(restore_rows(wl, tool), key) if tool in wl["tools"] else None


def _verify(wl: dict[str, Any], tool: str, key: str) -> float | None:
    v = wl["verify"].get(tool)
    return v[key] if v else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# -------------------------------------------------------------------------- report


def _f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / MIB:.2f}"


def _shown(v: Verdict, value: float | None) -> str:
    return _mib(value) if v.unit == "MiB" else _f(value)


def failures(results: dict[str, Any]) -> list[str]:
    """Every restore that returned wrong data (or none) and every verify that found damage."""
    found = [
        f"{name}: {r['tool']} restored version {r['round']} WRONG "
        f"(expected {r['expected'][:16]}…, got {r['got'][:60]})"
        for name, wl in results["workloads"].items()
        for r in wl["restores"]
        if not r["ok"]
    ]
    found += [
        f"{name}: `{v['command']}` failed: {v['problem']}"
        for name, wl in results["workloads"].items()
        for v in wl["verify"].values()
        if v.get("problem")
    ]
    return found


def render(results: dict[str, Any]) -> str:
    lines = _header(results)
    if results.get("notes"):
        lines += ["## Notes on this run", "", results["notes"], ""]
    lines += _verdict_section(verdicts(results))
    for name, wl in results["workloads"].items():
        lines += _workload_section(name, wl)
    lines += _method_notes()
    return "\n".join(lines) + "\n"


def _header(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    failed = failures(results)
    lines = [
        "# Artifact store benchmark: dr beside restic and borg",
        "",
        f"Generated {results['when']}; total runtime {results['runtime'] / 60:.1f} min.",
        "",
    ]
    if failed:
        lines += ["## FAIL: WRONG RESTORES OR DAMAGED REPOSITORIES", ""]
        lines += [f"- **FAIL** {f}" for f in failed] + [""]
    else:
        count = sum(len(wl["restores"]) for wl in results["workloads"].values())
        lines += [
            f"Restore correctness: all {count} restores matched the SHA-256 of the source "
            "version (every file, every path).",
            "",
        ]
    lines += ["## Command", "", "```", results["command"], "```", ""]
    lines += [
        "## Machine and tools",
        "",
        f"- {m['nproc']} cores ({m['cpu']}; AES-NI: {m['aes']}; SHA-NI: {m['sha_ni']}), "
        f"{m['mem']} RAM; {m['os']}, kernel {m['kernel']}; work dir on {m['fs']}; "
        f"Python {m['python']}",
        f"- load average (1 min) at start {m['load_start']:.2f}, at end {m['load_end']:.2f} "
        "(the cores are shared; see the notes on noise)",
    ]
    lines += [f"- {tool}: `{ver}`" for tool, ver in results["versions"].items()]
    if "dr" in results["versions"]:
        lines.append(f"- dr measured from: {results.get('dr_source', 'installed dr')}")
    lines += [f"- {tool} repository: {desc}" for tool, desc in results["repo_desc"].items()]
    return [*lines, ""]


def _verdict_section(found: list[Verdict]) -> list[str]:
    lines = [
        "## Targets (dr ÷ reference, computed in this run)",
        "",
        "| target | workload | dr | reference | ratio | limit | CPU ratio | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in found:
        limit = f"{'≥' if v.at_least else '≤'} {v.limit:g}"
        lines.append(
            f"| {v.target} ({v.unit}) | {v.workload} | {_shown(v, v.dr)} | "
            f"{_shown(v, v.reference)} ({v.reference_name}) | {_f(v.ratio)} | {limit} | "
            f"{_f(v.cpu_ratio)} | **{v.status}** |"
        )
    lines += [
        "",
        "CPU ratio: the same comparison on user+sys CPU seconds, which shared cores disturb "
        "less than wall time. It is shown for orientation; the verdict is on the wall ratio. "
        "(extra): not a target of the issue; with contiguous changes fixed 64 KiB blocks waste "
        "nothing, so this row only asks for no more than borg-fixed.",
        "",
    ]
    return lines


def _workload_section(name: str, wl: dict[str, Any]) -> list[str]:
    lines = [f"## Workload `{name}`", "", wl["description"], ""]
    lines += _summary_table(wl)
    lines += _round_table(wl)
    lines += _restore_table(wl)
    lines += _verify_table(wl)
    return lines


def _summary_table(wl: dict[str, Any]) -> list[str]:
    lines = [
        "| tool | full wall (s) | full CPU (s) | full MB/s | full added (MiB) | median incr wall "
        "(s) | median incr CPU (s) | median incr added (MiB) | peak RSS (MiB) | repo at end "
        "(MiB) | restore walls (s) | verify (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool in wl["tools"]:
        full = backups(wl, tool, ("full",))[0]
        incr = backups(wl, tool, INCREMENTAL_KINDS)
        rss = max((b["rss_mib"] or 0) for b in backups(wl, tool))
        restores = " / ".join(_f(r["wall"]) for r in restore_rows(wl, tool))
        verify = wl["verify"].get(tool)
        lines.append(
            f"| {tool} | {_f(full['wall'])} | {_f(full['cpu'])} | "
            f"{_f(full_throughput(wl, tool), 1)} | {_mib(full['added'])} | "
            f"{_f(median_of(incr, 'wall'))} | {_f(median_of(incr, 'cpu'))} | "
            f"{_mib(median_of(incr, 'added'))} | {rss:.0f} | {_mib(repo_total(wl, tool))} | "
            f"{restores} | {_f(verify['wall'] if verify else None)} |"
        )
    return [*lines, ""]


def _round_table(wl: dict[str, Any]) -> list[str]:
    lines = [
        "<details><summary>Per round</summary>",
        "",
        "| tool | round | change | wall (s) | CPU (s) | peak RSS (MiB) | repo added (MiB) | "
        "tool-reported (MiB) | repo total (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b in wl["backups"]:
        lines.append(
            f"| {b['tool']} | {b['round']} | {b['label']} | {_f(b['wall'])} | {_f(b['cpu'])} | "
            f"{_f(b['rss_mib'], 0)} | {_mib(b['added'])} | {_mib(b['reported'])} | "
            f"{_mib(b['total'])} |"
        )
    return [*lines, "", "</details>", ""]


def _restore_table(wl: dict[str, Any]) -> list[str]:
    lines = [
        "| restore: tool | version (round) | which | wall (s) | CPU (s) | peak RSS (MiB) | MB/s "
        "| SHA-256 matches |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in wl["restores"]:
        mbs = r["size"] / r["wall"] / MB if r["wall"] else None
        ok = "yes" if r["ok"] else "**NO — FAIL**"
        lines.append(
            f"| {r['tool']} | {r['round']} | {r['which']} | {_f(r['wall'])} | {_f(r['cpu'])} | "
            f"{_f(r['rss_mib'], 0)} | {_f(mbs, 1)} | {ok} |"
        )
    return [*lines, ""]


def _verify_table(wl: dict[str, Any]) -> list[str]:
    lines = [
        "| verify: tool | command | wall (s) | CPU (s) | peak RSS (MiB) | repo size (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for tool, v in wl["verify"].items():
        wall = f"**FAILED: {v['problem']}**" if v.get("problem") else _f(v["wall"])
        lines.append(
            f"| {tool} | `{v['command']}` | {wall} | {_f(v['cpu'])} | "
            f"{_f(v['rss_mib'], 0)} | {_mib(v['repo_size'])} |"
        )
    return [*lines, ""]


def _method_notes() -> list[str]:
    return [
        "## Method",
        "",
        "- Every tool has its own repository per workload, on the same filesystem; in every "
        "round the tools back up the same directory one after another (warm page cache; "
        "caches are not dropped). Round 0 is the full backup.",
        "- Wall = elapsed time of the tool's process; CPU = user+sys of it and its children "
        "(`os.wait4`); peak RSS = GNU `/usr/bin/time -f %M` around the tool. dr runs through "
        "its CLI, so its figures include interpreter start-up and Argon2id key derivation "
        "(64 MiB, t=3), as restic's include its scrypt and borg's its PBKDF2.",
        "- Added = growth of the repository directory's apparent size across the command "
        "(`du -sb`); tool caches and dr's key file live outside the repositories. "
        "Tool-reported = restic `data_added` (before compression), borg `deduplicated_size`, "
        "dr `stored`.",
        "- Restores go into an empty directory; the restored tree's SHA-256 (every relative "
        "path and file content) is compared with the tree as it was at that round.",
        "- Verify = `restic check --read-data`, `borg check --verify-data`, "
        "`dr store verify --read-data`, after the last round.",
        "- Shifting content and small files are compared with the better of restic and borg "
        "(default chunker): total repository size and total backup wall over all rounds.",
        "- MB = 10^6 bytes, MiB = 2^20 bytes.",
        "",
    ]
