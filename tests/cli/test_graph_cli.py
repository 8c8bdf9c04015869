"""`dr graph show` and `dr graph gaps` as a person reads them: nodes in natural order
(`run-14` before `run-1178`), and each log gap with the time of the backups around it."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict
from pathlib import Path

from tests.cli._dr import dr80
from tests.planner.histories import ESTATE, estate_artifacts, legacy_sim


def recorded(tmp_path: Path, *, hole: bool) -> Path:
    """EX2003's first storage group: a full and incrementals run-2, run-14, run-1178 (an
    hour apart from 2024-03-04 00:00 UTC); with ``hole``, run-14 is gone."""
    sim = legacy_sim()
    sim.backup("full", vid="run-2")
    for vid in ("run-14", "run-1178"):
        sim.logs()
        sim.backup("incremental", vid=vid)
    if hole:
        sim.drop("run-14")
    data = {
        "backups": [asdict(v) for v in sim.versions],
        "artifacts": [asdict(a) for a in estate_artifacts()],
    }
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(data, default=str), encoding="utf-8")
    return path


def graph(tmp_path: Path, facts: Path, *args: str) -> subprocess.CompletedProcess[str]:
    sources = ("--inventory", str(ESTATE), "--facts", str(facts))
    return dr80(tmp_path / "ws", "graph", *args, *sources)


def test_show_orders_nodes_by_their_numbers(tmp_path: Path) -> None:
    facts = recorded(tmp_path, hole=False)
    shown = graph(tmp_path, facts, "show", "backup:run-1178", "--json")
    assert shown.returncode == 0, shown.stderr
    ids = [n["id"] for n in json.loads(shown.stdout)["nodes"]]
    assert ids == ["backup:run-2", "backup:run-14", "backup:run-1178"]
    edges = [(e["from"], e["to"]) for e in json.loads(shown.stdout)["edges"]]
    assert edges == [("backup:run-14", "backup:run-2"), ("backup:run-1178", "backup:run-14")]
    dot = graph(tmp_path, facts, "show", "backup:run-1178").stdout
    assert dot.index('"backup:run-14" [') < dot.index('"backup:run-1178" [')
    mermaid = graph(tmp_path, facts, "show", "backup:run-1178", "--format", "mermaid").stdout
    assert re.findall(r'\["(backup:[^"]+)"\]', mermaid) == ids


def test_gaps_say_when_the_gap_was(tmp_path: Path) -> None:
    facts = recorded(tmp_path, hole=True)
    out = graph(tmp_path, facts, "gaps")
    assert out.returncode == 3, out.stderr
    text = " ".join(out.stdout.split())  # 80 columns wrap the line
    assert "log E00 generations 11–20 (0xB–0x14) missing" in text
    # on the inventory's clock (Europe/Amsterdam, UTC+1 in March)
    assert "between backup:run-2 (2024-03-04 01:00) and backup:run-1178 (2024-03-04 03:00)" in text
    assert "Europe/Amsterdam" in text
    found = json.loads(graph(tmp_path, facts, "gaps", "--json").stdout)
    (gap,) = [g for g in found["gaps"] if g["kind"] == "log-gap"]
    assert gap["details"]["backup_before"] == {
        "backup": "backup:run-2",
        "at": "2024-03-04T00:00:00+00:00",
    }
    assert gap["details"]["backup_after"]["backup"] == "backup:run-1178"
    assert gap["details"]["backup_after"]["at"] == "2024-03-04T02:00:00+00:00"
