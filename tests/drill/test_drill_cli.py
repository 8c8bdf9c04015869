"""`dr drill due` and `dr drill history` through the real entry point, over a history
written with :func:`dr.drill.history.append` and the example estate's drill policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dr.drill import history
from dr.drill.history import DrillRecord
from tests.cli._dr import ROOT, dr

AT = datetime(2026, 12, 1, tzinfo=UTC)


def _workspace(tmp_path: Path, policy: str = "") -> Path:
    estate = tmp_path / "estate.yaml"
    text = (ROOT / "examples" / "estate.yaml").read_text(encoding="utf-8")
    estate.write_text(text + policy, encoding="utf-8")
    ws = tmp_path / "ws"
    out = dr(ws, "init", "--inventory", str(estate))
    assert out.returncode == 0, out.stdout + out.stderr
    return ws


def _record(db: str, ended: datetime, verdict: str = "passed", n: int = 1) -> DrillRecord:
    return DrillRecord(
        drill_id=f"drill-{n}", kind="database", database=db, target="Recovery forest/RX2016",
        started_at=ended - timedelta(hours=1), ended_at=ended, verdict=verdict,  # type: ignore[arg-type]
        failure=None if verdict == "passed" else "mount failed", plan_digest="sha256:" + "0" * 64,
    )  # fmt: skip


def _due(ws: Path, at: datetime = AT) -> dict[str, dict]:  # type: ignore[type-arg]
    out = dr(ws, "drill", "due", "--at", at.isoformat(), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return {row["key"]: row for row in json.loads(out.stdout)["drills"]}


def test_a_database_drilled_last_month_is_not_due_and_the_others_are_overdue(
    tmp_path: Path,
) -> None:
    ws = _workspace(tmp_path)
    history.append(ws, _record("EX2016/DB01/DB01", AT - timedelta(days=30)))
    rows = _due(ws)
    assert rows["EX2016/DB01/DB01"]["overdue"] is False
    assert rows["EX2016/DB01/DB01"]["last_success"].startswith("2026-11-01")
    deadline = datetime.fromisoformat(rows["EX2016/DB01/DB01"]["deadline"])
    assert deadline == AT - timedelta(days=30) + timedelta(days=182)  # six months by default
    never = rows["EX2016/DB02/DB02"]
    assert never["due"] and never["overdue"] and never["why"] == "never drilled"
    # seven months later it is overdue, whatever the slot says
    later = _due(ws, AT + timedelta(days=183))
    assert later["EX2016/DB01/DB01"]["overdue"] is True


def test_a_failed_drill_does_not_count_as_a_test(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    history.append(ws, _record("EX2016/DB02/DB02", AT - timedelta(days=3), "failed"))
    assert _due(ws)["EX2016/DB02/DB02"]["last_success"] is None


def test_a_per_database_period_and_scenarios_come_from_the_policy(tmp_path: Path) -> None:
    policy = (
        "drills:\n  period: 90d\n  databases:\n    EX2016/DB01/DB01: {period: 30d}\n"
        "  scenarios:\n    - {name: server-loss, interval: 365d}\n"
    )
    ws = _workspace(tmp_path, policy)
    history.append(ws, _record("EX2016/DB01/DB01", AT - timedelta(days=40)))
    history.append(ws, _record("EX2016/DB02/DB02", AT - timedelta(days=40), n=2))
    rows = _due(ws)
    assert rows["EX2016/DB01/DB01"]["overdue"] is True  # 30 days
    assert rows["EX2016/DB02/DB02"]["overdue"] is False  # 90 days
    assert rows["server-loss"]["kind"] == "scenario"


def test_history_lists_records_and_a_torn_line_is_one_clear_error(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    history.append(ws, _record("EX2016/DB01/DB01", AT, "failed"))
    out = dr(ws, "drill", "history")
    assert out.returncode == 0, out.stderr
    assert "drill-1" in out.stdout and "FAILED: mount failed" in out.stdout
    listed = json.loads(dr(ws, "drill", "history", "--json").stdout)["drills"]
    assert [d["drill_id"] for d in listed] == ["drill-1"]
    with history.history_path(ws).open("a", encoding="utf-8") as f:
        f.write('{"drill_id": "drill-2", "kind": "datab')  # a crash mid-append
    out = dr(ws, "drill", "history")
    assert out.returncode != 0
    assert "history.jsonl:2: not a drill record" in out.stderr
    assert "Traceback" not in out.stderr
