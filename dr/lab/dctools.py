"""What a lab domain controller runs to be restored: bcdedit, wbadmin, ntdsutil, a restart.

Each is a native tool (or cmdlet) of :class:`dr.lab.dchost.DomainControllerHost`, checked
against Microsoft's pages (docs/runbooks.md cites them):

* ``bcdedit /set {current} safeboot dsrepair`` — the next start is into Directory Services
  Restore Mode; ``bcdedit /deletevalue {current} safeboot`` undoes it; ``bcdedit /enum
  {current}`` lists the entry (with ``safeboot DsRepair`` while it is set);
* ``Restart-Computer`` / ``shutdown /r`` — the machine restarts (:func:`boot`);
* ``wbadmin start systemstatebackup -backupTarget:D: [-quiet]`` — a system state backup
  on the volume, under ``WindowsImageBackup\\<COMPUTER>\\SystemStateBackup``, holding the
  directory as this domain controller holds it; ``wbadmin get versions [-backupTarget:]
  [-machine:]`` lists the versions in wbadmin's format; ``wbadmin start systemstaterecovery
  -version:MM/DD/YYYY-HH:MM -backupTarget:D: -machine:DC [-authsysvol] -quiet`` restores
  one, by its own version identifier only, in DSRM only;
* ``ntdsutil "popups off" "activate instance ntds" "authoritative restore"
  "restore object DN" quit quit`` — marks objects of the restored copy authoritative: their
  versions raised by 100000 for each day since the backup.

What the lab does not model: the files of the system state besides the directory and the
SYSVOL version, NTBackup on Windows 2003 domain controllers, back-links across domains (the
LDIF files are named, not written), and the restartable AD DS service of 2008 and later.
"""

from __future__ import annotations

import copy as _copy
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from dr.lab.replication import merge, raise_version

__all__ = ["CMDLETS", "NATIVES", "boot"]

BANNER = (
    "wbadmin 1.0 - Backup command-line tool\n"
    "(C) Copyright Microsoft Corporation. All rights reserved.\n\n"
)
IDENTIFIER = re.compile(r"^\d{2}/\d{2}/\d{4}-\d{2}:\d{2}$")
VERSION_INCREASE_PER_DAY = 100000


def _result(text: str, code: int = 0) -> Any:
    from dr.lab.ps import NativeResult

    return NativeResult(stdout=text.replace("\n", "\r\n"), exit_code=code)


# -- the boot ---------------------------------------------------------------------------------


def boot(host: Any) -> None:
    """The domain controller has just started: into DSRM if bcdedit says so (its directory
    out of replication: a copy of its own), else normally, replicating its copy."""
    state = host.state
    state.console = ""
    if state.safeboot == "dsrepair":
        if state.mode != "dsrm" and state.ntds == "ok" and state.copy is None:
            state.copy = host.directory_store.snapshot()
        state.mode = "dsrm"
        state.going_down = time.time()
        state.history.append(f"{host.clock().isoformat()} started in DSRM")
        return
    state.mode = "normal"
    state.history.append(f"{host.clock().isoformat()} started normally")
    if state.ntds != "ok" or state.copy is None:
        return
    restored = state.restored or {}
    primary = bool(restored.get("authsysvol"))
    if host.partners():
        merged = merge(state.copy, host.directory_store.snapshot(), own_sysvol=primary)
        state.sysvol_ready = True
    else:  # nobody to replicate with: this copy is the directory; SYSVOL only if primary
        merged = state.copy
        state.sysvol_ready = primary or not restored
    host.directory_store.replace(merged)
    state.copy, state.restored = None, None


def restart_computer(call: Any) -> Iterator[Any]:
    """Restart-Computer [-Force]: the local machine restarts once the command ends."""
    call.host.restart()
    return
    yield


def _shutdown(argv: list[str], host: Any, stdin: bytes = b"") -> Any:
    flags = {a.lower() for a in argv}
    if "/r" not in flags:
        return _result("dr lab: only `shutdown /r` (restart) is modelled\n", 1)
    host.restart()
    return _result("")


