"""`dr info`: the window it shows is the one `dr plan` reaches and refuses outside of."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from tests.cli._dr import ROOT, dr80, init


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    init(ws)
    assert dr80(ws, "catalog", "import", str(ROOT / "examples" / "history.json")).returncode == 0
    return ws


def _plan(ws: Path, tmp_path: Path, *at: str) -> tuple[int, dict | None]:  # type: ignore[type-arg]
    out = tmp_path / "p.json"
    made = dr80(ws, "plan", "database", "--db", "EX2016/DB01/DB01", *at, "-o", str(out))
    return made.returncode, json.loads(out.read_text()) if made.returncode == 0 else None


def test_info_window_is_what_plan_reaches_and_refuses_outside(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    shown = dr80(ws, "info", "--db", "EX2016/DB01/DB01", "--json")
    assert shown.returncode == 0, shown.stderr
    (db01,) = json.loads(shown.stdout)["databases"]
    assert db01["chain_whole"] is True
    assert set(db01["last_backup"]) >= {"full", "incremental"}
    code, plan = _plan(ws, tmp_path)
    assert code == 0 and plan is not None
    assert datetime.fromisoformat(plan["recoverable_point"]) == datetime.fromisoformat(
        db01["newest"]
    )
    oldest = datetime.fromisoformat(db01["oldest"])
    code, plan = _plan(ws, tmp_path, "--at", oldest.isoformat())
    assert code == 0 and plan is not None
    assert datetime.fromisoformat(plan["recoverable_point"]) == oldest
    code, _ = _plan(ws, tmp_path, "--at", (oldest - timedelta(seconds=1)).isoformat())
    assert code == 3  # one second before the window: dr plan refuses


def test_info_names_a_gap_and_exits_3_at_80_columns_through_a_pipe(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    out = dr80(ws, "info")
    assert out.returncode == 3, out.stderr  # Second Storage Group has a hole in its logs
    assert "…" not in out.stdout
    assert "EX2003/Second Storage Group/Sales Store  chain has a gap" in out.stdout
    assert "8009" in out.stdout  # the missing generations are named
    assert "EX2016/DB01/DB01  chain whole" in out.stdout
    assert "run-1828" in out.stdout  # the last incremental's id, whole


def test_info_unknown_database_is_a_clear_error(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    out = dr80(ws, "info", "--db", "NOPE", "--json")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert json.loads(out.stdout)["error"]["code"].startswith("E2")
