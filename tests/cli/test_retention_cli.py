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
    applied = dr(ws, "retention", "apply", "--set", "dc1-system-state", "--at", at, "--yes")
    assert applied.returncode == 0, applied.stderr
    after = json.loads(dr(ws, "catalog", "list", "--set", "dc1-system-state", "--json").stdout)
    assert len(after) == len(before) - plan["expire"]
    assert after[-1]["marker"] == ""  # the full every kept increment builds on stays


def test_apply_asks_first_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    """A destructive command: without a terminal it needs --yes and says what it would do;
    --dry-run says it and changes nothing; the catalog is untouched by both."""
    ws = tmp_path / "ws"
    init(ws)
    assert dr(ws, "catalog", "import", str(ROOT / "examples" / "history.json")).returncode == 0
    at = "2024-06-10T00:00:00Z"
    before = dr(ws, "catalog", "list", "--json").stdout

    refused = dr(ws, "retention", "apply", "--at", at)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "would expire" in refused.stderr and "--yes" in refused.stderr
    assert "judged as of 2024-06-10 00:00 UTC" in refused.stderr
    dry = json.loads(dr(ws, "retention", "apply", "--at", at, "--dry-run", "--json").stdout)
    assert dry["dry_run"] is True and dry["versions"] > 0 and dry["sets"]
    assert dr(ws, "catalog", "list", "--json").stdout == before, "nothing was expired"

    done = json.loads(dr(ws, "retention", "apply", "--at", at, "--yes", "--json").stdout)
    assert done["versions"] == dry["versions"] and done["artifacts"] > 0
    assert dr(ws, "catalog", "list", "--json").stdout != before


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
