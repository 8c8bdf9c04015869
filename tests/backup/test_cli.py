"""`dr backup run SET` on the host, through the real entry point in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from dr.lab.hostsim import HostSim
from dr.lab.winrs import WinRSServer
from dr.model.inventory import Inventory

from .conftest import PASSPHRASE, PASSWORD, ROOT, USER


def _dr(ws: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "DR_WORKSPACE": str(ws), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=full, check=False
    )


def _workspace(tmp_path: Path, estate_file: Path, port: int, env: dict[str, str]) -> Path:
    ws = tmp_path / "ws"
    assert _dr(ws, env, "init", "--inventory", str(estate_file)).returncode == 0
    out = _dr(ws, env, "store", "init", str(tmp_path / "repo"))
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load((ws / "config.yaml").read_text())
    config["hosts"] = {"EX2016": {"kind": "winrm", "host": "127.0.0.1", "port": port,
                                  "scheme": "http", "auth": "basic", "allow_plaintext": True,
                                  "operation_timeout": 2, "read_timeout": 10}}  # fmt: skip
    (ws / "config.yaml").write_text(yaml.safe_dump(config))
    return ws


def _env(tmp_path: Path, password: str) -> dict[str, str]:
    return {
        "DR_KDF_PROFILE": "fast", "DR_KEY_DIR": str(tmp_path / "keys"),
        "DR_PASSPHRASE": PASSPHRASE, "DR_WINRM_USER": USER, "DR_WINRM_PASSWORD": password,
    }  # fmt: skip


def _estate_with_circular_logging(tmp_path: Path) -> Path:
    text = (ROOT / "examples" / "estate.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "        log_prefix: E00\n        log_path: F:\\ExchangeLogs\\DB01\n",
        "        log_prefix: E00\n        log_path: F:\\ExchangeLogs\\DB01\n"
        "        circular_logging: true\n",
    )
    for line in (
        "      - {every: minutes, minutes: 15, backup_type: incremental}\n",
        '      - {every: week, weekday: wed, at: "13:00", backup_type: differential}\n',
    ):
        text = text.replace(line, "")  # the inventory refuses log schedules of such a stream
    path = tmp_path / "estate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_then_refused_incremental(tmp_path: Path, estate: Inventory) -> None:
    estate_file = _estate_with_circular_logging(tmp_path)
    sim = HostSim(tmp_path / "host", estate.server("EX2016"))
    env = _env(tmp_path, PASSWORD)
    with WinRSServer(sim, USER, PASSWORD) as server:
        ws = _workspace(tmp_path, estate_file, server.port, env)
        out = _dr(ws, env, "backup", "run", "ex2016-exchange", "--type", "full", "--json")
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stdout)
        assert summary["backup_type"] == "full" and summary["files"] == 12
        assert PASSWORD not in out.stdout + out.stderr
        seen = len(server.commands)
        out = _dr(ws, env, "backup", "run", "ex2016-exchange", "--type", "incremental")
        assert out.returncode == 4, out.stderr
        assert "E4100" in out.stderr and "Traceback" not in out.stderr
        assert len(server.commands) == seen  # refused before any command was sent


def test_wrong_password_exits_9_with_one_line(tmp_path: Path, estate: Inventory) -> None:
    sim = HostSim(tmp_path / "host", estate.server("EX2016"))
    env = _env(tmp_path, "not-the-password")
    with WinRSServer(sim, USER, PASSWORD) as server:
        ws = _workspace(tmp_path, ROOT / "examples" / "estate.yaml", server.port, env)
        out = _dr(ws, env, "backup", "run", "ex2016-exchange", "--type", "full")
        assert out.returncode == 9, out.stderr
        # the lab's plain-http + basic choice is warned about; the error itself is one line
        errors = [line for line in out.stderr.splitlines() if line.startswith("error ")]
        assert len(errors) == 1 and "E8610" in errors[0], out.stderr
        assert "Traceback" not in out.stderr and PASSWORD not in out.stderr
        assert not server.commands
