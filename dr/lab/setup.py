"""Exchange setup in recovery mode on a lab host: ``Setup.exe /Mode:RecoverServer``.

What the command line may say is checked first by :mod:`dr.lab.ps.tools` against
unattended-installs.md (the license switch the media's cumulative update accepts: the old
``/IAcceptExchangeServerLicenseTerms`` before Exchange 2016 CU22 / 2019 CU11, one of the
``_DiagnosticDataON|OFF`` forms from them on). Then, as "Recover Exchange servers"
(learn.microsoft.com/exchange/high-availability/disaster-recovery/recover-exchange-servers)
describes, recovery mode succeeds only when:

* the mode is ``RecoverServer`` (a plain install of a server the directory already holds
  fails: the server object exists);
* the computer is joined to the server's domain under the lost server's name, and its
  Exchange server object is still in the directory — setup reads the configuration from it;
* the computer account is the one the server object was made for: reset, not deleted (a
  deleted account joined again is a new object, and the old server object's permissions
  and group membership are not its own);
* ``/TargetDir`` (or the default path when it is left out) is the lost server's install path;
* the media is the server's Exchange version.

Then the programs are installed (``<install path>\\Bin\\ExSetup.exe``), the Exchange
Management Shell and the tools answer again, and the databases are as setup leaves them
when their files are gone: dismounted, to be restored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dr.lab.exhost import ExchangeHost

__all__ = ["exchange_setup"]


def _switches(argv: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for arg in argv:
        name, _, value = arg.lstrip("/").partition(":")
        found[name.lower()] = value
    return found


def exchange_setup(argv: list[str], host: ExchangeHost, stdin: bytes = b"") -> Any:
    from dr.lab.ps import NativeResult

    said = [
        "",
        f"Microsoft Exchange Server {host.machine.media_version} Unattended Setup",
        "",
        "Copying Files...",
        "File copy complete. Setup will now collect additional information needed for "
        "installation.",
        "",
    ]
    problem = _problem(_switches(argv), host)
    if problem is not None:
        said += ["Performing Microsoft Exchange Server Prerequisite Check", "",
                 "    Prerequisite Analysis                                     FAILED", "",
                 f"     {problem}", "",
                 "The Exchange Server setup operation didn't complete. More details can be "
                 "found in ExchangeSetup.log located in the <SystemDrive>:\\ExchangeSetupLogs "
                 "folder."]  # fmt: skip
        return NativeResult(stdout="\r\n".join(said) + "\r\n", exit_code=1)
    bin_dir = host.fs.host_path(host.install_path.rstrip("\\") + "\\Bin")
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "ExSetup.exe").write_text("Microsoft Exchange Server setup\n")
    (bin_dir / "eseutil.exe").write_text("Extensible Storage Engine Utilities\n")
    for sg in host.groups():
        for path in (sg.log_path, sg.system_path):
            if path:
                host.fs.host_path(path).mkdir(parents=True, exist_ok=True)
        for db in sg.databases:
            host.fs.host_path(db.edb.rsplit("\\", 1)[0]).mkdir(parents=True, exist_ok=True)
    host.machine.installed = True
    host._sync_env()
    said += [
        "Performing Microsoft Exchange Server Prerequisite Check", "",
        "    Prerequisite Analysis                                     COMPLETED", "",
        "Configuring Microsoft Exchange Server", "",
        "    Mailbox role: Mailbox service                             COMPLETED",
        "    Management Tools                                          COMPLETED", "",
        "The Exchange Server setup operation completed successfully.",
    ]  # fmt: skip
    return NativeResult(stdout="\r\n".join(said) + "\r\n", exit_code=0)


def _problem(switches: dict[str, str], host: ExchangeHost) -> str | None:
    mode = (switches.get("mode") or switches.get("m") or "Install").lower()
    obj = host.directory_store.server_object(host.name) if host.directory_store else None
    if mode != "recoverserver":
        if obj is not None:
            return (f"Error: The server {host.name} already exists in Active Directory: "
                    "recover it with /Mode:RecoverServer.")  # fmt: skip
        return f"Error: dr lab: setup /Mode:{mode} is not modelled (only RecoverServer)."
    if host.machine.installed:
        return "Error: Exchange Server is already installed on this computer."
    if not host.machine.domain:
        return ("Error: This computer isn't a member of a domain. Exchange setup needs the "
                "computer joined to the domain of the server being recovered.")  # fmt: skip
    if obj is None:
        return (f"Error: The Exchange server object for '{host.name}' wasn't found in Active "
                "Directory. /Mode:RecoverServer recovers only a server whose object is still "
                "in the directory.")  # fmt: skip
    if str(obj.get("domain", "")).lower() != host.machine.domain.lower():
        return (f"Error: {host.name} is joined to {host.machine.domain}, but its Exchange server "
                f"object belongs to {obj.get('domain')}.")  # fmt: skip
    account = host.directory_store.computer(host.name)
    if account is None or account["objectGUID"] != obj.get("computerGUID"):
        return (f"Error: The computer account of {host.name} is not the one its Exchange server "
                "object was created for (the account was deleted and made again), so it holds "
                "none of the server's permissions or group memberships. Restore the deleted "
                "account (Active Directory Recycle Bin, or an authoritative restore), then "
                "join again.")  # fmt: skip
    target = (switches.get("targetdir") or switches.get("t") or "").strip('"').rstrip("\\")
    recorded = str(obj.get("installPath") or host.install_path).rstrip("\\")
    default = "C:\\Program Files\\Microsoft\\Exchange Server\\V15"
    if (target or default).lower() != recorded.lower():
        return (f"Error: The installation path '{target or default}' is not the path recorded for "
                f"{host.name} in Active Directory ('{recorded}'): /TargetDir must be the lost "
                "server's path.")  # fmt: skip
    media = host.machine.media_version.split()[0] if host.machine.media_version else ""
    if media != str(host.version):
        return (f"Error: This is Exchange Server {media or 'unknown'} setup; {host.name} ran "
                f"Exchange Server {host.version}. Use the media of the server's "
                "version.")  # fmt: skip
    return None
