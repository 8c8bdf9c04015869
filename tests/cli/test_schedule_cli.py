"""`dr schedule due` through the real entry point, with and without catalog history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "estate.yaml"


def run_dr(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DR_WORKSPACE=str(ws), COLUMNS="200", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env, check=False
    )


def workspace_with_inventory(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    out = run_dr(ws, "init", "--inventory", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    return ws


def test_everything_is_due_on_an_empty_catalog(tmp_path: Path) -> None:
    ws = workspace_with_inventory(tmp_path)
    out = run_dr(ws, "schedule", "due", "--at", "2024-05-01T22:30:00+02:00", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["timezone"] == "Europe/Amsterdam"
    assert len(data["due"]) == len(data["schedules"]) == 19
    full = next(s for s in data["due"] if s["set"] == "ex2003-exchange" and s["every"] == "day")
    assert full["next_due"] == "2024-05-01T20:00:00+00:00"  # 22:00 Amsterdam


def test_catalog_runs_make_schedules_not_due(tmp_path: Path) -> None:
    ws = workspace_with_inventory(tmp_path)
    from dr.catalog import Catalog, NewRun
    from dr.model.inventory import load_inventory

    sets = {s.name: s for s in load_inventory(EXAMPLE).backup_sets}
    with Catalog.open(ws / "catalog.sqlite") as catalog:
        for bset in ("dc1-system-state", "ex2003-iis-metabase"):
            host = "DC1" if bset.startswith("dc1") else "EX2003"
            catalog.register_set(sets[bset], at=datetime(2024, 4, 1, tzinfo=UTC))
            catalog.record_run(
                NewRun(
                    set_name=bset,
                    host=host,
                    backup_type="full",
                    started=datetime(2024, 5, 1, 20, 0, tzinfo=UTC),
                    ended=datetime(2024, 5, 1, 20, 5, tzinfo=UTC),
                )
            )
    out = run_dr(ws, "schedule", "due", "--at", "2024-05-01T22:30+02:00", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    due = {s["set"] for s in data["due"]}
    assert "dc1-system-state" not in due and "ex2003-iis-metabase" not in due
    assert "ex2003-exchange" in due
    state = next(s for s in data["schedules"] if s["set"] == "dc1-system-state")
    assert state["last_run"] == "2024-05-01T20:05:00+00:00"
    assert state["next_due"] == "2024-05-01T23:00:00+00:00"  # 01:00 Amsterdam on May 2


def test_table_output_and_bad_time(tmp_path: Path) -> None:
    ws = workspace_with_inventory(tmp_path)
    out = run_dr(ws, "schedule", "due", "--at", "2024-05-01T20:30")  # UTC: 22:30 in Amsterdam
    assert out.returncode == 0, out.stderr
    assert "19 of 19 schedules due at 2024-05-01 22:30 (Europe/Amsterdam)" in out.stdout
    assert "ex2016-exchange" in out.stdout
    bad = run_dr(ws, "schedule", "due", "--at", "tomorrow-ish")
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert "E2300" in line and "ISO 8601" in line


def test_a_set_added_with_dr_set_add_is_scheduled(tmp_path: Path) -> None:
    from tests.cli._dr import dr80

    ws = workspace_with_inventory(tmp_path)
    added = dr80(
        ws, "set", "add", "web-files", "--host", "DC1", "--type", "files",
        "--covers", "D:\\inetpub", "--schedule", "day@21:00",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    out = dr80(ws, "schedule", "due", "--at", "2024-05-01T22:30+02:00", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert len(data["schedules"]) == 20
    (web,) = [s for s in data["due"] if s["set"] == "web-files"]
    assert web["host"] == "DC1" and web["next_due"] == "2024-05-01T19:00:00+00:00"
    from dr.catalog import Catalog, NewRun

    with Catalog.open(ws / "catalog.sqlite") as catalog:
        catalog.record_run(
            NewRun(
                set_name="web-files",
                host="DC1",
                backup_type="full",
                started=datetime(2024, 5, 1, 19, 0, tzinfo=UTC),
                ended=datetime(2024, 5, 1, 19, 10, tzinfo=UTC),
            )
        )
    at = "2024-05-01T22:30+02:00"
    later = json.loads(dr80(ws, "schedule", "due", "--at", at, "--json").stdout)
    state = next(s for s in later["schedules"] if s["set"] == "web-files")
    assert state["due"] is False and state["last_run"] == "2024-05-01T19:10:00+00:00"
    table = dr80(ws, "schedule", "due", "--at", "2024-05-01T22:30+02:00", "--all")
    assert "web-files" in table.stdout


def test_sets_added_without_an_inventory_are_scheduled_in_utc(tmp_path: Path) -> None:
    from tests.cli._dr import dr80

    ws = tmp_path / "ws"
    assert dr80(ws, "init").returncode == 0
    added = dr80(
        ws, "set", "add", "logs", "--host", "FS1", "--type", "files", "--covers", "E:\\logs",
        "--schedule", "every:15m",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    out = dr80(ws, "schedule", "due", "--at", "2024-05-01T22:30", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["timezone"] == "UTC" and [s["set"] for s in data["due"]] == ["logs"]


def test_a_time_without_an_offset_is_utc_here_as_in_every_command(tmp_path: Path) -> None:
    """One rule for --at: `schedule due` used to read a bare time on the inventory's clock
    (Europe/Amsterdam) where `plan`, `retention` and `drill` read it as UTC."""
    ws = workspace_with_inventory(tmp_path)
    bare = json.loads(run_dr(ws, "schedule", "due", "--at", "2024-05-01T22:30", "--json").stdout)
    utc = json.loads(run_dr(ws, "schedule", "due", "--at", "2024-05-01T22:30Z", "--json").stdout)
    assert bare == utc and bare["at"] == "2024-05-01T22:30:00+00:00"
    retention = run_dr(ws, "retention", "plan", "--at", "2024-05-01T22:30", "--json")
    assert retention.returncode == 0, retention.stderr
    wrong = run_dr(ws, "schedule", "due", "--at", "yesterday")
    assert wrong.returncode == 2 and "without an offset is UTC" in wrong.stderr
