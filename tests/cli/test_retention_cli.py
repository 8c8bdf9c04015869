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
