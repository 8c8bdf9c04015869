"""`dr demo` end to end, as a new user runs it: every chapter, in a fresh directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path


def test_demo_runs_every_chapter_and_proves_the_restore(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env["DR_KDF_PROFILE"] = "fast"
    env["COLUMNS"] = "160"
    out = subprocess.run(
        [sys.executable, "-m", "dr", "demo", "--dir", str(tmp_path / "demo"), "--days", "2"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    text = out.stdout + out.stderr  # refusals are error lines, on stderr
    assert "ok: 5 servers" in text  # the estate validated
    assert "lab ready" in text  # the lab built, its backups taken through dr
    assert "saved to" in text and "plan.json" in text  # a plan made and saved
    assert "E3120" in text and "(exit 3, as expected)" in text  # before the first full
    assert "run " in text and "succeeded" in text  # the real run over WinRM finished
    assert "dry run" not in text.lower()
    assert "equal (" in text and "DIFFERENT" not in text  # the restore equals the truth
    demo = tmp_path / "demo"
    for name in ("plan.json", "runbook.md", "runbook.html", "ws/catalog.sqlite"):
        assert (demo / name).is_file(), name
    plan = json.loads((demo / "plan.json").read_text(encoding="utf-8"))
    from dr.lab.estate import Lab

    lab = Lab.open(demo / "ws" / "lab")
    point = datetime.fromisoformat(plan["recoverable_point"])
    assert lab.verify("DB01", point).equal  # checked again here, not only by the demo
    from dr.drill import history

    (drilled,) = history.load(demo / "ws")
    assert drilled.verdict == "passed" and drilled.database == "EX2016/DB02/DB02"
    assert drilled.evidence_record_id and "PASSED" in text
    assert all(c.passed for c in drilled.checks) and drilled.lab
    verified = text.split("$ dr evidence verify")[-1]
    assert "evidence log: 2 entries chained" in verified and "verified: " in verified
    html = (demo / "runbook.html").read_text(encoding="utf-8")
    assert "<svg" in html and "https://" not in html and "http://" not in html


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("precious\n")
    out = subprocess.run(
        [sys.executable, "-m", "dr", "demo", "--dir", str(tmp_path / "mine")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and "not made by `dr demo`" in out.stderr
    assert (tmp_path / "mine" / "keep.txt").read_text() == "precious\n"
