"""`dr catalog import` / `dr catalog list` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli._dr import ROOT, dr, init


def test_example_history_imports_lists_and_reimports(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init(ws)
    first = dr(ws, "catalog", "import", str(ROOT / "examples" / "history.json"), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["runs_added"] > 1000 and report["runs_skipped"] == 0
    again = json.loads(
        dr(ws, "catalog", "import", str(ROOT / "examples/history.json"), "--json").stdout
    )
    assert (again["runs_added"], again["runs_skipped"]) == (0, report["runs_added"])
    listed = dr(ws, "catalog", "list", "--set", "dc1-system-state")
    assert "[I] SystemState.bkf" in listed.stdout and "[D] SystemState.bkf" in listed.stdout
    rows = json.loads(dr(ws, "catalog", "list", "--set", "ex2016-exchange", "--json").stdout)
    assert {r["marker"] for r in rows} == {"", "[I]", "[D]", "[C]"}


def test_bad_manifest_is_one_line_with_file_line_field_and_exit_2(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init(ws)
    bad = tmp_path / "bad.json"
    bad.write_text(
        '[\n {"set": "dc1-system-state", "host": "DC1", "type": "full",\n'
        '  "start": "2024-05-06T01:00:00", "end": "2024-05-06T01:10:00Z"}\n]\n'
    )
    out = dr(ws, "catalog", "import", str(bad))
    assert out.returncode == 2
    assert f"{bad}:3: start:" in out.stderr and "time zone" in out.stderr
    assert "Traceback" not in out.stderr
    assert json.loads(dr(ws, "catalog", "list", "--json").stdout) == []
