"""Hostile values reach a shell only through the quote functions, and arrive as data.

Each value is rendered into a command with engine.render's quoting and run for real: by
``/bin/sh`` through the local transport, and by the loopback WinRS host (which parses the
PowerShell literal it received and echoes it) through the winrm transport. If a value
escaped its quotes, the extra statement would run (sh: a marker file appears; the lab
host: "not recognized", exit 1) and the echo would differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr.lab.pslite import PowerShellLite
from engine.render import quote_posix, quote_powershell
from engine.transports.base import Command
from engine.transports.local import LocalTransport

from .conftest import MakeTransport

HOSTILE = [
    "'; Remove-Item C:\\ -Recurse #",
    "$(Remove-Item C:\\ -Recurse)",
    "`$env:PATH` `n `r",
    "line one\nRemove-Item C:\\\r\nexit 9",
    "‘; Remove-Item C:\\ #’",
    "’‚‛''",
    '" & del /s /q C:\\ & "',
    "%COMSPEC% !x! ^& |",
    "$(touch MARKER) `touch MARKER` ; touch MARKER",
    "C:\\it's; Remove-Item x",
    "",
]
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_arrive_as_data_through_sh(value: str, tmp_path: Path) -> None:
    script = f"cd {quote_posix(str(tmp_path))} && printf '%s' {quote_posix(value)}"
    result = LocalTransport().run(Command(script, shell="posix"), timeout=10)
    assert result.ok, result.stderr
    assert result.stdout == value.encode()
    assert not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_arrive_as_data_through_winrm(
    value: str, make_winrm: MakeTransport, interpreter: PowerShellLite
) -> None:
    script = f"Write-Output {quote_powershell(value)}"
    result = make_winrm().run(Command(script), timeout=10)
    assert (result.exit_code, result.stderr) == (0, b"")
    assert result.stdout == value.encode() + b"\r\n"
    assert interpreter.scripts[-1] == script


@settings(max_examples=60, deadline=None)
@given(value=TEXT)
def test_any_text_round_trips_through_sh(value: str) -> None:
    result = LocalTransport().run(
        Command(f"printf '%s' {quote_posix(value)}", shell="posix"), timeout=10
    )
    assert result.stdout == value.encode()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=TEXT)
def test_any_text_round_trips_through_winrm(value: str, make_winrm: MakeTransport) -> None:
    result = make_winrm().run(Command(f"Write-Output {quote_powershell(value)}"), timeout=10)
    assert result.stdout == value.encode() + b"\r\n"
