"""`dr plan` and `dr graph` end to end, as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from engine.plan import load_plan
from tests.planner.histories import ESTATE, estate_artifacts, legacy_sim, modern_sim


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    sims = [legacy_sim(), modern_sim()]
    for s in sims:
        s.backup("full")
        s.logs()
        s.backup("incremental")
        s.logs()
        s.backup("incremental")
    sims[0].drop(sims[0].versions[1].id)  # a hole in the 2003 chain
    data = {
        "backups": [asdict(v) for s in sims for v in s.versions],
        "live_logs": [asdict(sims[1].live())],
        "artifacts": [asdict(a) for a in estate_artifacts()],
    }
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(data, default=str), encoding="utf-8")
    return path


def dr(*args: str | Path, env_columns: str | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "COLUMNS": env_columns} if env_columns else None
    return subprocess.run(
        [sys.executable, "-m", "dr", *map(str, args)], capture_output=True, text=True, timeout=60,
        env=env,
    )  # fmt: skip


def test_plan_database_saves_prints_and_is_deterministic(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    common = ["--inventory", ESTATE, "--facts", recorded]
    done = dr("plan", "database", "--db", "DB01", "--at", "2024-03-04T01:30", "-o", out, *common)
    assert done.returncode == 0, done.stderr
    assert "recoverable point" in done.stdout and "2024-03-04T01:00:00+00:00" in done.stdout
    plan = load_plan(out)
    assert plan.recoverable_point is not None and plan.recoverable_point.hour == 1
    again = dr("plan", "database", "--db", "DB01", "--at", "2024-03-04T01:30", "--json", *common)
    assert json.loads(again.stdout) == json.loads(out.read_text(encoding="utf-8"))


def test_refusal_exits_3_with_the_gap_as_json(recorded: Path) -> None:
    done = dr(
        "plan",
        "database",
        "--db",
        "First Storage Group/Mailbox Store (EX2003)",
        "--at",
        "2024-03-04T02:00Z",
        "--json",
        "--inventory",
        ESTATE,
        "--facts",
        recorded,
    )
    assert done.returncode == 3
    refusal = json.loads(done.stdout)["error"]
    assert refusal["code"] == "E3110" and refusal["exit_code"] == 3
    assert refusal["details"]["first_missing"] == 11 and refusal["details"]["last_missing"] == 20
    plain = dr(
        "plan",
        "database",
        "--db",
        "First Storage Group/Mailbox Store (EX2003)",
        "--at",
        "2024-03-04T02:00Z",
        "--inventory",
        ESTATE,
        "--facts",
        recorded,
    )
    assert plain.returncode == 3 and "E3110" in plain.stderr and "Traceback" not in plain.stderr


def test_bad_time_is_a_parameter_error(recorded: Path) -> None:
    done = dr(
        "plan",
        "database",
        "--db",
        "DB01",
        "--at",
        "yesterday",
        "--inventory",
        ESTATE,
        "--facts",
        recorded,
    )
    assert done.returncode == 2 and "--at 'yesterday'" in done.stderr


def test_graph_gaps_and_show(recorded: Path) -> None:
    done = dr("graph", "gaps", "--json", "--inventory", ESTATE, "--facts", recorded)
    assert done.returncode == 3
    kinds = {g["kind"] for g in json.loads(done.stdout)["gaps"]}
    assert "missing-base" in kinds or "log-gap" in kinds
    shown = dr(
        "graph",
        "show",
        "server:EX2016",
        "--format",
        "mermaid",
        "--inventory",
        ESTATE,
        "--facts",
        recorded,
    )
    assert shown.returncode == 0 and "directory:corp.contoso.com" in shown.stdout


def test_the_gap_refusal_suggests_an_at_that_pastes_as_it_is(recorded: Path) -> None:
    """The hint's `--at ...` is one shell word (ISO 8601, no space); pasted back, it plans."""
    import os
    import re
    import shlex

    db = "First Storage Group/Mailbox Store (EX2003)"
    common = ["--db", db, "--inventory", str(ESTATE), "--facts", str(recorded)]
    env = dict(os.environ, COLUMNS="80")
    refused = subprocess.run(
        [sys.executable, "-m", "dr", "plan", "database", "--at", "2024-03-04T02:00Z", *common],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert refused.returncode == 3
    suggested = refused.stderr.split("plan again with `", 1)[1].split("`", 1)[0]
    assert re.fullmatch(r"--at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", suggested), suggested
    again = dr("plan", "database", *shlex.split(suggested), *common)
    assert again.returncode == 0, again.stderr


def test_a_plan_without_at_names_the_point_of_failure(tmp_path: Path) -> None:
    sim = legacy_sim()
    sim.logs()
    sim.backup("incremental")  # no full at all
    facts = tmp_path / "facts.json"
    data = {"backups": [asdict(v) for v in sim.versions], "artifacts": []}
    facts.write_text(json.dumps(data, default=str), encoding="utf-8")
    db = "First Storage Group/Mailbox Store (EX2003)"
    done = dr("plan", "database", "--db", db, "--inventory", ESTATE, "--facts", facts)
    assert done.returncode == 3, done.stderr
    assert "at or before the point of failure (no --at given)" in done.stderr
    assert "at or before none" not in done.stderr


def test_the_cli_and_the_runbook_say_the_same_rto_and_step_estimates(
    recorded: Path, tmp_path: Path
) -> None:
    """One formatter (engine.units): the plan summary, the runbook and the step table agree."""
    import re

    from engine.units import duration

    out = tmp_path / "plan.json"
    done = dr("plan", "database", "--db", "DB01", "--at", "2024-03-04T01:30", "-o", out,
              "--inventory", ESTATE, "--facts", recorded, env_columns="200")  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan = load_plan(out)
    rto = duration(plan.rto_estimate_seconds)
    assert f"RTO estimate       {rto}" in done.stdout, done.stdout
    book = tmp_path / "runbook.md"
    assert dr("runbook", "render", out, "--format", "md", "-o", book).returncode == 0
    text = book.read_text(encoding="utf-8")
    assert rto in text
    for step in plan.steps:
        assert f"Estimate: {duration(step.estimate_seconds)}" in text
    assert not re.search(r"\b\d+h \d\dm\b", done.stdout + text), "an old-style duration is left"
