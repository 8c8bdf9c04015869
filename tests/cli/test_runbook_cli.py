"""`dr runbook render | kinds | show`: real files, real subprocesses, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from runbook_samples import storage_group_plan


def run_dr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, check=False
    )


def test_render_html_and_markdown(tmp_path: Path) -> None:
    plan = storage_group_plan().save(tmp_path / "plan.json")
    out = run_dr("runbook", "render", str(plan), "-o", str(tmp_path / "rb.html"))
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "rb.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Dismount Store" in page
    md = run_dr("runbook", "render", str(plan), "--format", "md", "-o", "-")
    assert md.returncode == 0 and md.stdout.startswith("# Runbook: storage-group")


def test_bad_plan_is_one_line_exit_2_and_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"scenario": "x"}', encoding="utf-8")
    target = tmp_path / "rb.md"
    out = run_dr("runbook", "render", str(bad), "-o", str(target))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "plan.json" in out.stderr
    assert not target.exists() and not list(tmp_path.glob(".rb.md*"))


def test_unknown_extension_asks_for_format(tmp_path: Path) -> None:
    plan = storage_group_plan().save(tmp_path / "plan.json")
    out = run_dr("runbook", "render", str(plan), "-o", str(tmp_path / "rb.txt"))
    assert out.returncode == 2 and "--format" in out.stderr


def test_kinds_json_and_show_platform() -> None:
    out = run_dr("runbook", "kinds", "--json")
    rows = json.loads(out.stdout)
    names = {r["name"] for r in rows}
    assert {"soft-recovery", "hard-recovery", "approve"} <= names
    assert next(r for r in rows if r["name"] == "repair-database")["destructive"] is True
    shown = run_dr("runbook", "show", "hard-recovery", "--platform", "exchange=2003", "--json")
    assert json.loads(shown.stdout)["variant"]["action"] == "cmd"
    refused = run_dr("runbook", "show", "hard-recovery", "--platform", "exchange=2016")
    assert refused.returncode == 2 and "exchange=2016" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_show_says_the_braces_are_parameters_without_a_plan(tmp_path: Path) -> None:
    from tests.cli._dr import dr80

    for args in ([], ["--platform", "exchange=2003"]):
        out = dr80(tmp_path, "runbook", "show", "dismount-database", *args)
        assert out.returncode == 0, out.stderr
        text = " ".join(out.stdout.split())
        assert "{{ server }} and the other {{ }} are parameters, filled in from a plan" in text
        assert "dr runbook show dismount-database --plan PLAN" in text


def test_show_with_a_plan_fills_in_its_parameters(tmp_path: Path) -> None:
    from tests.cli._dr import dr80

    plan = storage_group_plan().save(tmp_path / "plan.json")
    out = dr80(tmp_path, "runbook", "show", "dismount-database", "--plan", str(plan))
    assert out.returncode == 0, out.stderr
    assert "{{" not in out.stdout
    assert "step dismount.EX2003.SG1.DB on EX2003" in out.stdout
    assert "Expand Servers → EX2003 → First Storage Group." in out.stdout  # manual: plain
    assert "Dismount-Database -Identity 'DB01' -Confirm:$false" in out.stdout  # quoted
    shown = dr80(tmp_path, "runbook", "show", "dismount-database", "--plan", str(plan), "--json")
    steps = json.loads(shown.stdout)["steps"]
    assert [s["step"] for s in steps] == ["dismount.EX2003.SG1.DB", "dismount.EX2016.DB01"]
    assert "Mailbox Store" in steps[0]["instructions"] and steps[1]["command"]
    absent = dr80(tmp_path, "runbook", "show", "repair-database", "--plan", str(plan))
    assert absent.returncode == 2 and "no repair-database step in the plan" in absent.stderr
