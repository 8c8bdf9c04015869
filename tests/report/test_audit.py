"""`dr report audit` / `dr report drill` over a recorded history: what the page says, and
that it renders in a real browser (headless Chromium) on screen and printed on A4."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dr.drill import history
from dr.drill.history import DrillCheck, DrillRecord, DrillStep
from dr.report.audit import coverage
from tests.cli._dr import ROOT, dr
from tests.report.browser import chromium, load, print_pdf, screenshot

AT = datetime(2026, 12, 1, tzinfo=UTC)
DB01, DB02 = "EX2016/DB01/DB01", "EX2016/DB02/DB02"


def _record(db: str, ended: datetime, verdict: str = "passed", n: int = 1) -> DrillRecord:
    start = ended - timedelta(minutes=50)
    steps = [
        DrillStep(id=f"restore-database-backup.RX2016.{n}", title="Restore the full backup",
                  state="succeeded", started=start, ended=start + timedelta(minutes=20)),
        DrillStep(id=f"verify-item-counts.RX2016.{n}", title="Item counts against the backup's",
                  state="succeeded" if verdict == "passed" else "failed",
                  started=start + timedelta(minutes=20), ended=ended),
    ]  # fmt: skip
    return DrillRecord(
        drill_id=f"drill-{n}-{db.replace('/', '-')}", kind="database", database=db,
        target="recovery.contoso.lab/RX2016", started_at=start, ended_at=ended,
        verdict=verdict,  # type: ignore[arg-type]
        failure=None if verdict == "passed" else "Item counts: Mismatches: 1",
        run_id=f"run{n:05d}", plan_digest="0" * 64, rto_seconds=3000.0, rto_target_seconds=7200,
        rpo_seconds=5400.0 if verdict == "passed" else 9000.0, rpo_target_seconds=7200,
        checks=[DrillCheck(name="Item counts against the backup's", passed=verdict == "passed",
                           detail="Mismatches: 0" if verdict == "passed" else "Mismatches: 1")],
        steps=steps, backup_runs=["run-12"],
    )  # fmt: skip


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    out = dr(ws, "init", "--inventory", str(ROOT / "examples" / "estate.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    history.append(ws, _record(DB01, AT - timedelta(days=300), n=1))
    history.append(ws, _record(DB02, AT - timedelta(days=40), "failed", n=2))
    history.append(ws, _record(DB02, AT - timedelta(days=39), n=3))
    return ws


def test_the_audit_report_says_what_an_auditor_asks(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    page = tmp_path / "audit.html"
    out = dr(ws, "report", "audit", "--at", AT.isoformat(), "-o", str(page))
    assert out.returncode == 0, out.stdout + out.stderr
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 4, "coverage, RTO, RPO and the latest drill's timeline"
    assert "<script" not in html and not re.search(r"(src|href)=\"https?:", html), "self-contained"
    assert "drill-2-EX2016-DB02-DB02" in html and "FAILED" in html and "Mismatches: 1" in html
    # DB01's last passed drill was 300 days ago: overdue (six months), and said so
    overdue = html.split("Overdue and changed databases")[1].split("<h2>Drills")[0]
    assert DB01 in overdue and DB02 not in overdue
    assert "no evidence log in this workspace" in html
    assert "not signed" in html


def test_coverage_marks_passed_failed_and_missing_months() -> None:
    from dr.drill.due import Subject

    subjects = [Subject("database", DB01, 182 * 86400.0), Subject("database", DB02, 182 * 86400.0)]
    records = [_record(DB01, AT - timedelta(days=300), n=1),
               _record(DB02, AT - timedelta(days=40), "failed", n=2),
               _record(DB02, AT - timedelta(days=39), n=3)]  # fmt: skip
    cov = coverage(subjects, records, AT - timedelta(days=330), AT)
    db01 = dict(zip(cov.months, cov.cells[0], strict=True))
    db02 = dict(zip(cov.months, cov.cells[1], strict=True))
    drilled = f"{AT - timedelta(days=300):%Y-%m}"
    assert db01[drilled] == "passed"
    assert db01[f"{AT:%Y-%m}"] == "missing", "300 days after its drill: past its period"
    assert db01[f"{AT - timedelta(days=200):%Y-%m}"] == "", "within its period: nothing due"
    assert db02[f"{AT - timedelta(days=40):%Y-%m}"] == "passed", "a pass in the month wins"
    assert db02[cov.months[0]] == "missing", "never drilled before: overdue"


def test_a_drill_report_names_one_drill(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    page = tmp_path / "drill.html"
    out = dr(ws, "report", "drill", "drill-2", "-o", str(page))
    assert out.returncode == 0, out.stdout + out.stderr
    html = page.read_text(encoding="utf-8")
    assert "Drill drill-2-EX2016-DB02-DB02" in html and "drill-3-" not in html
    refused = dr(ws, "report", "drill", "drill-", "-o", str(page))
    assert refused.returncode == 2 and "names 3 drills" in refused.stderr


@pytest.mark.skipif(
    chromium() is None, reason="headless Chromium is not installed (.ci/run installs it)"
)
def test_the_report_renders_in_chromium_on_screen_and_on_a4(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    page = tmp_path / "audit.html"
    assert dr(ws, "report", "audit", "--at", AT.isoformat(), "-o", str(page)).returncode == 0

    loaded = load(page)
    assert loaded.console_errors == [], loaded.console_errors
    assert len(loaded.charts) == 4 and all(w > 300 and h > 80 for w, h in loaded.charts), loaded
    shot = screenshot(page, _artifacts(tmp_path) / "audit-report.png")
    assert shot.stat().st_size > 20_000
    pdf = print_pdf(page, _artifacts(tmp_path) / "audit-report.pdf")
    sizes = set(re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf.read_bytes()))
    assert sizes and all(abs(float(w) - 595) < 2 and abs(float(h) - 842) < 2 for w, h in sizes)


def _artifacts(tmp_path: Path) -> Path:
    """Where screenshots are kept: $DR_TEST_ARTIFACTS, else beside the test's files."""
    where = Path(os.environ.get("DR_TEST_ARTIFACTS") or tmp_path / "artifacts")
    where.mkdir(parents=True, exist_ok=True)
    return where