def get_service(call: Any) -> Iterator[Any]:
    """Get-Service on a domain controller: NTDS, DNS and Netlogon run when it started
    normally with a working directory; in DSRM, or with the database damaged, they are
    stopped."""
    from dr.lab.ps.values import PSObject, enumerate_value, to_str

    running = call.host.state.mode == "normal" and call.host.state.ntds == "ok"
    known = {"ntds": "NTDS", "dns": "DNS", "netlogon": "Netlogon", "winrm": "WinRM"}
    for name in (to_str(n) for n in enumerate_value(call.params.get("Name"))):
        found = known.get(name.lower())
        if found is None:
            call.error(
                f"Cannot find any service with service name '{name}'.",
                category="ObjectNotFound",
                target=name,
            )
            continue
        status = "Running" if running or found == "WinRM" else "Stopped"
        yield PSObject.of("System.ServiceProcess.ServiceController", Name=found, Status=status)


# -- bcdedit ----------------------------------------------------------------------------------


def _bcdedit(argv: list[str], host: Any, stdin: bytes = b"") -> Any:
    low = [a.lower() for a in argv]
    ok = "The operation completed successfully.\n"
    if low[:1] == ["/set"] and low[1:] == ["{current}", "safeboot", "dsrepair"]:
        host.state.safeboot = "dsrepair"
        return _result(ok)
    if low[:1] == ["/deletevalue"] and low[1:] == ["{current}", "safeboot"]:
        if not host.state.safeboot:
            return _result(
                "An error occurred while attempting to delete the specified data "
                "element.\nElement not found.\n",
                1,
            )
        host.state.safeboot = ""
        return _result(ok)
    if low[:1] == ["/enum"]:
        lines = [
            "Windows Boot Loader",
            "-" * 19,
            "identifier              {current}",
            "device                  partition=C:",
            "path                    \\Windows\\system32\\winload.exe",
            "description             Windows Server 2016",
        ]
        if host.state.safeboot:
            lines.append("safeboot                DsRepair")
        return _result("\n".join(lines) + "\n")
    return _result(
        'The parameter is incorrect.\nRun "bcdedit /?" for command line assistance.\n', 1
    )


# -- wbadmin ----------------------------------------------------------------------------------


