"""`dr catalog import` of a large manifest shows its progress on a terminal, not in a pipe."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from dr.catalog import Catalog
from dr.model.sets import BackupSet
from tests.catalog.test_import_writer import START, _manifest, _rows


def _workspace(tmp_path: Path) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "dr", "-w", str(ws), "init"], check=True,
                   capture_output=True)  # fmt: skip
    with Catalog.open(ws / "catalog.sqlite") as cat:
        for db in range(2):
            cat.register_set(BackupSet(name=f"ex{db}", host="SRV", type="exchange"), at=START)
        cat.register_set(BackupSet(name="ss", host="DC1", type="system-state"), at=START)
    manifest = _manifest(tmp_path / "history.csv", _rows(days=560))
    assert manifest.stat().st_size >= 4 << 20
    return ws, manifest


def test_a_large_import_draws_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    ws, manifest = _workspace(tmp_path)
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "DR_WORKSPACE": str(ws), "DR_CATALOG_WRITER": "inline"}
    proc = subprocess.Popen([sys.executable, "-m", "dr", "catalog", "import", str(manifest)],
                            stdout=subprocess.PIPE, stderr=follower, env=env)  # fmt: skip
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=300)
    os.close(leader)
    assert proc.returncode == 0, seen.decode(errors="replace")
    assert b"reading history.csv" in seen
    assert b"MB" in seen or b"%" in seen
    assert b"imported" in out and b"runs" in out


def test_through_a_pipe_it_prints_only_the_report(tmp_path: Path) -> None:
    ws, manifest = _workspace(tmp_path)
    env = {**os.environ, "DR_WORKSPACE": str(ws), "DR_CATALOG_WRITER": "inline"}
    done = subprocess.run([sys.executable, "-m", "dr", "catalog", "import", str(manifest)],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "reading" not in done.stderr and done.stdout.startswith("imported ")
