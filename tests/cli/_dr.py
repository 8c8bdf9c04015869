"""Running the real `dr` entry point in a subprocess, for the catalog / set / retention CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def dr(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DR_WORKSPACE": str(ws), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env, check=False
    )


def init(ws: Path) -> None:
    out = dr(ws, "init", "--inventory", str(ROOT / "examples" / "estate.yaml"))
    assert out.returncode == 0, out.stderr