def _switches(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    words, switches = [], {}
    for arg in argv:
        if arg.startswith("-") or arg.startswith("/"):
            key, _, value = arg[1:].partition(":")
            switches[key.lower()] = value
        else:
            words.append(arg.lower())
    return words, switches


def _wbadmin(argv: list[str], host: Any, stdin: bytes = b"") -> Any:
    words, switches = _switches(argv)
    verbs = {
        ("start", "systemstatebackup"): _ssb,
        ("get", "versions"): _versions,
        ("start", "systemstaterecovery"): _ssr,
    }
    verb = verbs.get(tuple(words[:2]))  # type: ignore[arg-type]
    if verb is None:
        return _result(
            BANNER + "ERROR - Command not recognized. dr lab models start "
            "systemstatebackup, get versions and start systemstaterecovery.\n",
            1,
        )
    return verb(host, switches, stdin)


def _volume(host: Any, target: str) -> str | None:
    """``D:`` (or ``D:\\``) when it is a volume of this machine, else None."""
    match = re.fullmatch(r"([A-Za-z]):\\?", target)
    if not match or not host.fs.host_path(match.group(1) + ":\\").is_dir():
        return None
    return match.group(1).upper() + ":"


def _backups(host: Any, volume: str, machine: str) -> list[dict[str, Any]]:
    folder = host.fs.host_path(f"{volume}\\WindowsImageBackup\\{machine}\\SystemStateBackup")
    if not folder.is_dir():
        return []
    found = []
    for version in sorted(folder.glob("*/version.json")):
        data = json.loads(version.read_text(encoding="utf-8"))
        found.append({**data, "volume": volume, "folder": version.parent})
    return found


def _ssb(host: Any, switches: dict[str, str], stdin: bytes) -> Any:
    target = switches.get("backuptarget")
    if not target:
        return _result(
            BANNER + "ERROR - The parameter -backupTarget is missing. Specify the "
            "volume to store the system state backup on.\n",
            1,
        )
    volume = _volume(host, target)
    if volume is None:
        return _result(
            BANNER + f"ERROR - The backup target {target} is not a volume of this computer.\n", 1
        )
    if volume == "C:":
        return _result(BANNER + "ERROR - The location for backup is a critical volume.\n", 1)
    if host.state.mode != "normal" or host.state.ntds != "ok":
        return _result(
            BANNER + "ERROR - The directory service is not running: the system "
            "state of this domain controller cannot be backed up.\n",
            1,
        )
    at: datetime = host.clock()
    identifier = at.strftime("%m/%d/%Y-%H:%M")
    folder = host.fs.host_path(
        f"{volume}\\WindowsImageBackup\\{host.name}\\SystemStateBackup\\Backup {at:%Y-%m-%d %H%M%S}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "directory.json").write_text(
        json.dumps(host.view(), sort_keys=True), encoding="utf-8"
    )
    (folder / "version.json").write_text(
        json.dumps({"identifier": identifier, "at": at.isoformat(), "machine": host.name}),
        encoding="utf-8",
    )
    when = f"{at.month}/{at.day}/{at.year} {at:%I:%M %p}".replace(" 0", " ")
    return _result(
        BANNER + f"Starting to back up the system state [{when}]...\n"
        "Retrieving volume information...\n"
        f"This will back up the system state from volume(s) Local Disk(C:) to {volume}.\n"
        "Creating a shadow copy of the volumes specified for backup...\n"
        "Identifying system state files to back up (This might take a few minutes)...\n"
        "Found (1234) files.\nThe backup operation successfully completed.\n"
        "Summary of the backup operation:\n------------------\n\n"
        f"The backup of the system state successfully completed [{when}].\n"
    )


def _find_versions(host: Any, switches: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    """The versions wbadmin sees, and an error to print instead when it sees none."""
    target, machine = switches.get("backuptarget"), switches.get("machine") or host.name
    if target:
        volume = _volume(host, target)
        if volume is None:
            return [], f"ERROR - The backup location {target} could not be found.\n"
        return _backups(host, volume, machine), ""
    if not host.state.catalog:
        return [], (
            "ERROR - The backup catalog on this computer is missing or damaged. Use "
            "-backupTarget to name the location of the backups.\n"
        )
    found = [b for letter in _letters(host) for b in _backups(host, letter, machine)]
    return found, ""


def _letters(host: Any) -> list[str]:
    return sorted(
        p.name.upper() + ":" for p in host.root.iterdir() if p.is_dir() and len(p.name) == 1
    )


def _versions(host: Any, switches: dict[str, str], stdin: bytes) -> Any:
    found, error = _find_versions(host, switches)
    if error:
        return _result(BANNER + error, 1)
    if not found:
        return _result(BANNER + "No backups were found.\n")
    blocks = []
    for b in sorted(found, key=lambda x: x["at"]):
        at = datetime.fromisoformat(b["at"])
        blocks.append(
            f"Backup time: {at.month}/{at.day}/{at.year} {at.strftime('%I:%M %p').lstrip('0')}\n"
            f"Backup location: Fixed Disk labeled {b['volume']}\n"
            f"Version identifier: {b['identifier']}\n"
            "Can recover: Volume(s), File(s), Application(s), System State\n"
            f"Snapshot ID: {{{_snapshot_id(b)}}}\n"
        )
    return _result(BANNER + "\n".join(blocks))


def _snapshot_id(backup: dict[str, Any]) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dr-lab:vss:{backup['machine']}:{backup['at']}"))


def _ssr(host: Any, switches: dict[str, str], stdin: bytes) -> Any:
    version = switches.get("version", "")
    if not IDENTIFIER.match(version):
        return _result(
            BANNER + f"ERROR - The version identifier '{version}' is not valid. "
            "Run 'wbadmin get versions' to see the version identifiers of the "
            "backups (MM/DD/YYYY-HH:MM).\n",
            1,
        )
    if switches.get("backuptarget") and not switches.get("machine"):
        return _result(
            BANNER + "ERROR - -machine is required with -backupTarget: name the "
            "computer whose backup to recover.\n",
            1,
        )
    if host.state.mode != "dsrm":
        return _result(
            BANNER + "ERROR - The system state of a domain controller can only be "
            "recovered when it is started in Directory Services Restore Mode.\n",
            1,
        )
    found, error = _find_versions(host, switches)
    if error:
        return _result(BANNER + error, 1)
    backup = next((b for b in found if b["identifier"] == version), None)
    if backup is None:
        return _result(
            BANNER + f"ERROR - No backup with version identifier {version} was "
            "found at the backup location.\n",
            1,
        )
    if "quiet" not in switches:
        answer = stdin.decode("utf-8", "replace").strip().lower()
        if answer not in ("y", "yes"):
            return _result(
                BANNER + "Do you want to start the system state recovery "
                "operation? [Y] Yes [N] No \nThe operation was canceled.\n",
                1,
            )
    return _recover(host, backup, "authsysvol" in switches)


def _recover(host: Any, backup: dict[str, Any], authsysvol: bool) -> Any:
    snapshot = json.loads((backup["folder"] / "directory.json").read_text(encoding="utf-8"))
    state = host.state
    state.copy = _copy.deepcopy(snapshot)
    state.ntds = "ok"
    state.restored = {"version": backup["identifier"], "at": backup["at"], "authsysvol": authsysvol}
    state.history.append(
        f"{host.clock().isoformat()} system state {backup['identifier']} "
        f"restored{' (SYSVOL primary)' if authsysvol else ''}"
    )
    return _result(
        BANNER + "Starting a system state recovery operation...\n"
        "Summary of the recovery operation:\n--------------------\n\n"
        "The recovery operation of the system state completed successfully.\n"
        "Restart the computer to complete the recovery of the system state.\n"
    )


# -- ntdsutil ---------------------------------------------------------------------------------


def _ntdsutil(argv: list[str], host: Any, stdin: bytes = b"") -> Any:
    session = _Ntdsutil(host)
    for command in argv:
        if not session.run(command):
            return _result("".join(session.out), 1)
    return _result("".join(session.out))


_PARENT = {"server connections": "fsmo maintenance", "fsmo maintenance": "ntdsutil",
           "authoritative restore": "ntdsutil"}  # fmt: skip


class _Ntdsutil:
    def __init__(self, host: Any) -> None:
        self.host, self.out = host, []  # type: ignore[var-annotated]
        self.popups, self.instance, self.menu = True, "", "ntdsutil"
        self.connected = ""  # roles → connections → "connect to server": the server bound
        self.needs_instance = str(host.windows) not in ("2000", "2003", "2003R2")

    def say(self, text: str) -> None:
        self.out.append(text.replace("\n", "\r\n"))

    def run(self, command: str) -> bool:
        self.say(f"{self.menu}: {command}\n")
        low = " ".join(command.lower().split())
        if low in ("quit", "q"):
            self.menu = _PARENT.get(self.menu, "")
            return True
        if self.menu == "ntdsutil":
            return self._top(low)
        if self.menu in ("fsmo maintenance", "server connections"):
            from dr.lab.fsmo import seize_command

            return seize_command(self, low)
        return self._authoritative(command, low)

    def _top(self, low: str) -> bool:
        if low == "popups off":
            self.popups = False
            return True
        if low == "popups on":
            self.popups = True
            return True
        if low == "activate instance ntds":
            self.instance = "ntds"
            self.say('Active instance set to "ntds".\n')
            return True
        if low == "roles":
            self.menu = "fsmo maintenance"
            return True
        if low == "authoritative restore":
            if self.needs_instance and not self.instance:
                self.say(
                    'Active instance not set. To set an active instance use "Activate '
                    'Instance <inst-name>".\n'
                )
                return False
            self.menu = "authoritative restore"
            return True
        self.say("Error parsing Input - Invalid Syntax.\n")
        return False

    def _authoritative(self, command: str, low: str) -> bool:
        match = re.fullmatch(r"restore (object|subtree) (.+)", command.strip(), re.IGNORECASE)
        if not match:
            self.say("Error parsing Input - Invalid Syntax.\n")
            return False
        state = self.host.state
        if state.mode != "dsrm" or state.copy is None:
            self.say(
                "Opening DIT database... Failed.\nThe directory service is running (or its "
                "database is damaged): an authoritative restore is done in Directory "
                "Services Restore Mode, after the system state is restored.\n"
            )
            return False
        if self.popups:
            self.say(
                'Opening DIT database... Done.\nA dialog box asks "Are you sure you want '
                'to perform this authoritative restore?" and waits: nothing answers it '
                'when ntdsutil is run from a script. Put "popups off" first.\n'
            )
            return False
        return self._mark(match.group(1).lower(), match.group(2).strip().strip('"'))

    def _mark(self, scope: str, dn: str) -> bool:
        state = self.host.state
        objects = state.copy["objects"]
        key = dn.lower()
        keys = [k for k in objects if k == key or (scope == "subtree" and k.endswith("," + key))]
        if key not in objects:
            self.say(
                f"Opening DIT database... Done.\nError: the object {dn} was not found in "
                "the directory database.\n"
            )
            return False
        by = VERSION_INCREASE_PER_DAY * self._days()
        for k in keys:
            raise_version(state.copy, k, by)
        stamp = self.host.clock().strftime("%Y%m%d-%H%M%S")
        self.say(
            "Opening DIT database... Done.\n\n"
            f"The current time is {self.host.clock():%m-%d-%y %H:%M.%S}.\n"
            f"Increasing attribute version numbers by {by}.\n\n"
            f"Counting records that need updating...\nRecords found: {len(keys):010d}\nDone.\n\n"
            f"Found {len(keys)} records to update.\n\nUpdating records...\n"
            f"Records remaining: 0000000000\nDone.\n\nSuccessfully updated {len(keys)} records.\n\n"
            "The following text file with a list of authoritatively restored objects has been "
            f"created in the current working directory:\n        ar_{stamp}_objects.txt\n\n"
            "Authoritative Restore completed successfully.\n\n"
        )
        state.history.append(f"{self.host.clock().isoformat()} {dn} marked authoritative (+{by})")
        return True

    def _days(self) -> int:
        """Whole days since the restored backup (at least one): ntdsutil's increase."""
        restored = self.host.state.restored or {}
        if not restored.get("at"):
            return 1
        since = self.host.clock() - datetime.fromisoformat(restored["at"])
        return max(1, since.days)


def _reg(argv: list[str], host: Any, stdin: bytes = b"") -> Any:
    """``reg add KEY /v NAME /t REG_DWORD /d N /f``: the value is recorded in the DC's
    history (the lab does not model what the registry changes; the runbook's line is run as
    typed, and a malformed one fails as reg does)."""
    low = [a.lower() for a in argv]
    if len(argv) < 2 or low[0] != "add":
        return _result('ERROR: Invalid syntax.\nType "REG /?" for usage.\n', 1)
    opts = {low[i]: argv[i + 1] for i in range(2, len(argv) - 1) if low[i].startswith("/")}
    if opts.get("/t", "").upper() not in ("REG_DWORD", "REG_SZ") or "/v" not in opts:
        return _result('ERROR: Invalid syntax.\nType "REG ADD /?" for usage.\n', 1)
    host.state.history.append(
        f"{host.clock().isoformat()} reg {argv[1]}\\{opts['/v']} = {opts.get('/d', '')}"
    )
    return _result("The operation completed successfully.\n")


def _netdom(argv: list[str], host: Any, stdin: bytes = b"") -> Any:
    from dr.lab.fsmo import netdom

    return netdom(argv, host, stdin)


NATIVES = {"bcdedit": _bcdedit, "wbadmin": _wbadmin, "ntdsutil": _ntdsutil, "shutdown": _shutdown,
           "netdom": _netdom, "reg": _reg}  # fmt: skip


def _cmdlets() -> dict[str, Any]:
    from dr.lab import fsmo
    from dr.lab.excmdlets import get_wmi_object

    return {
        "get-wmiobject": get_wmi_object,
        "get-service": get_service,
        "restart-computer": restart_computer,
        "import-module": fsmo.import_module,
        "get-adobject": fsmo.get_ad_object,
        "set-adobject": fsmo.set_ad_object,
        "set-adaccountpassword": fsmo.set_ad_account_password,
        "reset-computermachinepassword": fsmo.reset_computer_machine_password,
    }


class _Lazy(dict):  # type: ignore[type-arg]
    def get(self, key: Any, default: Any = None) -> Any:
        if not self:
            self.update(_cmdlets())
        return super().get(key, default)


CMDLETS = _Lazy()
