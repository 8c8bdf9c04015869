"""The local transport: real subprocesses on this host."""

from __future__ import annotations

import base64
import os
import stat
import sys
from pathlib import Path

import pytest

from engine.errors import TransportError
from engine.transports.base import Command
from engine.transports.local import LocalTransport

from .test_contract import _alive

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="posix shell tests")


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child"
    script = f"sleep 60 & echo $! > '{pidfile}'; wait"
    result = LocalTransport().run(Command(script, shell="posix"), timeout=1.0)
    assert result.timed_out
    assert not _alive(int(pidfile.read_text()))


def test_big_output_on_both_streams_does_not_deadlock() -> None:
    script = "head -c 2000000 /dev/zero | tr '\\0' o; head -c 2000000 /dev/zero | tr '\\0' e >&2"
    result = LocalTransport().run(Command(script, shell="posix"), timeout=60)
    assert (len(result.stdout), len(result.stderr)) == (2_000_000, 2_000_000)
    assert set(result.stdout) == {ord("o")} and set(result.stderr) == {ord("e")}


def test_env_is_merged_with_the_orchestrators() -> None:
    command = Command('printf "%s|%s" "$DR_STEP" "$HOME"', shell="posix", env={"DR_STEP": "s1"})
    result = LocalTransport().run(command, timeout=10)
    assert result.stdout == f"s1|{os.environ['HOME']}".encode()


def test_signal_exit_is_negative() -> None:
    result = LocalTransport().run(Command("kill -TERM $$", shell="posix"), timeout=10)
    assert result.exit_code == -15
    assert not result.timed_out


def test_powershell_missing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TransportError, match="PowerShell is not installed"):
        LocalTransport().run(Command("Write-Output 1"), timeout=5)


def test_powershell_gets_the_script_encoded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stand-in ``pwsh`` prints its arguments: the script must arrive as UTF-16LE base64."""
    fake = tmp_path / "pwsh"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    script = "Get-Item -LiteralPath 'C:\\it''s'; Write-Output 'ü'"
    result = LocalTransport().run(Command(script), timeout=10)
    args = result.stdout.decode().splitlines()
    assert args[:3] == ["-NoProfile", "-NonInteractive", "-EncodedCommand"]
    assert base64.b64decode(args[3]).decode("utf-16-le") == script


def test_cmd_is_refused_off_windows() -> None:
    with pytest.raises(TransportError, match=r"cmd\.exe"):
        LocalTransport().run(Command("dir", shell="cmd"), timeout=5)


def test_put_and_fetch_copy_whole_files(tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(os.urandom(100_000))
    dest = tmp_path / "deep" / "dir" / "a.bin"
    LocalTransport().put(source, str(dest))
    assert dest.read_bytes() == source.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["a.bin"]


def test_missing_source_is_a_transport_error(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="does not exist"):
        LocalTransport().fetch(str(tmp_path / "missing"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
