"""The store benchmark's harness: it runs, restores the right bytes, and cries FAIL otherwise.

The dr-only path runs for real (CLI subprocesses, real repository) on a couple of MiB; a
plain-copy "tool" that damages what it restores proves that a wrong restore is caught.
restic and borg are not needed here (they are optional for the benchmark itself).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import _store_report as report  # noqa: E402
import _store_tools as tools  # noqa: E402
import _store_workloads as workloads  # noqa: E402
import bench_store  # noqa: E402


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap key derivation for the repository the benchmark creates (tests only)."""
    monkeypatch.setenv("DR_KDF_PROFILE", "fast")


def test_dr_only_quick_run_restores_matching_bytes(tmp_path: Path, fast_kdf: None) -> None:
    out, raw = tmp_path / "report.md", tmp_path / "raw.json"
    args = ["--quick", "--tools", "dr", "--only", "db", "--size-mib", "2", "--rounds", "1"]
    args += ["--out", str(out), "--json", str(raw), "--work-dir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_store.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    db = json.loads(raw.read_text())["workloads"]["db"]
    assert [r["which"] for r in db["restores"]] == ["first", "middle", "deepest", "last"]
    for r in db["restores"]:
        assert r["ok"] and r["got"] == db["digests"][str(r["round"])]
        assert r["size"] >= 2 << 20
    rounds = [b["round"] for b in db["backups"]]
    assert rounds == [0, 1, 2, 3, 4]  # full, 1 % random, 1 % clustered, 60 %, insert
    small = [b for b in db["backups"] if b["kind"] in ("random", "clustered")]
    assert all(b["added"] < db["size"] / 4 for b in small), "dr stored a 1 % change as a full"
    text = out.read_text()
    assert "all 4 restores matched" in text
    # the speed verdicts of a 2 MiB run are all fixed costs and the machine's load: tests
    # never judge wall time, only that the report gives a verdict for each target
    assert "| restore flat in chain depth" in text and "| bytes added per 1 % round" in text
    assert "dr store verify --read-data" in text
    assert not list(tmp_path.glob("dr-store-bench-*")), "the work dir was not removed"


class DamagingCopy(tools.Tool):
    """A 'backup tool' that copies the tree and flips one byte of every restore."""

    name = "damaging-copy"
    verify_command = "true"

    def init(self) -> str:
        self.repo.mkdir(parents=True)
        return "plain copies"

    def backup(self, rnd: int, source: Path) -> tools.Measured:
        self.versions[rnd] = str(self.repo / f"v{rnd}")
        return self.run(["cp", "-a", str(source), self.versions[rnd]], f"backup{rnd}")

    def restore(self, rnd: int, target: Path) -> tools.Measured:
        self.run(["cp", "-a", f"{self.versions[rnd]}/.", str(target)], f"copy{rnd}")
        flip = "import sys; f = open(sys.argv[1], 'r+b'); b = f.read(1); f.seek(0); " + (
            "f.write(bytes([b[0] ^ 1]))"
        )
        return self.run([sys.executable, "-c", flip, str(target / "priv1.edb")], f"flip{rnd}")

    def verify(self) -> tools.Measured:
        return self.run(["true"], "verify")


def test_a_wrong_restore_is_reported_as_fail(tmp_path: Path) -> None:
    wl = workloads.db_workload(tmp_path / "data", 1, 1, seed=3)
    env = tools.tool_env(tmp_path)
    result = bench_store.WorkloadRun(wl, [DamagingCopy(tmp_path, "db", env)]).run(tmp_path)
    assert result["restores"] and not any(r["ok"] for r in result["restores"])
    results = {
        "workloads": {"db": result},
        "repo_desc": result["repo_desc"],
        "command": "bench_store.py",
        "machine": bench_store.machine_info(tmp_path, 0.0),
        "versions": {},
        "runtime": 1.0,
        "when": "now",
    }
    text = report.render(results)
    assert "## FAIL: WRONG RESTORES OR DAMAGED REPOSITORIES" in text
    assert "damaging-copy restored version 0 WRONG" in text
    assert "**NO — FAIL**" in text
    args = bench_store.parse_args(["--out", str(tmp_path / "r.md")])
    assert bench_store.write_outputs(args, results) == 1


def test_verdicts_compare_dr_with_the_named_reference() -> None:
    rows = [
        {
            "tool": t,
            "round": r,
            "kind": k,
            "label": k,
            "wall": w,
            "cpu": w,
            "rss_mib": 1,
            "added": a,
            "reported": a,
            "total": a,
        }
        for t, w, a in (("dr", 2.0, 100), ("borg-fixed", 1.0, 1000))
        for r, k in ((0, "full"), (1, "random"))
    ]
    wl = {"tools": ["dr", "borg-fixed"], "backups": rows, "restores": [], "verify": {}, "size": 1}
    found = {v.target: v for v in report.db_verdicts(wl)}
    assert found["bytes added per 1 % round"].ratio == pytest.approx(0.1)
    assert found["bytes added per 1 % round"].status == "PASS"
    assert found["incremental wall per 1 % round"].status == "FAIL"


def test_missing_tools_are_named_with_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    problems = tools.missing_programs(["restic", "borg-fixed", "dr"])
    assert len(problems) == 2
    assert "apt-get install -y restic" in problems[0]
    assert "apt-get install -y borgbackup" in problems[1]
