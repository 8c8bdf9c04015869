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
* ``dsquery computer|user [domainroot] [-o dn|rdn|samid] -name NAME`` — each matching
  computer account or user (``*`` as a wildcard), its DN in quotes, one per line; nothing,
  and exit 0, when none matches (dsquery computer, cc755655(v=ws.10) / cc730720(v=ws.11)),
  from the directory as *this* domain controller holds it.

A domain controller also starts into Directory Services Restore Mode, takes and restores
system state backups with ``wbadmin``, and marks objects authoritative with ``ntdsutil``
(:mod:`dr.lab.dctools`); its state is kept in ``dc.json`` (:mod:`dr.lab.dcstate`) and it
replicates as :mod:`dr.lab.replication` says.

The directory itself (computer accounts, Exchange server objects) is the lab's shared
:class:`dr.lab.directory.Directory`, which ``Add-Computer`` on a member server and Exchange
setup read too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dr.lab.dcstate import DcState
from dr.lab.directory import Directory
from dr.lab.machine import Machine, os_object
from dr.model.inventory import Server

__all__ = ["DomainControllerHost", "is_dsrm_admin"]

GOING_DOWN_SECONDS = 3.0  # a restarting DC still answers requests on the shell that restarted it

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
        self,
        root: Path,
        server: Server,
        *,
        directory: Directory,
        clock: Callable[[], datetime],
        dsrm_password: str = "",
        peers: Sequence[Path] = (),
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
        self.dsrm_password = dsrm_password
        self.peers = list(peers)  # the other domain controllers of the domain: their roots
        self._state_path = root / "dc.json"
        self.state = self.load()
        self._busy = threading.RLock()

    # -- state, kept in dc.json (dr.lab.dcstate) -------------------------------------------

    def load(self) -> DcState:
        self.state = DcState.load(self._state_path, domain=self.domain,
                                  boot=self.clock().isoformat())  # fmt: skip
        return self.state

    def save(self) -> None:
        self.state.save(self._state_path)

    @property
    def machine(self) -> Machine:
        return self.state.machine

    def saved(self) -> DcState:
        """The state as saved, read without replacing the one a running command changes
        (the endpoint asks from its request threads while a script runs)."""
        return DcState.load(self._state_path, domain=self.domain, boot=self.clock().isoformat())

    def answering(self) -> bool:
        return self.saved().machine.present

    def sign_in(self, user: str, password: str, domain_ok: bool, *, opening: bool = True) -> bool:
        """Who may sign in over the network. Normally the domain's accounts (the lab's
        operator account); in Directory Services Restore Mode the directory is not running
        and accounts are checked against the local SAM only, so a domain account fails and
        only the DSRM administrator (``DC\\Administrator`` with the DSRM password) works
        (learn.microsoft.com/windows/win32/ad/restoring-an-active-directory-server)."""
        saved = self.saved()
        going_down = time.time() - saved.going_down < GOING_DOWN_SECONDS
        if saved.mode != "dsrm":
            return domain_ok
        if going_down and not opening and domain_ok:
            return True  # the restarting session's last requests, on the shell it had open
        return is_dsrm_admin(self, user) and password == self.dsrm_password

    def __call__(self, script: str, stdin: bytes, shell: str = "powershell") -> Any:
        from dr.lab.ps import run_cmd, run_powershell

        with self._busy:
            self.load()
            try:
                if shell == "cmd":
                    return (yield from run_cmd(script, self))
                return (yield from run_powershell(script, self, stdin))
            finally:
                self.save()

    def cmdlet(self, name: str) -> Any:
        from dr.lab.dctools import CMDLETS

        return CMDLETS.get(name.lower())

    def os_object(self) -> Any:
        return os_object(self)

    def native(self, name: str) -> Any:
        from dr.lab.dctools import NATIVES

        found = {"dcdiag": _dcdiag, "nltest": _nltest, "dsquery": _dsquery}.get(name.lower())
        return found or NATIVES.get(name.lower())

    # -- what the domain controller holds --------------------------------------------------

    def view(self) -> dict[str, Any]:
        """The directory as this domain controller holds it: its own copy while it is out of
        replication, else what its partners hold."""
        if self.state.copy is not None:
            return self.state.copy
        return self.directory_store.snapshot()

    def partners(self) -> list[str]:
        """The other domain controllers of the domain that run and replicate."""
        running = []
        for root in self.peers:
            other = DcState.load(root / "dc.json", domain=self.domain, boot="")
            if other.replicating:
                running.append(root.name)
        return running

    def restart(self) -> None:
        """The machine restarts: into DSRM if bcdedit says so, else normally — replicating
        its own copy (if it holds one) with the partners that run."""
        from dr.lab.dctools import boot

        before = datetime.fromisoformat(self.machine.boot)
        self.machine.boot = max(self.clock(), before + timedelta(minutes=1)).isoformat()
        boot(self)


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
    down = _not_running(host)
    if down:
        return NativeResult(stdout=down, exit_code=1)
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
        lines.append(f"      Starting test: {test}")
        if test == "Advertising" and not host.state.sysvol_ready:
            lines += [  # SYSVOL not shared: the DC waits for an initial sync, not advertising
                f"         Warning: DsGetDcName returned information for "
                f"\\\\{_partner_fqdn(host)}, when we were trying to reach {host.name}.",
                "         SERVER IS NOT RESPONDING or IS NOT CONSIDERED SUITABLE.",
                f"         ......................... {host.name} failed test {test}",
            ]
            continue
        lines.append(f"         ......................... {host.name} passed test {test}")
    if not host.state.sysvol_ready:
        return NativeResult(stdout="\r\n".join(lines) + "\r\n", exit_code=1)
    return NativeResult(stdout="\r\n".join(lines) + "\r\n", exit_code=0)


