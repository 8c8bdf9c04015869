"""`dr store` as a person and a script meet it: readable statistics, and where the
repository passphrase comes from (a flag, the environment, a file, a command, a prompt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def stats(
    tmp_path: Path, env: dict[str, str], *before: str, json_out: bool = False
) -> subprocess.CompletedProcess[str]:
    """`dr [BEFORE...] store stats` on the fixture's repository."""
    args = [*before, "store", "stats", "--repo", str(tmp_path / "repo")]
    return dr80(tmp_path / "ws", *args, *(["--json"] if json_out else []), env=env)


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
    raw = stats(tmp_path, {**home, "DR_PASSPHRASE": PASS}, json_out=True)
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
    assert "390.6 KiB (400,000 bytes)" in out.stdout


def test_no_passphrase_and_no_terminal_says_how_to_give_one(
    tmp_path: Path, home: dict[str, str]
) -> None:
    out = stats(tmp_path, home)  # stdin is a pipe, nothing in the environment
    assert out.returncode == 2, out.stderr
    assert "Aborted" not in out.stderr and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "E2300 no repository passphrase was given" in line
    for way in ("DR_PASSPHRASE", "DR_PASSWORD_FILE", "DR_PASSWORD_COMMAND", "--password-file"):
        assert way in line
    as_json = stats(tmp_path, home, json_out=True)
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["error"]["code"] == "E2300"


def test_password_file_flag_outranks_the_environment(tmp_path: Path, home: dict[str, str]) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASS + "\n", encoding="utf-8")
    env = {**home, "DR_PASSPHRASE": "not it", "DR_PASSWORD_COMMAND": "false"}
    out = stats(tmp_path, env, "--password-file", str(secret))
    assert out.returncode == 0, out.stderr
    assert stats(tmp_path, env).returncode == 6  # without it: the wrong $DR_PASSPHRASE


def test_password_file_and_command_from_the_environment(
    tmp_path: Path, home: dict[str, str]
) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASS + "\n", encoding="utf-8")
    by_file = stats(tmp_path, {**home, "DR_PASSWORD_FILE": str(secret)})
    assert by_file.returncode == 0, by_file.stderr
    by_command = stats(tmp_path, {**home, "DR_PASSWORD_COMMAND": f"cat {secret}"})
    assert by_command.returncode == 0, by_command.stderr
    assert by_file.stdout == by_command.stdout
    assert PASS not in by_file.stdout + by_file.stderr + by_command.stdout + by_command.stderr


def test_a_failing_command_is_named_not_shown(tmp_path: Path, home: dict[str, str]) -> None:
    helper = tmp_path / "helper.py"
    helper.write_text("print('hunter2-from-helper'); raise SystemExit(4)\n", encoding="utf-8")
    out = stats(tmp_path, {**home, "DR_PASSWORD_COMMAND": f"{sys.executable} {helper}"})
    assert out.returncode == 2
    assert "DR_PASSWORD_COMMAND" in out.stderr and "exit status 4" in out.stderr
    assert "hunter2-from-helper" not in out.stdout + out.stderr


def test_a_wrong_passphrase_says_where_it_came_from(tmp_path: Path, home: dict[str, str]) -> None:
    wrong = tmp_path / "old-passphrase"
    wrong.write_text("an old passphrase\n", encoding="utf-8")
    out = stats(tmp_path, {**home, "DR_PASSWORD_FILE": str(wrong)})
    assert out.returncode == 6 and "E6200" in out.stderr
    assert f"$DR_PASSWORD_FILE {wrong}" in " ".join(out.stderr.split())
    assert "an old passphrase" not in out.stderr + out.stdout


def test_init_takes_the_passphrase_from_a_file_without_asking_twice(tmp_path: Path) -> None:
    keys = {"DR_KEY_DIR": str(tmp_path / "keys")}
    secret = tmp_path / "passphrase"
    secret.write_text(PASS + "\n", encoding="utf-8")
    init = ["--password-file", str(secret), "store", "init", str(tmp_path / "repo")]
    made = dr80(tmp_path / "ws", *init, env=keys)
    assert made.returncode == 0, made.stderr
    assert stats(tmp_path, {**keys, "DR_PASSPHRASE": PASS}).returncode == 0
