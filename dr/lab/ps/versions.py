"""Which Windows PowerShell a Windows version ships with, and how PowerShell versions compare.

The defaults come from ``windows_server_default_powershell`` in
``dr/lab/data/cmdlets/core-cmdlets.json`` (PowerShell-Docs: PowerShell-Support-Lifecycle.md and
Windows-PowerShell-System-Requirements.md). That table starts at Windows Server 2008; the two
older entries below are added here:

- Windows 2000: no Windows PowerShell at all. Windows PowerShell 1.0 was released for Windows XP
  SP2, Windows Server 2003 SP1 and later, and the Windows Management Framework that carries
  Windows PowerShell 2.0 lists Windows XP, Windows Server 2003, Windows Vista and Windows Server
  2008 (Microsoft KB 968929, "Windows Management Framework (Windows PowerShell 2.0, WinRM 2.0,
  and BITS 4.0)", captured at http://smallbusiness.support.microsoft.com/nl-nl/kb/968929).
  Windows 2000 is in neither list.
- Windows Server 2003 / 2003 R2: none by default; 2.0 when the Windows Management Framework
  (KB 968929) is installed. A host records that with ``powershell: "2.0"`` in the inventory;
  :func:`default_powershell` gives the default only.
- Windows Server 2008: none by default (1.0 is an optional feature; the table says so).

Versions are strings as ``$PSVersionTable.PSVersion`` prints them: ``"2.0"``, ``"5.1"``, ``"7.4"``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "cmdlets"

# Facts the PowerShell-Docs table does not cover (sources in the module docstring).
_OLDER_WINDOWS: dict[str, str | None] = {"2000": None, "2003": None, "2003R2": None}
_WINDOWS_NAME = re.compile(r"^Windows Server (\d{4})(?: (R2))?$")


@cache
def load(name: str) -> Any:
    """One of the JSON files under ``dr/lab/data/cmdlets/`` (parsed once per process)."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def version_key(version: str) -> tuple[int, ...]:
    """``"5.1"`` → (5, 1); ``"7"`` → (7, 0); ``"<=2.0"`` → (2, 0) (the bound is taken)."""
    numbers = re.findall(r"\d+", version)
    if not numbers:
        raise ValueError(f"{version!r} is not a PowerShell version")
    parts = tuple(int(n) for n in numbers[:2])
    return parts if len(parts) == 2 else (parts[0], 0)


def at_least(have: str, wanted: str) -> bool:
    """Whether PowerShell ``have`` is ``wanted`` or newer."""
    return version_key(have) >= version_key(wanted)


def normalize_windows(windows: str) -> str:
    """``"2008 R2"``, ``"2008r2"``, ``"Windows Server 2008 R2"`` → ``"2008R2"``."""
    text = windows.strip()
    match = _WINDOWS_NAME.match(text)
    if match:
        return match.group(1) + ("R2" if match.group(2) else "")
    return re.sub(r"\s+", "", text).upper().replace("SERVER", "")


@cache
def _defaults() -> dict[str, str | None]:
    table: dict[str, str | None] = dict(_OLDER_WINDOWS)
    for row in load("core-cmdlets.json")["windows_server_default_powershell"]:
        table[normalize_windows(row["windows"])] = row["default"]
    return table


def default_powershell(windows: str | None) -> str | None:
    """The Windows PowerShell a fresh install of ``windows`` has, or None (none / unknown)."""
    if windows is None:
        return None
    return _defaults().get(normalize_windows(windows))


def known_windows(windows: str) -> bool:
    """Whether the table has an entry for ``windows`` (2025's default is not recorded)."""
    return normalize_windows(windows) in _defaults()


# Windows versions on which the Windows Management Framework 2.0 (KB 968929) installs
# Windows PowerShell 2.0 although none ships: a checker assumes it is there (2.0 at most).
_WMF2_INSTALLABLE = {"2003", "2003R2", "2008"}


def assumed_powershell(windows: str | None) -> str | None:
    """The default PowerShell, or 2.0 where only the WMF 2.0 update provides one (None: none)."""
    found = default_powershell(windows)
    if found is None and windows is not None and normalize_windows(windows) in _WMF2_INSTALLABLE:
        return "2.0"
    return found


# The least Windows PowerShell an Exchange server has, whatever its Windows ships: its
# Exchange Management Shell is Windows PowerShell (Exchange 2007 reference pages, e.g.
# Get-MailboxDatabase, bb124924(v=exchg.80), are cmdlets of that shell), and Exchange 2010
# is managed through remote PowerShell (Microsoft KB 2827611, "develop apps by using
# Exchange PowerShell"), which is PowerShell 2.0 remoting (New-PSSession, "Applies To:
# Windows PowerShell 2.0", dd347668(v=technet.10)). An inference, not a prerequisite page: no
# Microsoft Exchange 2007 / 2010 prerequisites page was found in the corpora. 2013 and
# later are not raised (their Windows versions ship what the table says, or the inventory
# records more).
_EXCHANGE_FLOOR: dict[int, str] = {2007: "1.0", 2010: "2.0"}


def host_powershell(
    windows: str | None, recorded: str | None = None, exchange: int | None = None
) -> str | None:
    """A host's Windows PowerShell: what the inventory records (``Server.powershell``, e.g.
    WMF 2.0 on 2003), else what its Windows ships (:func:`default_powershell`) raised to
    what its Exchange version implies; None: none, or a Windows the table does not know."""
    if recorded:
        return recorded
    found = default_powershell(windows)
    floor = _EXCHANGE_FLOOR.get(exchange or 0)
    if floor and (found is None or version_key(found) < version_key(floor)):
        return floor
    return found