def _not_running(host: DomainControllerHost) -> str:
    """dcdiag's answer when the directory does not run here (DSRM, a damaged database)."""
    state = host.state
    if state.mode == "normal" and state.ntds == "ok":
        return ""
    return (
        "Directory Server Diagnosis\r\n\r\nPerforming initial setup:\r\n"
        f"   Trying to find home server...\r\n   Home Server = {host.name}\r\n"
        f"   Ldap search capability attribute search failed on server {host.name}, return "
        "value = 81\r\n"
    )


def _partner_fqdn(host: DomainControllerHost) -> str:
    partners = host.partners()
    return f"{partners[0] if partners else host.name}.{host.domain}".lower()


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

    if not argv or argv[0].lower() not in ("computer", "user"):
        return NativeResult(stdout="dsquery failed:dr lab: only `dsquery computer` and `dsquery "
                                   "user` are modelled\r\n", exit_code=1)  # fmt: skip
    if _not_running(host):
        return NativeResult(stdout="dsquery failed:The server is not operational.\r\n"
                                   "type dsquery /? for help.\r\n", exit_code=1)  # fmt: skip
    wanted = argv[0].lower()
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
    for obj in host.view()["objects"].values():
        if obj["objectClass"] != wanted:
            continue
        cn = obj["name"] if wanted == "computer" else obj.get("displayName", "")
        if fnmatch.fnmatch(cn.lower(), name.lower()):
            dn = obj["distinguishedName"]
            sam = f"{obj['name']}$" if wanted == "computer" else obj.get("mailNickname", "")
            lines.append({"dn": f'"{dn}"', "rdn": f'"CN={cn}"',
                          "samid": f'"{sam}"'}.get(form, f'"{dn}"'))  # fmt: skip
    return NativeResult(stdout="".join(line + "\r\n" for line in sorted(lines)), exit_code=0)


def is_dsrm_admin(host: DomainControllerHost, user: str) -> bool:
    """``DC\\Administrator``, ``.\\Administrator`` or ``Administrator``: the local account."""
    domain, _, name = user.rpartition("\\")
    return name.lower() == "administrator" and domain.lower() in ("", ".", host.name.lower())
