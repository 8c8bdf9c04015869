"""The Exchange Management Shell cmdlets a lab Exchange host answers (2007 and later).

Parameters arrive bound against the real cmdlets' parameter sets (:mod:`dr.lab.ps.binding`);
these functions do what the store would. Objects carry the properties the step library
reads, named as Exchange names them (``Get-MailboxDatabase``: Name, Server, Mounted only
with ``-Status``, AllowFileRestore, EdbFilePath, LogFolderPath, CircularLoggingEnabled …).
Sources: the cmdlet pages of Microsoft's Exchange PowerShell reference
(learn.microsoft.com/powershell/module/exchange/<cmdlet>), copied in
``dr/lab/data/cmdlets/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dr.lab import exstore
from dr.lab.exhost import mailbox_guid
from dr.lab.hostsim import _ToolError

if TYPE_CHECKING:
    from dr.lab.exhost import ExchangeHost

__all__ = ["CMDLETS"]


def _ps() -> Any:
    from dr.lab.ps import values

    return values


def _host(call: Any) -> ExchangeHost:
    return call.host  # type: ignore[no-any-return]


def _identity(value: Any) -> str:
    values = _ps()
    if isinstance(value, values.PSObject):
        return str(value.get("Identity") or value.get("Name"))
    return str(value)


def _targets(call: Any, name: str = "Identity") -> list[str]:
    found = [_identity(v) for v in call.input] if call.input else []
    if name in call.params and call.params[name] is not None:
        found.append(_identity(call.params[name]))
    return found


def _fail(message: str, category: str = "ObjectNotFound") -> Any:
    values = _ps()
    return values.PSRuntimeError(message, category=category,
                                 fqid="ManagementObjectNotFoundException")  # fmt: skip


def _database_object(host: ExchangeHost, sg: Any, db: Any, status: bool) -> Any:
    values = _ps()
    state = host.dbs[host.db_key(sg, db)]
    identity = db.name if host.version >= 2010 else f"{host.name}\\{sg.name}\\{db.name}"
    return values.PSObject.of(
        "Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase",
        Name=db.name, Identity=identity, Server=host.name,
        StorageGroup=sg.name if host.version < 2010 else None,
        Mounted=state.mounted if status else None,
        AllowFileRestore=state.allow_file_restore,
        CircularLoggingEnabled=host.streams[sg.name].circular_logging,
        EdbFilePath=db.edb, LogFolderPath=sg.log_path, LogFilePrefix=sg.log_prefix,
        Recovery=state.recovery, Guid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{host.name}/{db.name}")),
    )  # fmt: skip


def get_mailbox_database(call: Any) -> Iterator[Any]:
    host = _host(call)
    status = bool(call.params.get("Status"))
    names = _targets(call)
    server = call.params.get("Server")
    if server is not None and _identity(server).lower() != host.name.lower():
        return
    for sg in host.groups():
        for db in sg.databases:
            if not names:
                yield _database_object(host, sg, db, status)
    for name in names:
        try:
            sg, db = host.find_db(name)
        except _ToolError as exc:
            call.error(str(exc), category="ObjectNotFound", target=name)
            continue
        yield _database_object(host, sg, db, status)


def _each_db(call: Any, action: str) -> Iterator[tuple[str, Any]]:
    host = _host(call)
    for name in _targets(call):
        try:
            host.find_db(name)
        except _ToolError as exc:
            call.error(str(exc), category="ObjectNotFound", target=name)
            continue
        yield name, host


def mount_database(call: Any) -> Iterator[Any]:
    for name, host in _each_db(call, "mount"):
        try:
            for warning in host.mount(name, force=bool(call.params.get("Force"))):
                call.warning(warning)
        except _ToolError as exc:
            call.error(str(exc), category="InvalidOperation", target=name)
    yield from ()


def dismount_database(call: Any) -> Iterator[Any]:
    for name, host in _each_db(call, "dismount"):
        host.dismount(name)
    yield from ()


def set_mailbox_database(call: Any) -> Iterator[Any]:
    for name, host in _each_db(call, "set"):
        sg, db = host.find_db(name)
        state = host.dbs[host.db_key(sg, db)]
        if "AllowFileRestore" in call.params:
            state.allow_file_restore = bool(call.params["AllowFileRestore"])
        if "CircularLoggingEnabled" in call.params:
            host.set_circular_logging(sg.name, bool(call.params["CircularLoggingEnabled"]))
    yield from ()


def test_mapi_connectivity(call: Any) -> Iterator[Any]:
    values = _ps()
    host = _host(call)
    for name in _targets(call, "Database"):
        try:
            sg, db = host.find_db(name)
        except _ToolError as exc:
            call.error(str(exc), category="ObjectNotFound", target=name)
            continue
        state = host.dbs[host.db_key(sg, db)]
        ok, error = state.mounted, "" if state.mounted else "The database is dismounted."
        if ok:
            try:
                exstore.read_database(host.path(db.edb))
            except exstore.RecoveryError as exc:
                ok, error = False, str(exc)
        yield values.PSObject.of(
            "Microsoft.Exchange.Monitoring.MapiTransactionOutcome", Server=host.name,
            Database=db.name, Result="Success" if ok else "Failure", Error=error,
        )  # fmt: skip


def get_mailbox_statistics(call: Any) -> Iterator[Any]:
    values = _ps()
    host = _host(call)
    for name in _targets(call, "Database"):
        _sg, db = host.find_db(name)
        try:
            held = exstore.contents(host.path(db.edb))
        except (OSError, exstore.RecoveryError) as exc:
            call.error(str(exc), target=name)
            continue
        counts: dict[str, int] = {}
        for message in held.values():
            counts[message.mailbox] = counts.get(message.mailbox, 0) + 1
        for mailbox in sorted(counts):
            yield values.PSObject.of(
                "Microsoft.Exchange.Data.Mapi.MailboxStatistics",
                DisplayName=host.display_names.get(mailbox, mailbox),
                MailboxGuid=mailbox_guid(mailbox),
                ItemCount=counts[mailbox], Database=db.name,
            )  # fmt: skip


def get_wmi_object(call: Any) -> Iterator[Any]:
    """Get-WmiObject: ``Win32_ComputerSystem`` (Name, Domain: learn.microsoft.com/windows/
    win32/cimwin32prov/win32-computersystem), ``Win32_OperatingSystem`` (LastBootUpTime:
    :mod:`dr.lab.machine`) and ``Win32_LogicalDisk`` on any host; on an Exchange 2003 host
    the ``Exchange_Mailbox`` class of
    ``root\\MicrosoftExchangeV2`` (learn.microsoft.com/previous-versions/office/developer/
    exchange-server-2003/aa143732(v=exchg.65)) — one instance per mailbox of every mounted
    store (the MAPI table provider sees only mounted stores). Exchange 2007 and later have
    no such namespace ("Invalid namespace", as WMI answers)."""
    values = _ps()
    host = _host(call)
    namespace = str(call.params.get("Namespace") or "root\\cimv2").lower().lstrip("\\")
    wmi_class = str(call.params.get("Class") or "")
    if namespace == "root\\cimv2" and wmi_class.lower() == "win32_computersystem":
        yield values.PSObject.of(
            "System.Management.ManagementObject#root\\cimv2\\Win32_ComputerSystem",
            Name=host.name, Domain=host.domain or "WORKGROUP", PartOfDomain=bool(host.domain),
        )  # fmt: skip
        return
    if namespace == "root\\cimv2" and wmi_class.lower() == "win32_operatingsystem":
        yield host.os_object()
        return
    if namespace == "root\\cimv2" and wmi_class.lower() == "win32_logicaldisk":
        yield from _logical_disks(host, values)
        return
    if namespace != "root\\microsoftexchangev2" or (host.version or 9999) > 2003:
        raise values.PSRuntimeError("Invalid namespace", category="InvalidArgument",
                                    fqid="GetWMIManagementException")  # fmt: skip
    if wmi_class.lower() != "exchange_mailbox":
        raise values.PSRuntimeError("Invalid class", category="InvalidType",
                                    fqid="GetWMIManagementException")  # fmt: skip
    for sg in host.groups():
        for db in sg.databases:
            if not host.dbs[host.db_key(sg, db)].mounted:
                continue
            counts: dict[str, int] = {}
            for message in exstore.contents(host.path(db.edb)).values():
                counts[message.mailbox] = counts.get(message.mailbox, 0) + 1
            for mailbox in sorted(counts):
                yield values.PSObject.of(
                    "System.Management.ManagementObject#root\\MicrosoftExchangeV2\\Exchange_Mailbox",
                    MailboxGUID="{" + mailbox_guid(mailbox).upper() + "}",
                    MailboxDisplayName=host.display_names.get(mailbox, mailbox),
                    TotalItems=counts[mailbox], StorageGroupName=sg.name, StoreName=db.name,
                    ServerName=host.name,
                )  # fmt: skip


def _logical_disks(host: Any, values: Any) -> Iterator[Any]:
    """``Win32_LogicalDisk``: one local disk (DriveType 3) per drive, DeviceID ``E:``, with
    FreeSpace and Size in bytes (learn.microsoft.com/windows/win32/cimwin32prov/
    win32-logicaldisk) — the same free space Get-PSDrive reports."""
    from dr.lab.ps.items import drive_space

    for letter, used, free in drive_space(host.fs):
        yield values.PSObject.of(
            "System.Management.ManagementObject#root\\cimv2\\Win32_LogicalDisk",
            DeviceID=f"{letter}:", DriveType=3, FreeSpace=free, Size=used + free,
        )  # fmt: skip


def new_mailbox_database(call: Any) -> Iterator[Any]:
    host = _host(call)
    if not call.params.get("Recovery"):
        raise _fail("dr lab: only recovery databases (-Recovery) are created on lab hosts",
                    category="NotImplemented")  # fmt: skip
    server = call.params.get("Server")
    if server is not None and _identity(server).lower() != host.name.lower():
        raise _fail(f"dr lab: {host.name} cannot create a database on {server}")
    name = str(call.params["Name"])
    try:
        host.new_recovery_database(name, str(call.params.get("EdbFilePath") or ""),
                                   str(call.params.get("LogFolderPath") or ""))  # fmt: skip
    except _ToolError as exc:
        raise _fail(str(exc), category="InvalidOperation") from None
    sg, db = host.find_db(name)
    yield _database_object(host, sg, db, status=False)


def remove_mailbox_database(call: Any) -> Iterator[Any]:
    for name, host in _each_db(call, "remove"):
        try:
            host.remove_database(name)
        except _ToolError as exc:
            call.error(str(exc), category="InvalidOperation", target=name)
    yield from ()


def new_mailbox_restore_request(call: Any) -> Iterator[Any]:
    values = _ps()
    host = _host(call)
    name = str(call.params.get("Name") or f"MailboxRestore{len(host.requests) + 1}")
    try:
        found = host.restore_request(
            name, _identity(call.params["SourceDatabase"]),
            _identity(call.params["SourceStoreMailbox"]), _identity(call.params["TargetMailbox"]),
            str(call.params.get("TargetRootFolder") or ""),
        )  # fmt: skip
    except _ToolError as exc:
        raise _fail(str(exc), category="InvalidOperation") from None
    yield values.PSObject.of("Microsoft.Exchange.MailboxReplicationService.RestoreRequest", **found)


def get_mailbox_restore_request(call: Any) -> Iterator[Any]:
    values = _ps()
    host = _host(call)
    wanted = call.params.get("Name") or call.params.get("Identity")
    source = call.params.get("SourceDatabase")
    for found in host.requests.values():
        if wanted is not None and found["Name"].lower() != _identity(wanted).lower():
            continue
        if source is not None and found["SourceDatabase"].lower() != _identity(source).lower():
            continue
        yield values.PSObject.of(
            "Microsoft.Exchange.MailboxReplicationService.RestoreRequest", **found
        )


def remove_mailbox_restore_request(call: Any) -> Iterator[Any]:
    host = _host(call)
    for name in _targets(call):
        host.requests.pop(name, None)
    yield from ()


CMDLETS = {
    "new-mailboxdatabase": new_mailbox_database,
    "remove-mailboxdatabase": remove_mailbox_database,
    "new-mailboxrestorerequest": new_mailbox_restore_request,
    "get-mailboxrestorerequest": get_mailbox_restore_request,
    "remove-mailboxrestorerequest": remove_mailbox_restore_request,
    "get-mailboxdatabase": get_mailbox_database,
    "mount-database": mount_database,
    "dismount-database": dismount_database,
    "set-mailboxdatabase": set_mailbox_database,
    "test-mapiconnectivity": test_mapi_connectivity,
    "get-mailboxstatistics": get_mailbox_statistics,
}
