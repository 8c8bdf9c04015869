"""`dr lab` as a user meets it: clear refusals that leave nothing half made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _dr(tmp: Path, *args: str, passphrase: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env.update({"DR_WORKSPACE": str(tmp / "ws"), "DR_KEY_DIR": str(tmp / "keys"),
                "DR_KDF_PROFILE": "fast", "COLUMNS": "200"})  # fmt: skip
    if passphrase:
        env["DR_PASSPHRASE"] = "lab cli test"
    return subprocess.run([sys.executable, "-m", "dr", *args], capture_output=True, text=True,
                          env=env, check=False, stdin=subprocess.DEVNULL)  # fmt: skip


def test_lab_up_without_a_passphrase_says_so_and_makes_nothing(tmp_path: Path) -> None:
    out = _dr(tmp_path, "lab", "up", "--days", "1", "--inventory",
              str(ROOT / "examples" / "estate.yaml"))  # fmt: skip
    assert out.returncode == 2 and "DR_PASSPHRASE" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "ws").exists()


def test_lab_commands_refuse_bad_requests_in_one_line(tmp_path: Path) -> None:
    up = _dr(tmp_path, "lab", "up", "--days", "0.25", "--inventory",
             str(ROOT / "examples" / "estate.yaml"), passphrase=True)  # fmt: skip
    assert up.returncode == 0, up.stderr
    for args, code, said in [
        (("lab", "verify"), 2, "give --db or --mailbox"),
        (("lab", "break", "melt-server", "--db", "DB01"), 2, "unknown fault"),
        (("lab", "truth", "--db", "NoSuchDB"), 2, "no database"),
        (("lab", "break", "delete-log", "--db", "DB01"), 2, "say which log"),
        (("lab", "break", "crash-store"), 2, "--db DB"),
        (("lab", "break", "purge-messages"), 2, "--mailbox ALIAS"),
        (
            ("lab", "verify", "--db", "DB01", "--deleted-by", "2026-11-02T07:00Z"),
            2,
            "--deleted-by goes with --mailbox",
        ),
    ]:
        out = _dr(tmp_path, *args, passphrase=True)
        assert out.returncode == code and said in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    store = ("--host", "EX2003", "--store", "Mailbox Store (EX2003)")
    restore = ("lab", "operator", "ntbackup-restore", "--host", "EX2003", "--temp", "T:\\DRTemp\\X")
    for args, said in [
        ((*restore, "--bkf", "T:\\nowhere.bkf"), "could not be found"),
        (("lab", "operator", "open-mailbox", "--host", "EX2003", "--store", "No Such Store"),
         "couldn't be found"),
        (("lab", "operator", "mount-store", "--host", "NOPE", "--store", "x"), "no Exchange"),
    ]:  # fmt: skip
        out = _dr(tmp_path, *args, passphrase=True)
        assert out.returncode == 2 and said in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    assert _dr(tmp_path, "lab", "operator", "dismount-store", *store).returncode == 0
    out = _dr(tmp_path, "lab", "operator", "open-mailbox", *store)
    assert out.returncode == 2 and "not mounted" in out.stderr
    assert _dr(tmp_path, "lab", "operator", "mount-store", *store).returncode == 0
    out = _dr(tmp_path, "lab", "operator", "open-mailbox", *store)
    assert out.returncode == 0 and "is mounted" in out.stdout, out.stderr
    for command in ("ntbackup-restore", "dismount-store", "allow-restore", "mount-store"):
        shown = _dr(tmp_path, "lab", "operator", command, "--help")
        assert "Example:" in shown.stdout and f"dr lab operator {command}" in shown.stdout
    truth = _dr(tmp_path, "lab", "truth", "--db", "DB01", "--json", passphrase=True)
    assert truth.returncode == 0 and '"messages"' in truth.stdout
