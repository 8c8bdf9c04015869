"""At 80 columns and through a pipe, no table cuts an id, a path or a name with "…"."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli._dr import ROOT, dr80, init


def _no_cut(out: str, *wanted: str) -> None:
    assert "…" not in out, out
    for text in wanted:
        assert text in out, f"{text!r} is not printed whole:\n{out}"


def test_listings_keep_every_id_whole_at_80_columns_through_a_pipe(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init(ws)
    env = {"DR_PASSPHRASE": "narrow passphrase", "DR_KEY_DIR": str(tmp_path / "keys")}
    assert dr80(ws, "catalog", "import", str(ROOT / "examples" / "history.json")).returncode == 0
    _no_cut(dr80(ws, "schedule", "due", "--at", "2024-05-15T12:00Z", "--all").stdout,
            "ex2016-exchange", "ex2003-iis-metabase")  # fmt: skip
    _no_cut(dr80(ws, "inventory", "show").stdout, "Exchange Administrative Group (FYDIBOHF23SPDLT)")
    _no_cut(dr80(ws, "set", "show", "ex2016-exchange").stdout, "ex2016-exchange")
    plan = tmp_path / "a plan with a long name for the listing.json"
    made = dr80(
        ws, "plan", "database", "--db", "DB01", "--at", "2024-05-15T12:00Z", "-o", str(plan)
    )
    assert made.returncode == 0, made.stderr
    assert dr80(ws, "run", "start", str(plan), "--dry-run", env=env).returncode == 0
    runs = json.loads(dr80(ws, "run", "status", "--json").stdout)
    listing = dr80(ws, "run", "status").stdout
    _no_cut(listing, runs[0]["id"], str(plan))
    steps = dr80(ws, "run", "status", runs[0]["id"]).stdout
    _no_cut(steps, *[s["id"] for s in json.loads(
        dr80(ws, "run", "status", runs[0]["id"], "--json").stdout)["steps"]])  # fmt: skip
    repo = tmp_path / "repo"
    assert dr80(ws, "store", "init", str(repo), env=env).returncode == 0
    src = tmp_path / "files"
    src.mkdir()
    (src / "notes.txt").write_text("hello\n")
    backup = dr80(ws, "backup", "run", "files", "--from", str(src), "--repo", str(repo), "--json",
                  env=env)  # fmt: skip
    assert backup.returncode == 0, backup.stderr
    version = json.loads(backup.stdout)["version"]
    _no_cut(dr80(ws, "store", "ls", "--repo", str(repo), env=env).stdout, version)
