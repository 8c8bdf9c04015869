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
    header = next(line for line in listed.stdout.splitlines() if "ended (UTC)" in line)
    assert header.split() == ["item", "size", "ended", "(UTC)", "stored", "saved", "logs", "run"]
    ids = {r["run_id"] for r in json.loads(
        dr(ws, "catalog", "list", "--set", "dc1-system-state", "--json").stdout)}  # fmt: skip
    assert all(f"run-{i}" in listed.stdout for i in ids)
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


def _big_csv(path: Path, runs: int, bad_line: int | None = None) -> None:
    """Hourly system-state backups of DC1, one row per run: big enough for two processes."""
    lines = ["run_id,set,host,type,start,end,kind,name,size,location\n"]
    for hour in range(runs):
        day, rest = divmod(hour, 24)
        start = f"{2020 + day // 336}-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{rest:02d}:00:00Z"
        size = "-1" if hour + 2 == bad_line else "1000"
        end = start.replace(":00:00Z", ":30:00Z")
        lines.append(
            f"r{hour},dc1-system-state,DC1,full,{start},{end},system-state,"
            f"SystemState.bkf,{size},\\\\BACKUP01\\Archive\\dc1\\{hour:08d}\\SystemState.bkf\n"
        )
    path.write_text("".join(lines))


def test_a_large_csv_imports_all_or_nothing(tmp_path: Path) -> None:
    """A bad row near the end of a large file is one line naming file:line and field, with
    nothing imported; the good file imports whole."""
    ws = tmp_path / "ws"
    init(ws)
    bad = tmp_path / "bad.csv"
    _big_csv(bad, 40_000, bad_line=39_990)
    assert bad.stat().st_size > 4 << 20
    out = dr(ws, "catalog", "import", str(bad))
    assert out.returncode == 2, out.stderr
    assert (
        f"{bad}:39990: artifacts[0].size: must be a whole number" in out.stderr
        and "Traceback" not in out.stderr
    )
    assert json.loads(dr(ws, "catalog", "list", "--json").stdout) == []
    good = tmp_path / "good.csv"
    _big_csv(good, 40_000)
    report = json.loads(dr(ws, "catalog", "import", str(good), "--json").stdout)
    assert (report["runs_added"], report["artifacts_added"]) == (40_000, 40_000)
