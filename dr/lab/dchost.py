"""A lab domain controller: it answers for its domain's directory.

``DomainControllerHost(root, server, directory=..., clock=...)`` is a handler for
:class:`dr.lab.winrs.WinRSServer` and a :class:`dr.lab.ps.LabHost`, like the Exchange hosts:
every script it receives is parsed and run by the lab's PowerShell / cmd interpreter. What a
restore plan asks a domain controller before it rebuilds a member server is whether the
directory answers (the ``verify-directory`` step):

* ``dcdiag /s:DC /test:Advertising /test:Replications`` — dcdiag's report, one
  ``......................... DC passed test NAME`` line per test (``failed test`` when the
  domain controller is not advertising); an unknown test is refused as dcdiag refuses it;
* ``nltest /dsgetdc:DOMAIN`` — the DC locator's answer for the domain, ending in
  ``The command completed successfully``; another domain is ``ERROR_NO_SUCH_DOMAIN`` (1355);
* ``dsquery computer [domainroot] [-o dn|rdn|samid] -name NAME`` — each matching computer
  account (``*`` as a wildcard), its DN in quotes, one per line; nothing, and exit 0, when
  none matches (dsquery computer, cc755655(v=ws.10) / cc730720(v=ws.11)).

The directory itself (computer accounts, Exchange server objects) is the lab's shared
:class:`dr.lab.directory.Directory`, which ``Add-Computer`` on a member server and Exchange
setup read too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from dr.lab.directory import Directory
from dr.lab.machine import Machine, get_service, os_object
from dr.model.inventory import Server

__all__ = ["DomainControllerHost"]

_DCDIAG_TESTS = {
    "advertising": "Advertising", "replications": "Replications",
    "connectivity": "Connectivity", "services": "Services", "netlogons": "NetLogons",
    "knowsofroleholders": "KnowsOfRoleHolders", "ridmanager": "RidManager",
    "machineaccount": "MachineAccount", "dns": "DNS", "sysvolcheck": "SysVolCheck",
}  # fmt: skip
# dcdiag's test names: learn.microsoft.com/windows-server/administration/windows-commands/dcdiag


class DomainControllerHost:
    """See the module docstring."""

    shell_aware = True
    exchange_version = None
    version = None

    def __init__(
        self, root: Path, server: Server, *, directory: Directory, clock: Callable[[], datetime]
    ) -> None:
        from dr.lab.ps.fs import FileSystem
        from dr.lab.ps.versions import host_powershell

        self.root, self.server, self.clock = root, server, clock
        self.name = server.name
        self.windows = server.windows_version
        self.domain = server.domain
        self.directory_store = directory
        found = host_powershell(server.windows_version, server.powershell, None)
        self.ps_version = None if found == "none" else found
        for drive in server.drives or []:
            (root / drive.letter.upper()).mkdir(parents=True, exist_ok=True)
        (root / "C").mkdir(parents=True, exist_ok=True)
        self.fs = FileSystem(root)
        self.env = {"COMPUTERNAME": server.name, "USERDNSDOMAIN": server.domain.upper()}
        self.native_cwd: str | None = None
        self.machine = Machine(domain=server.domain, boot=clock().isoformat())
        self._busy = threading.RLock()

    def answering(self) -> bool:
        return self.machine.present

    def __call__(self, script: str, stdin: bytes, shell: str = "powershell") -> Any:
        from dr.lab.ps import run_cmd, run_powershell

        with self._busy:
            if shell == "cmd":
                return (yield from run_cmd(script, self))
            return (yield from run_powershell(script, self, stdin))

    def cmdlet(self, name: str) -> Any:
        from dr.lab.excmdlets import get_wmi_object

        return {"get-wmiobject": get_wmi_object, "get-service": get_service}.get(name.lower())

    def os_object(self) -> Any:
        return os_object(self)

    def native(self, name: str) -> Any:
        return {"dcdiag": _dcdiag, "nltest": _nltest, "dsquery": _dsquery}.get(name.lower())


def _dcdiag(argv: list[str], host: DomainControllerHost, stdin: bytes = b"") -> Any:
    from dr.lab.ps import NativeResult

    target, tests = host.name, []
    for arg in argv:
        low = arg.lower()
        if low.startswith("/s:"):
            target = arg[3:]
        elif low.startswith("/test:"):
            name = _DCDIAG_TESTS.get(low[6:])
            if name is None:
                return NativeResult(stdout=f'Test not found. Please re-enter a valid test name.\r\n'
                                           f'"{arg[6:]}" is not a valid test name.\r\n',
                                    exit_code=1)  # fmt: skip
            tests.append(name)
        elif low in ("/v", "/q", "/c", "/e", "/a"):
            continue
        else:
            return NativeResult(stdout=f"Invalid Syntax: Invalid option {arg}.\r\n", exit_code=1)
    if target.split(".")[0].lower() != host.name.lower():
        return NativeResult(
            stdout=f"Directory Server Diagnosis\r\n\r\nPerforming initial setup:\r\n"
            f"   [{target}] LDAP bind failed with error 1722,\r\n   The RPC server is "
            "unavailable..\r\n",
            exit_code=1,
        )
    site = "Default-First-Site-Name"
    lines = [
        "Directory Server Diagnosis", "", "Performing initial setup:",
        "   Trying to find home server...", f"   Home Server = {host.name}",
        "   * Identified AD Forest. ", "   Done gathering initial info.", "",
        "Doing initial required tests", "", f"   Testing server: {site}\\{host.name}",
        "      Starting test: Connectivity",
        f"         ......................... {host.name} passed test Connectivity", "",
        "Doing primary tests", "", f"   Testing server: {site}\\{host.name}",
    ]  # fmt: skip
    for test in tests or ["Advertising"]:
        lines += [f"      Starting test: {test}",
                  f"         ......................... {host.name} passed test {test}"]  # fmt: skip
    return NativeResult(stdout="\r\n".join(lines) + "\r\n", exit_code=0)


def _nltest(argv: list[str], host: DomainControllerHost, stdin: bytes = b"") -> Any:
    from dr.lab.ps import NativeResult

    asked = next((a[len("/dsgetdc:") :] for a in argv if a.lower().startswith("/dsgetdc:")), None)
    if asked is None:
        return NativeResult(stdout="Usage: nltest [/OPTIONS]\r\n", exit_code=87)
    if asked.lower() not in (d.lower() for d in host.directory_store.domains()):
        return NativeResult(
            stdout="Getting DC name failed: Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN\r\n",
            exit_code=1355,
        )
    fqdn = f"{host.name}.{host.domain}".lower()
    text = (
        f"           DC: \\\\{fqdn}\r\n      Address: \\\\127.0.0.1\r\n"
        f"     Dom Name: {host.domain}\r\n  Forest Name: {host.domain}\r\n"
        " Dc Site Name: Default-First-Site-Name\r\nOur Site Name: Default-First-Site-Name\r\n"
        "        Flags: PDC GC DS LDAP KDC TIMESERV WRITABLE DNS_DC DNS_DOMAIN DNS_FOREST "
        "CLOSE_SITE FULL_SECRET\r\nThe command completed successfully\r\n"
    )
    return NativeResult(stdout=text, exit_code=0)


def _dsquery(argv: list[str], host: DomainControllerHost, stdin: bytes = b"") -> Any:
    import fnmatch

    from dr.lab.ps import NativeResult

    if not argv or argv[0].lower() != "computer":
        return NativeResult(stdout="dsquery failed:dr lab: only `dsquery computer` is modelled\r\n",
                            exit_code=1)  # fmt: skip
    rest, form, name = argv[1:], "dn", "*"
    while rest:
        arg = rest.pop(0)
        low = arg.lower()
        if low in ("-o", "-name") and rest:
            value = rest.pop(0)
            form, name = (value.lower(), name) if low == "-o" else (form, value)
        elif low in ("domainroot", "forestroot") or low.startswith(("dc=", "cn=", "ou=")):
            continue
        else:
            return NativeResult(stdout=f"dsquery failed:'{arg}' is an unknown parameter.\r\n"
                                       "type dsquery /? for help.\r\n", exit_code=1)  # fmt: skip
    lines = []
    for obj in host.directory_store.objects().values():
        if obj["objectClass"] == "computer" and fnmatch.fnmatch(obj["name"].lower(), name.lower()):
            dn = obj["distinguishedName"]
            lines.append({"dn": f'"{dn}"', "rdn": f'"CN={obj["name"]}"',
                          "samid": f'"{obj["name"]}$"'}.get(form, f'"{dn}"'))  # fmt: skip
    return NativeResult(stdout="".join(line + "\r\n" for line in sorted(lines)), exit_code=0)
