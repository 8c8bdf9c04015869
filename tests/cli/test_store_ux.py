"""`dr store` as a person and a script meet it: readable statistics, and where the
repository passphrase comes from (a flag, the environment, a file, a command, a prompt)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli._dr import dr80

PASS = "correct horse battery staple"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A key directory of its own; the repository is created with PASS."""
    env = {"DR_KEY_DIR": str(tmp_path / "keys")}
    made = dr80(
        tmp_path / "ws", "store", "init", str(tmp_path / "repo"), env={**env, "DR_PASSPHRASE": PASS}
    )
    assert made.returncode == 0, made.stderr
    return env


def stats(tmp_path: Path, env: dict[str, str], *extra: str):  # type: ignore[no-untyped-def]
    return dr80(
        tmp_path / "ws", *extra, "store", "stats", "--repo", str(tmp_path / "repo"), env=env
    )


def test_stats_has_labels_and_says_na_for_an_empty_repository(
    tmp_path: Path, home: dict[str, str]
) -> None:
    out = stats(tmp_path, {**home, "DR_PASSPHRASE": PASS})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("backup sets ") for line in lines)
    assert any(line.startswith("original size ") and "0 bytes" in line for line in lines)
    assert "n/a" in next(line for line in lines if line.startswith("original : stored"))
    assert "None" not in out.stdout and "_" not in out.stdout.replace(str(tmp_path), "")
    raw = dr80(tmp_path / "ws", "store", "stats", "--repo", str(tmp_path / "repo"), "--json",
               env={**home, "DR_PASSPHRASE": PASS})  # fmt: skip
    data = json.loads(raw.stdout)
    assert data["ratio"] is None and data["original_bytes"] == 0 and "super_blocks" in data


def test_stats_shows_the_real_ratio(tmp_path: Path, home: dict[str, str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    block = os.urandom(200_000)
    (src / "a.bin").write_bytes(block)
    (src / "b.bin").write_bytes(block)  # deduplicated: stored once
    env = {**home, "DR_PASSPHRASE": PASS}
    ws = tmp_path / "ws"
    backup = dr80(
        ws, "backup", "run", "files", "--from", str(src), "--repo", str(tmp_path / "repo"), env=env
    )
    assert backup.returncode == 0, backup.stderr
    out = stats(tmp_path, env)
    ratio = next(line for line in out.stdout.splitlines() if line.startswith("original : stored"))
    assert ratio.split()[-3:] == ["2.00", ":", "1"]
    assert "390.62K (400,000 bytes)" in out.stdout
