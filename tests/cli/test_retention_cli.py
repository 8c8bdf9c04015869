"""`dr retention plan` / `apply` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli._dr import ROOT, dr, init


def test_plan_then_apply_never_expires_what_kept_versions_need(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init(ws)
    assert dr(ws, "catalog", "import", str(ROOT / "examples" / "history.json")).returncode == 0
    at = "2024-06-10T00:00:00Z"
    plans = json.loads(
        dr(ws, "retention", "plan", "--set", "dc1-system-state", "--at", at, "--json").stdout
    )
    (plan,) = plans
    assert plan["expire"] > 0 and plan["keep"] > 0
    assert all(d["reasons"] for d in plan["decisions"])
    before = json.loads(dr(ws, "catalog", "list", "--set", "dc1-system-state", "--json").stdout)
    applied = dr(ws, "retention", "apply", "--set", "dc1-system-state", "--at", at)
    assert applied.returncode == 0, applied.stderr
    after = json.loads(dr(ws, "catalog", "list", "--set", "dc1-system-state", "--json").stdout)
    assert len(after) == len(before) - plan["expire"]
    assert after[-1]["marker"] == ""  # the full every kept increment builds on stays


def test_plan_output_is_a_summary_and_the_expiring_versions(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init(ws)
    assert dr(ws, "catalog", "import", str(ROOT / "examples" / "history.json")).returncode == 0
    args = ("retention", "plan", "--set", "ex2003-exchange", "--at", "2024-06-20T00:00:00Z")
    out = dr(ws, *args)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    (plan,) = json.loads(dr(ws, *args, "--json").stdout)
    assert lines[0] == f"ex2003-exchange: keep {plan['keep']}, expire {plan['expire']}"
    kept = plan["kept_because"]
    assert sum(kept.values()) == plan["keep"]
    assert f"weekly points {kept['weekly']}" in lines[1]
    assert len(lines) == 2 + plan["expire"]  # the kept versions only with --verbose
    first = next(d for d in plan["decisions"] if not d["keep"])
    assert lines[2].startswith(f"  expire {first['at'][:10].replace('-', '/')}")
    assert f"(run {first['run_id']})" in lines[2] and ":EX2003" not in out.stdout
    verbose = dr(ws, *args, "--verbose").stdout.splitlines()
    assert len(verbose) == 2 + plan["keep"] + plan["expire"]
