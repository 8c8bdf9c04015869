"""Runbook documents: the header a responder needs, every step in order, no secrets, no network."""

from __future__ import annotations

import re

import pytest
from runbook_samples import HOSTILE, storage_group_plan

from engine.documents import build, duration, markdown_html, render
from engine.plan import SecretRef
from engine.runbook import Library


@pytest.fixture(scope="module")
def library() -> Library:
    return Library.load()


@pytest.fixture(scope="module")
def plan():
    return storage_group_plan()


def test_steps_are_numbered_in_topological_order(plan, library) -> None:
    doc = build(plan, library)
    position = {s.rendered.step_id: s.number for s in doc.steps}
    for step in plan.steps:
        for need in step.needs:
            assert position[need] < position[step.id]
    assert [s.rendered.step_id for s in doc.critical_path] == plan.critical_path


def test_markdown_header_and_steps(plan, library) -> None:
    md = render(plan, library, "md")
    assert "| Scenario | storage-group |" in md
    assert "Recoverable point | 2024-03-01 09:27:00 UTC" in md
    assert "3 min — SLA RPO 15 min — within the SLA" in md
    assert plan.digest in md
    assert "the differential of 2024-02-28 failed verification" in md
    assert "## Critical path" in md and "restore-db.EX2003.SG1.DB" in md
    assert "Tick **Last Restore Set**" in md  # the last set of the 2003 chain
    assert "Temporary location for log and patch files: **D:\\dr-temp\\First Storage Group**" in md
    assert "& certutil.exe -f -p $env:DR_SECRET_CA_BACKUP_PASSWORD -restore 'C:\\CABackup'" in md
    assert "| ca-backup-password | vault:pki/ca-backup | 3 |" in md
    assert "— DESTRUCTIVE" in md
    assert "Approved by (name):" in md and "## Sign-off" in md
    assert md.count("Done by:") == len(plan.steps)
    assert "If it fails: stop and decide — retry" in md


def test_rto_over_sla_is_called_out(plan, library) -> None:
    slow = plan.model_copy(update={"sla": plan.sla.model_copy(update={"rto_seconds": 600})})
    assert "— SLA RTO 10 min — **exceeds the SLA**" in render(slow, library, "md")


def test_html_is_self_contained_and_prints(plan, library) -> None:
    page = render(plan, library, "html")
    assert not re.search(r"https?://|//[a-z]", page, re.IGNORECASE)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "src=" not in page
    assert "@media print" in page
    assert page.count('<g class="step') == len(plan.steps)
    assert 'class="edge critical"' in page
    assert page.count('<section class="step') == len(plan.steps)


def test_secret_values_never_appear(plan, library) -> None:
    secret_value = "Tr0ub4dor&3-never-printed"
    ref = SecretRef(name="ca-backup-password", location="vault:pki/ca-backup")
    steps = [
        s.model_copy(update={"secrets": [ref]}) if s.kind == "restore-ca" else s for s in plan.steps
    ]
    other = plan.model_copy(update={"steps": steps})
    for fmt in ("md", "html"):
        text = render(other, library, fmt)
        assert secret_value not in text
        assert "vault:pki/ca-backup" in text


def test_missing_secret_location_is_flagged(plan, library) -> None:
    steps = [
        s.model_copy(update={"secrets": []}) if s.kind == "restore-ca" else s for s in plan.steps
    ]
    md = render(plan.model_copy(update={"steps": steps}), library, "md")
    assert "NOT GIVEN in the plan" in md


def test_hostile_values_are_quoted_in_markdown_and_escaped_in_html(library) -> None:
    plan = storage_group_plan(db=HOSTILE + "<script>alert(1)</script>")
    md = render(plan, library, "md")
    assert "'''; Remove-Item C:\\ -Recurse #" not in md.replace("''''", "")  # never unquoted
    page = render(plan, library, "html")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_markdown_subset_escapes_then_formats() -> None:
    out = markdown_html("1. Run `eseutil /mh`\n2. **Check** <b>it</b>\n\nA & B")
    assert out == (
        "<ol><li>Run <code>eseutil /mh</code></li><li><strong>Check</strong> "
        "&lt;b&gt;it&lt;/b&gt;</li></ol>\n<p>A &amp; B</p>"
    )


def test_duration_words() -> None:
    assert [duration(s) for s in (30, 600, 3600, 5400, None)] == [
        "30 s",
        "10 min",
        "1 h",
        "1 h 30 min",
        "unknown",
    ]


def test_plan_facts_read_as_lines_not_python_reprs() -> None:
    from engine.documents import fact_lines

    chains = [{"base": "run-1", "versions": ["run-1", "run-2"], "live_logs": False}]
    assert fact_lines(chains) == ["base: run-1; live_logs: no; versions: run-1, run-2"]
    assert fact_lines(["modern"]) == ["modern"]
    assert fact_lines(None) == ["none"]


def test_expected_output_is_said_in_words_not_as_a_regex() -> None:
    from engine.documents import pattern_words

    said = pattern_words(r"^Missing:\s*(?P<missing>\d+)", {"missing": "0"})
    assert said == "a line that starts with “Missing: 0”"
    assert pattern_words("passed test Replications") == "a line with “passed test Replications”"
    unnamed = pattern_words(r"^Mismatches:\s*(?P<mismatches>\d+)")
    assert unnamed == "a line that starts with “Mismatches:” a number"
    # too intricate for words: shown as the pattern it is, and named so
    assert pattern_words("a|b[0-9]") == "a line matching the pattern `a|b[0-9]`"
