"""What a lab host answers about the Windows machine under it: its name, domain and boot
time, the services a restart waits for, and joining a domain.

Every lab host (an Exchange server, a domain controller) carries a :class:`Machine`: whether
the machine is there at all (``lost`` after ``dr lab break lose-server``: nothing answers),
whether Exchange's programs are installed on it (not on a fresh Windows installation, until
``Setup /Mode:RecoverServer`` has run), which domain it is joined to, and when it last
started. The cmdlets here read and change it:

* ``Get-WmiObject -Class Win32_OperatingSystem`` — ``LastBootUpTime`` as WMI's DMTF datetime
  (``yyyymmddHHMMSS.mmmmmmsUUU``; learn.microsoft.com/windows/win32/cimwin32prov/
  win32-operatingsystem), which the engine's restart wait compares before and after;
* ``Get-Service`` — ``Netlogon`` runs once the machine is in a domain (the service the
  join-domain step's restart waits for); any other name is "Cannot find any service";
* ``Add-Computer -DomainName D -Credential C [-Restart] [-Force]`` — joins through the lab's
  :class:`dr.lab.directory.Directory`: a reset account is taken over, a missing one is made
  anew, one still in use is refused (Add-Computer's error with the Win32 code); ``-Restart``
  restarts the machine (a new boot time) once it is joined.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = ["Machine", "add_computer", "get_service", "os_object"]


@dataclass
class Machine:
    """The machine under a lab host (kept in the host's ``host.json``)."""

    present: bool = True  # False: the server is lost, nothing answers
    installed: bool = True  # Exchange's programs and settings are on it
    domain: str = ""  # the DNS domain it is joined to ('' = a workgroup)
    boot: str = ""  # when it last started (ISO 8601)
    media: str = ""  # the drive holding Exchange's setup media ('' = none)
    media_version: str = ""  # "2016 CU23": what that media installs

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, data: dict[str, Any] | None, *, domain: str, boot: datetime) -> Machine:
        if data is None:
            return cls(domain=domain, boot=boot.isoformat())
        return cls(**data)


def dmtf(at: datetime) -> str:
    """WMI's CIM_DATETIME: ``20261103060000.000000+000`` (UTC offset in minutes)."""
    return at.strftime("%Y%m%d%H%M%S") + ".000000+000"


def os_object(host: Any) -> Any:
    from dr.lab.ps.values import PSObject

    boot = datetime.fromisoformat(host.machine.boot)
    return PSObject.of(
        "System.Management.ManagementObject#root\\cimv2\\Win32_OperatingSystem",
        CSName=host.name, Caption=f"Microsoft Windows Server {host.windows}",
        LastBootUpTime=dmtf(boot),
    )  # fmt: skip


def get_service(call: Any) -> Iterator[Any]:
    """Get-Service -Name N: the services this machine runs (Netlogon once it is joined;
    Exchange's once setup has run: the System Attendant and the Information Store on
    2000/2003, Active Directory Topology and the Information Store on 2007+)."""
    from dr.lab.ps.values import PSObject, enumerate_value, to_str

    host = call.host
    running = {"netlogon": "Netlogon"} if host.machine.domain else {}
    version = getattr(host, "exchange_version", None)
    if version and host.machine.installed and host.machine.domain:
        exchange = ("MSExchangeSA", "MSExchangeIS") if version <= 2003 else (
            "MSExchangeADTopology", "MSExchangeIS")  # fmt: skip
        running.update({name.lower(): name for name in exchange})
    names = [to_str(n) for n in enumerate_value(call.params.get("Name"))]
    for name in names:
        found = running.get(name.lower())
        if found is None:
            call.error(
                f"Cannot find any service with service name '{name}'.",
                category="ObjectNotFound", target=name,
            )  # fmt: skip
            continue
        yield PSObject.of("System.ServiceProcess.ServiceController", Name=found, Status="Running")


def add_computer(call: Any) -> Iterator[Any]:
    """Add-Computer: join the lab's directory (learn.microsoft.com/powershell/module/
    microsoft.powershell.management/add-computer, Windows PowerShell 5.1)."""
    from dr.lab.directory import JoinRefused
    from dr.lab.ps.values import PSRuntimeError, to_str

    host = call.host
    domain = to_str(call.params.get("DomainName"))
    credential = call.params.get("Credential")
    if credential is None or not to_str(credential.get("UserName")):
        raise PSRuntimeError(
            f"Computer '{host.name}' failed to join domain '{domain}' from its current "
            "workgroup 'WORKGROUP' with following error message: Access is denied.",
            category="OperationStopped", fqid="FailToJoinDomainFromWorkgroup",
        )  # fmt: skip
    if host.machine.domain:
        raise PSRuntimeError(
            f"Cannot add computer '{host.name}' to domain '{domain}' because it is already "
            "in that domain." if host.machine.domain.lower() == domain.lower() else
            f"Computer '{host.name}' is already in domain '{host.machine.domain}'.",
            category="InvalidOperation", fqid="AddComputerToSameDomain",
        )  # fmt: skip
    try:
        host.directory_store.join(host.name, domain)
    except JoinRefused as exc:
        raise PSRuntimeError(
            f"Computer '{host.name}' failed to join domain '{domain}' from its current "
            f"workgroup 'WORKGROUP' with following error message: {exc}",
            category="OperationStopped",
            fqid="FailToJoinDomainFromWorkgroup",
        ) from None
    host.machine.domain = domain
    host.domain = domain
    if call.params.get("Restart"):
        host.restart()
    else:
        call.warning(
            "The changes will take effect after you restart the computer " + host.name + "."
        )
    return
    yield
