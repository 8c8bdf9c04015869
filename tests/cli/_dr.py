"""Running the real `dr` entry point in a subprocess, for the catalog / set / retention CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Where a passphrase could come from: a test that means to give one sets it itself.
PASSPHRASE_VARS = (
    "DR_PASSPHRASE",
    "DR_PASSWORD_FILE",
    "DR_PASSWORD_COMMAND",
    "DR_SECRET_REPOSITORY_PASSPHRASE",
)


def dr(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DR_WORKSPACE": str(ws), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env, check=False
    )


def dr80(
    ws: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`dr` as a script meets it: 80 columns, output through a pipe, stdin not a terminal
    (empty unless given), and no passphrase in the environment unless ``env`` has one."""
    base = {k: v for k, v in os.environ.items() if k not in PASSPHRASE_VARS}
    full = {**base, "DR_WORKSPACE": str(ws), "COLUMNS": "80", "DR_KDF_PROFILE": "fast"}
    return subprocess.run(
        [sys.executable, "-m", "dr", *args],
        capture_output=True,
        text=True,
        env={**full, **(env or {})},
        input=stdin if stdin is not None else "",
        check=False,
    )


def init(ws: Path) -> None:
    out = dr(ws, "init", "--inventory", str(ROOT / "examples" / "estate.yaml"))
    assert out.returncode == 0, out.stderr
