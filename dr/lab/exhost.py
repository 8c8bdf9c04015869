"""A lab Exchange server: real store files, mail, and the tools a restore calls.

``ExchangeHost(root, server, clock=...)`` is a handler for :class:`dr.lab.winrs.WinRSServer`
and a :class:`dr.lab.ps.LabHost`. Its drives are folders under ``root`` (``E:\\x`` →
``<root>/E/x``); each storage group (2000–2007) or database (2010+) has a log stream with a
log signature, generation-numbered logs in the family's naming, the current ``Enn.log`` and
the checkpoint; each database an ESE-layout file (:mod:`dr.lab.exstore`).

What runs on it:

* **mail** — :meth:`deliver`, :meth:`move`, :meth:`delete` log a transaction in the current
  log and apply it to the database page, as the store does; every applied transaction is
  appended to the lab's ground truth (``truth_dir``), which only the lab reads;
* **backups** — the backup step library's VSS / NTBackup calls, emulated by
  :class:`dr.lab.hostsim.HostSim` (roll the log, copy, truncate after a full or incremental of
  a mounted database) on these real files;
* **every other script** — parsed and run by the lab's PowerShell and cmd interpreter
  (:mod:`dr.lab.ps`), with the Exchange cmdlets and the native tools below bound against the
  real cmdlets' parameter sets. A mounted database's file and its stream's current log are
  locked, so copying, moving or deleting them fails as Windows does.

Cmdlets: Get-MailboxDatabase, Mount-Database, Dismount-Database, Set-MailboxDatabase
(``-AllowFileRestore``, ``-CircularLoggingEnabled``), Test-MAPIConnectivity,
Get-MailboxStatistics. Natives: ``eseutil`` (``/mh``, ``/mk``, ``/ml``, ``/k``, ``/r``) and
``robocopy``. State (generations, mounts, flags, the clock) persists in ``<root>/.lab`` so a
``dr lab serve`` process and ``dr lab`` commands see one host.
"""

from __future__ import annotations

import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PureWindowsPath
from typing import Any

from dr.exchange import ese
from dr.exchange.logs import log_file_name
from dr.lab import exstore
from dr.lab.exstore import Message, RecoveryError, Txn
from dr.lab.hostsim import _BANNER, _TOOLS, HostSim, SimStream, _ToolError, script_vars
from dr.lab.machine import Machine, add_computer, get_service, os_object
from dr.lab.pslite import PowerShellLite, clixml_error
from dr.model.inventory import Database, Server, StorageGroup, install_path_of

__all__ = ["ExchangeHost", "LabStream"]

Clock = Callable[[], datetime]
_TRANSFER = re.compile(r"^\$ProgressPreference = 'SilentlyContinue'\n\$dr_path = ")
SNAPIN = {
    2007: "Microsoft.Exchange.Management.PowerShell.Admin",
    2010: "Microsoft.Exchange.Management.PowerShell.E2010",
}


def page_size(version: int) -> int:
    """4 KiB pages up to 2003, 8 KiB on 2007, 32 KiB from 2010 on."""
    return 4096 if version <= 2003 else 8192 if version == 2007 else 32768


def default_powershell(windows: str | None) -> str | None:
    """The PowerShell a Windows version ships (one table: :mod:`dr.lab.ps.versions`)."""
    from dr.lab.ps.versions import default_powershell as shipped

    return shipped(windows)


@dataclass
class LabStream(SimStream):
    """A log stream with what the lab's files need beyond the backup emulation's view."""

    sig: ese.Signature = field(
        default_factory=lambda: _signature(1, datetime(2024, 1, 1, tzinfo=UTC))
    )
    records: list[dict[str, Any]] = field(default_factory=list)  # in the current log
    created: datetime = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class DbState:
    """One database as the store sees it."""

    mounted: bool = True
    allow_file_restore: bool = False
    db_sig: int = 0
    dbtime: int = 0
    recovery: bool = False
    guids: dict[str, str] = field(default_factory=dict)  # mailbox alias → MailboxGuid


def _signature(rand: int, at: datetime) -> ese.Signature:
    return ese.Signature(rand, ese.LogTime.from_datetime(at), "")


class ExchangeHost(HostSim):
    """See the module docstring."""

    shell_aware = True
    env_aware = True

    def __init__(
        self,
        root: Path,
        server: Server,
        *,
        clock: Clock,
        truth_dir: Path | None = None,
        directory: dict[str, dict[str, Any]] | None = None,
        display_names: dict[str, str] | None = None,
        mailbox_dbs: dict[str, str] | None = None,
        domain: str = "",
        directory_store: Any = None,
        seed: int = 1,
        data_pages: int = 48,
        log_size: int = exstore.LOG_SIZE,
    ) -> None:
        if server.exchange_version is None:
            raise ValueError(f"{server.name} runs no Exchange")
        from dr.lab.ps.fs import FileSystem

        self.root, self.server, self.clock = root, server, clock
        self.name = server.name
        self.version = self.exchange_version = server.exchange_version
        self.page, self.log_size, self.data_pages = page_size(self.version), log_size, data_pages
        from dr.lab.ps.versions import host_powershell

        found = host_powershell(
            server.windows_version, getattr(server, "powershell", None), self.version
        )
        self.ps_version = None if found == "none" else found
        self.directory = {k.lower(): v for k, v in (directory or {}).items()}
        self.domain = domain  # the DNS domain the computer is joined to (Win32_ComputerSystem)
        self.directory_store = directory_store  # the forest's accounts (dr.lab.directory)
        self.machine = Machine(domain=domain, boot=clock().isoformat())
        self.windows = server.windows_version
        self.random = random.Random(seed)
        self.files = PowerShellLite(root=root)
        self.fs = FileSystem(root)
        self.truth_dir = truth_dir
        self.install_path = install_path_of(server) or ""
        self.env: dict[str, str] = {}
        self._sync_env()
        self.native_cwd: str | None = None  # the calling script's location (dr.lab.ps sets it)
        self.headers: dict[str, dict[str, Any]] = {}
        self.backups = []
        self.scripts: list[str] = []
        self.dbs: dict[str, DbState] = {}
        self.extra: list[StorageGroup] = []  # recovery databases created on this host
        self.requests: dict[str, dict[str, Any]] = {}  # mailbox restore requests
        self.display_names: dict[str, str] = dict(display_names or {})
        self.mailbox_dbs: dict[str, str] = dict(mailbox_dbs or {})
        self._busy = threading.RLock()  # one script at a time: the store's state is shared
        self.streams: dict[str, LabStream] = {}  # type: ignore[assignment]
        if self._state_path.exists():
            self._load()
        else:
            for drive in server.drives:
                (root / drive.letter.upper()).mkdir(parents=True, exist_ok=True)
            for index, sg in enumerate(server.storage_groups):
                self.streams[sg.name] = self._new_stream(sg, index)
            self.save()
        self._apply_locks()

    # -- state ------------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.root / ".lab" / "host.json"

    def save(self) -> None:
        data = {
            "streams": {
                name: {
                    "current": s.current,
                    "checkpoint": s.checkpoint,
                    "circular": s.circular_logging,
                    "rand": s.sig.random,
                    "created": s.created.isoformat(),
                    "records": s.records,
                }
                for name, s in self.streams.items()
            },
            "dbs": {name: vars(d) for name, d in self.dbs.items()},
            "extra": [sg.model_dump(mode="json") for sg in self.extra],
            "requests": self.requests,
            "quotas": self.fs.quotas,  # drives a fault filled (dr lab break fill-disk)
            "machine": self.machine.as_dict(),
        }
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(self._state_path)

    def refresh(self) -> None:
        """Take the state another process (``dr lab break``, ``dr lab up``) left on disk."""
        if self._state_path.exists():
            self._load()
            self._apply_locks()

    def _load(self) -> None:
        data = json.loads(self._state_path.read_text(encoding="utf-8"))
        self.dbs = {name: DbState(**d) for name, d in data["dbs"].items()}
        self.extra = [StorageGroup.model_validate(g) for g in data.get("extra", [])]
        self.requests = data.get("requests", {})
        self.fs.quotas = {k: int(v) for k, v in data.get("quotas", {}).items()}
        self.machine = Machine.of(data.get("machine"), domain=self.domain, boot=self.clock())
        self.domain = self.machine.domain
        self._sync_env()
        self.streams = {}  # type: ignore[assignment]
        for sg in self.groups():
            st = data["streams"][sg.name]
            created = datetime.fromisoformat(st["created"])
            sig = _signature(st["rand"], created)
            self.streams[sg.name] = LabStream(
                sg,
                self.version,
                str(sig),
                st["current"],
                st["checkpoint"],
                circular_logging=st["circular"],
                mounted=self._any_mounted(sg),
                sig=sig,
                records=st["records"],
                created=created,
            )

    def _any_mounted(self, sg: StorageGroup) -> bool:
        return any(self.dbs[self.db_key(sg, d)].mounted for d in sg.databases)

    def db_key(self, sg: StorageGroup, db: Database) -> str:
        return f"{sg.name}/{db.name}"

    def groups(self) -> list[StorageGroup]:
        """The inventory's storage groups (databases from 2010) and recovery databases."""
        return [*self.server.storage_groups, *self.extra]

    def _apply_locks(self) -> None:
        for sg in self.groups():
            stream = self.streams[sg.name]
            current = f"{sg.log_path}\\{sg.log_prefix}.log"
            self._lock(current, stream.mounted)
            for db in sg.databases:
                mounted = self.dbs[self.db_key(sg, db)].mounted
                for path in (db.edb, db.stm if self.version <= 2003 else None):
                    if path:
                        self._lock(path, mounted)

    def _lock(self, path: str, on: bool) -> None:
        if on:
            self.fs.lock(path, "store.exe")
        elif self.fs.locked_by(path):
            self.fs.unlock(path, "store.exe")

    # -- creating the store -------------------------------------------------------------------

    def _new_stream(self, sg: StorageGroup, index: int) -> LabStream:
        created = self.clock()
        sig = _signature(0x2710198 + index * 7919 + self.random.randrange(1 << 16), created)
        stream = LabStream(
            sg,
            self.version,
            str(sig),
            current=1,
            checkpoint=1,
            circular_logging=sg.circular_logging,
            sig=sig,
            created=created,
        )
        self.log_dir(stream).mkdir(parents=True, exist_ok=True)
        for db in sg.databases:
            state = DbState(db_sig=self.random.randrange(1, 1 << 31))
            self.dbs[self.db_key(sg, db)] = state
            self._create_db(stream, db, state)
        self._write_current(stream)
        return stream

    def _create_db(self, stream: LabStream, db: Database, state: DbState) -> None:
        header = self._header(stream, state, ese.DbState.DIRTY_SHUTDOWN)
        exstore.new_database(self.path(db.edb), header, self.data_pages)
        if db.stm and self.version <= 2003:
            stm = replace(header, streaming=True)
            exstore.new_database(self.path(db.stm), stm, 4)

    def _header(self, stream: LabStream, db: DbState, state: ese.DbState) -> ese.DatabaseHeader:
        dirty = state == ese.DbState.DIRTY_SHUTDOWN
        now = ese.LogTime.from_datetime(self.clock())
        return ese.DatabaseHeader(
            state=state,
            page_size=self.page,
            db_signature=_signature(db.db_sig, stream.created),
            log_signature=stream.sig,
            gen_min_required=stream.checkpoint if dirty else 0,
            gen_max_required=stream.current if dirty else 0,
            gen_max_committed=stream.current,
            dbtime=db.dbtime,
            last_consistent=None if dirty else ese.LgPos(stream.current),
            consistent_time=None if dirty else now,
            last_attach=ese.LgPos(stream.checkpoint),
            attach_time=now,
        )

    # -- logs -----------------------------------------------------------------------------------

    def _log_header(self, stream: LabStream, generation: int) -> ese.LogHeader:
        return ese.LogHeader(
            generation=generation,
            signature=stream.sig,
            created=ese.LogTime.from_datetime(self.clock()),
            previous_created=None,
            page_size=self.page,
            circular_logging=stream.circular_logging,
        )

    def _write_current(self, stream: SimStream) -> None:
        assert isinstance(stream, LabStream)
        folder = self.log_dir(stream)
        folder.mkdir(parents=True, exist_ok=True)
        current = folder / f"{stream.prefix}.log"
        if self.fs.locked_by(self._win(stream, f"{stream.prefix}.log")):
            self.fs.unlock(self._win(stream, f"{stream.prefix}.log"), "store.exe")
        exstore.write_log(
            current, self._log_header(stream, stream.current), stream.records, self.log_size
        )
        chk = ese.CheckpointHeader(checkpoint=ese.LgPos(stream.checkpoint), signature=stream.sig)
        (folder / f"{stream.prefix}.chk").write_bytes(ese.checkpoint_bytes(chk))
        if stream.mounted:
            self.fs.lock(self._win(stream, f"{stream.prefix}.log"), "store.exe")

    def _win(self, stream: SimStream, name: str) -> str:
        return f"{stream.group.log_path.rstrip(chr(92))}\\{name}"

    def _roll(self, stream: SimStream) -> None:
        """The current log closes: it becomes ``Enn<generation>.log``; a new one starts."""
        assert isinstance(stream, LabStream)
        folder = self.log_dir(stream)
        if not (folder / f"{stream.prefix}.log").exists():  # a new stream (a recovery database)
            self._write_current(stream)
        self._lock(self._win(stream, f"{stream.prefix}.log"), False)
        (folder / f"{stream.prefix}.log").replace(folder / self.log_name(stream, stream.current))
        stream.current += 1
        stream.records = []
        stream.checkpoint = stream.current - 1
        self._write_current(stream)
        self._refresh_headers(stream)
        if stream.circular_logging:
            self._truncate(stream)

    def _refresh_headers(self, stream: LabStream) -> None:
        for db in stream.group.databases:
            state = self.dbs[self.db_key(stream.group, db)]
            if state.mounted and self.path(db.edb).exists():
                exstore.write_header(
                    self.path(db.edb), self._header(stream, state, ese.DbState.DIRTY_SHUTDOWN)
                )

    # -- mail -----------------------------------------------------------------------------------

    def deliver(
        self, db_name: str, mailbox: str, subject: str, folder: str = "Inbox"
    ) -> Txn | None:
        message = Message(
            mailbox, uuid.UUID(int=self.random.getrandbits(128)).hex[:16], folder, subject
        )
        return self._transact(db_name, "deliver", message)

    def move(self, db_name: str, message: Message, folder: str) -> Txn | None:
        moved = Message(message.mailbox, message.id, folder, message.subject)
        return self._transact(db_name, "move", moved)

    def delete(self, db_name: str, message: Message) -> Txn | None:
        return self._transact(db_name, "delete", message)

    def _transact(self, db_name: str, op: str, message: Message) -> Txn | None:
        sg, db = self.find_db(db_name)
        state = self.dbs[self.db_key(sg, db)]
        if not state.mounted or not self.path(db.edb).exists():
            return None  # a dismounted store takes no mail
        stream = self.streams[sg.name]
        state.dbtime += 1
        txn = Txn(self.clock(), state.dbtime, db.name, op, message)
        record = txn.record(exstore.page_for(message, self.data_pages))
        if not exstore.log_room(stream.records, record, self.log_size):
            self._roll(stream)
        stream.records.append(record)
        self._write_current(stream)
        exstore.apply_transactions(self.path(db.edb), [txn])
        self._record_truth(txn)
        return txn

    def _record_truth(self, txn: Txn) -> None:
        if self.truth_dir is None:
            return
        self.truth_dir.mkdir(parents=True, exist_ok=True)
        with (self.truth_dir / f"{self.name}.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(txn.record(0), separators=(",", ":")) + "\n")

    def roll_all(self) -> None:
        for stream in self.streams.values():
            if stream.mounted:
                self._roll(stream)

    def find_db(self, name: str) -> tuple[StorageGroup, Database]:
        wanted = name.lower()
        for sg in self.groups():
            for db in sg.databases:
                full = {
                    db.name.lower(),
                    f"{self.name}\\{sg.name}\\{db.name}".lower(),
                    f"{sg.name}\\{db.name}".lower(),
                }
                if wanted in full:
                    return sg, db
        raise _ToolError(f'The specified mailbox database "{name}" couldn\'t be found.', 1)

    # -- the backup emulation on real files ---------------------------------------------------

    def _copy_databases(self, stream: SimStream, dest: Path, *, with_stm: bool) -> dict[str, bytes]:
        files = super()._copy_databases(stream, dest, with_stm=with_stm)
        for db in stream.group.databases:
            copied = dest / PureWindowsPath(db.edb).name
            if copied.exists():
                header = exstore.read_db_header(copied)
                rolled = stream.current - 1
                exstore.write_header(
                    copied, replace(header, gen_min_required=rolled, gen_max_required=rolled)
                )
                files[copied.name] = copied.read_bytes()
        return files

    def _read_databases(self, stream: SimStream, *, with_stm: bool) -> dict[str, bytes]:
        """The files as a backup streams them: a database's header names the logs the backup
        carries (up to the generation just rolled), so a restore replays from there."""
        files: dict[str, bytes] = {}
        for db in stream.group.databases:
            for windows in (db.edb, db.stm if with_stm else None):
                if windows and self.path(windows).exists():
                    files[PureWindowsPath(windows).name] = self.path(windows).read_bytes()
            name = PureWindowsPath(db.edb).name
            if name in files:
                files[name] = _required_from(files[name], stream.current - 1)
        return files

    def dump_header(self, values: dict[str, Any]) -> Any:
        return (yield from self._mh([str(values.get("edb"))]))

    def _mh(self, argv: list[str]) -> Any:
        path = argv[0] if argv else ""
        try:
            header = exstore.read_db_header(self.fs.host_path(path))
        except (OSError, ValueError, Exception):
            yield "stdout", self._failed(-1811, "JET_errFileNotFound", "File not found").encode()
            return -1811
        yield "stdout", ese.mh_text(path, header, family=self.version).encode()
        return 0

    def _failed(self, code: int, name: str, text: str) -> str:
        return (
            f"{_BANNER}\r\nInitiating FILE DUMP mode...\r\n\r\nOperation terminated with "
            f"error {code} ({name}, {text}) after 0.16 seconds.\r\n"
        )

    # -- the handler ----------------------------------------------------------------------------

    def __call__(  # type: ignore[override]
        self,
        script: str,
        stdin: bytes,
        shell: str = "powershell",
        env: dict[str, str] | None = None,
    ) -> Any:
        self.scripts.append(script)
        with self._busy:
            given = {k: v for k, v in (env or {}).items() if k not in self.env}
            self.env.update(given)  # the shell's variables, for this command only
            try:
                return (yield from self._handle(script, stdin, shell))
            finally:
                for key in given:
                    self.env.pop(key, None)

    def _handle(self, script: str, stdin: bytes, shell: str) -> Any:
        self.refresh()
        try:
            if shell == "powershell":
                values = {**script_vars(script), "_script": script}
                for pattern, action in _TOOLS:
                    if pattern.search(script) and _backup_step(action.__name__, values):
                        try:
                            bound = getattr(self, action.__name__)  # this class's override
                            return (yield from bound(values))
                        except _ToolError as exc:
                            yield "stderr", clixml_error(str(exc))
                            return exc.code
                if _TRANSFER.match(script):
                    return (yield from self.files(script, stdin))
            return (yield from self._interpret(script, stdin, shell))
        finally:
            self.save()

    def _interpret(self, script: str, stdin: bytes, shell: str) -> Any:
        from dr.lab.ps import run_cmd, run_powershell

        if shell == "cmd":
            return (yield from run_cmd(script, self))
        return (yield from run_powershell(script, self, stdin))

    # -- LabHost --------------------------------------------------------------------------------

    def directory_entry(self, path: str) -> Any:
        """What ``[ADSI]'LDAP://...'`` finds in this host's forest (RootDSE, the Exchange
        organization's administrative groups with their legacyExchangeDN)."""
        from dr.lab.ps.values import PSObject

        key = path.removeprefix("LDAP://").removeprefix("ldap://").lower()
        found = self.directory.get(key)
        return PSObject.of("System.DirectoryServices.DirectoryEntry", **found) if found else None

    def cmdlet(self, name: str) -> Any:
        from dr.lab.dctools import restart_computer
        from dr.lab.excmdlets import CMDLETS, get_wmi_object

        machine = {"get-wmiobject": get_wmi_object, "add-computer": add_computer,
                   "get-service": get_service,
                   "restart-computer": restart_computer}.get(name.lower())  # fmt: skip
        if machine is not None:
            return machine
        if self.version < 2007 or not self.machine.installed:
            return None  # no Exchange Management Shell before setup has run
        return CMDLETS.get(name.lower())

    def native(self, name: str) -> Any:
        from dr.lab.extools import NATIVES
        from dr.lab.setup import exchange_setup

        if name.lower() == "setup":
            return exchange_setup if self.machine.media else None
        if not self.machine.installed and name.lower() == "eseutil":
            return None
        if name.lower() == "shutdown":  # shutdown /r: the machine restarts
            from dr.lab.dctools import NATIVES as MACHINE

            return MACHINE["shutdown"]
        return NATIVES.get(name.lower())

    def os_object(self) -> Any:
        return os_object(self)

    @property
    def exchange_shell(self) -> bool:
        """Whether the Exchange Management Shell answers (2013+): only once setup has run."""
        return self.machine.installed

    @property
    def exchange_cu(self) -> int | None:
        """The cumulative update of the Exchange setup at hand (its media, else the server's):
        which license switch setup accepts depends on it (dr.lab.ps.tools)."""
        label = self.machine.media_version or str(getattr(self.server, "service_pack", "") or "")
        found = re.search(r"CU(\d+)", label, re.IGNORECASE)
        return int(found.group(1)) if found else None

    # -- the machine ------------------------------------------------------------------------

    def _sync_env(self) -> None:
        self.env.update({"COMPUTERNAME": self.name, "ProgramFiles": "C:\\Program Files"})
        if self.machine.installed:  # setup sets it (Exchange 2007+; used by the step library)
            self.env["ExchangeInstallPath"] = self.install_path.rstrip("\\") + "\\"
        else:
            self.env.pop("ExchangeInstallPath", None)

    def answering(self) -> bool:
        """Whether anything answers at this host's address (not once the server is lost).

        Read from the saved state (``dr lab break`` runs in another process) without loading
        it: a script may be running on this host in another thread."""
        try:
            data = json.loads(self._state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return self.machine.present
        return bool((data.get("machine") or {}).get("present", True))

    def restart(self) -> None:
        """The machine restarts: a later boot time (the engine's restart wait reads it)."""
        before = datetime.fromisoformat(self.machine.boot)
        self.machine.boot = max(self.clock(), before + timedelta(minutes=1)).isoformat()

    def lose(self) -> None:
        """The server is gone with its disks: every drive's files, the store, the locks."""
        import shutil

        for sg in self.groups():
            for db in sg.databases:
                state = self.dbs[self.db_key(sg, db)]
                state.mounted = False
            self.streams[sg.name].mounted = False
        self.fs.locks.clear()
        for drive in self.root.iterdir():
            if drive.is_dir() and len(drive.name) == 1:
                shutil.rmtree(drive)
        self.extra, self.requests = [], {}
        self.dbs = {k: v for k, v in self.dbs.items() if not v.recovery}
        self.machine = Machine(present=False, installed=False, domain="",
                               boot=self.machine.boot)  # fmt: skip
        self.domain = ""
        self._sync_env()

    def install_windows(self, name: str) -> None:
        """A fresh Windows installation named ``name``, in a workgroup, with the server's
        drives (empty) and no Exchange."""
        if self.machine.present and self.machine.installed:
            raise _ToolError(f"{self.name} is running: only a lost server is reinstalled", 1)
        for drive in self.server.drives:
            (self.root / drive.letter.upper()).mkdir(parents=True, exist_ok=True)
        self.name = name
        self.machine = Machine(present=True, installed=False, domain="", boot=self.machine.boot)
        self.domain = ""
        self.restart()
        self._sync_env()

    def mount_media(self, drive: str, label: str) -> str:
        """Exchange's setup media on ``drive`` (an ISO mounted as a DVD drive)."""
        letter = drive.rstrip(":").upper()
        if letter in {d.letter.upper() for d in self.server.drives}:
            raise _ToolError(f"{letter}: is a disk of {self.name}; mount the media elsewhere", 1)
        folder = self.root / letter
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Setup.exe").write_text(f"Microsoft Exchange Server {label} setup\n")
        self.machine.media, self.machine.media_version = letter, label
        return f"{self.name}: Exchange Server {label} setup media on {letter}:\\"

    def program_found(self, command: str) -> bool:
        """eseutil named by a full path runs only from where setup put it: the install
        path's bin folder (``C:\\Program Files\\Exchsrvr\\bin`` on 2000/2003, KB 825088;
        ``$env:ExchangeInstallPath\\Bin`` on 2007+). A bare name is found on the PATH.
        Doubled separators count as one, as Windows reads them: the install path ends in a
        backslash, so ``"$env:ExchangeInstallPath\\Bin\\eseutil.exe"`` names ``V15\\\\Bin``.
        Exchange setup runs from its media's root (``D:\\Setup.exe``)."""
        parts = [p for p in re.split(r"[\\/]", command.strip().strip('"')) if p]
        program = parts[-1].lower().removesuffix(".exe") if parts else ""
        folder = "\\".join(parts[:-1]).rstrip("\\").lower()
        if program == "setup":  # setup runs from its media, e.g. D:\\Setup.exe
            return bool(self.machine.media) and folder == self.machine.media.lower() + ":"
        if len(parts) < 2 or program != "eseutil":
            return True
        if "ExchangeInstallPath" not in self.env:
            return False
        return folder == self.env["ExchangeInstallPath"].rstrip("\\").lower() + "\\bin"

    # -- what cmdlets and tools do ---------------------------------------------------------

    def mount(self, db_name: str, force: bool = False) -> list[str]:
        """Mount-Database: a missing file becomes a new, empty database (as Exchange does)."""
        sg, db = self.find_db(db_name)
        state = self.dbs[self.db_key(sg, db)]
        if state.mounted:
            return []
        stream = self.streams[sg.name]
        warnings = []
        path = self.path(db.edb)
        if not path.exists():
            state.db_sig, state.dbtime = self.random.randrange(1, 1 << 31), 0
            self._create_db(stream, db, state)
            warnings.append(
                f"The database file {db.edb} did not exist: a new, empty database was created."
            )
        if state.recovery and any(o.recovery and o.mounted for o in self.dbs.values()):
            raise _ToolError("Only one recovery database can be mounted on a server.", 1)
        header = exstore.read_db_header(path)
        if (
            header.state != ese.DbState.CLEAN_SHUTDOWN
            and header.state != ese.DbState.DIRTY_SHUTDOWN
        ):
            raise _ToolError(_mount_error(db.name, -1216), 1)
        if header.state == ese.DbState.DIRTY_SHUTDOWN and not _newly_created(warnings):
            raise _ToolError(_mount_error(db.name, -550), 1)
        self._check_file_restore(state, header, db.name)
        state.dbtime = max(state.dbtime, exstore.read_database(path).dbtime)
        state.mounted = True
        stream.mounted = True
        self._roll(stream)
        self._apply_locks()
        return warnings

    def _check_file_restore(self, state: DbState, header: ese.DatabaseHeader, name: str) -> None:
        """2010+: a file that is not the database the directory knows (another signature: a
        backup of a database since recreated, or another server's database) mounts only with
        ``AllowFileRestore`` $true ("You can't mount a database that doesn't match the database
        entry in Active Directory", Set-MailboxDatabase); a recovery database takes any file.
        Once mounted, the file is the one the directory knows."""
        found = header.db_signature.random
        foreign = found != state.db_sig and self.version >= 2010 and not state.recovery
        if foreign and not state.allow_file_restore:
            raise _ToolError(_mount_error(name, -531), 1)
        state.db_sig = found

    def dismount(self, db_name: str) -> None:
        sg, db = self.find_db(db_name)
        state = self.dbs[self.db_key(sg, db)]
        if not state.mounted:
            return
        stream = self.streams[sg.name]
        path = self.path(db.edb)
        state.mounted = False
        if path.exists():
            exstore.write_header(path, self._header(stream, state, ese.DbState.CLEAN_SHUTDOWN))
        stream.mounted = self._any_mounted(sg)
        self._apply_locks()

    def sleep(self, seconds: float) -> None:
        """Start-Sleep on the lab host takes no time: the lab's work is done at once."""

    def new_recovery_database(self, name: str, edb: str, log_path: str) -> None:
        """New-MailboxDatabase -Recovery: the object only; the file is whatever is at
        ``edb`` when it mounts (nothing there: a new, empty database)."""
        from dr.model.inventory import Database

        if any(g.name.lower() == name.lower() for g in self.groups()):
            raise _ToolError(f'The database "{name}" already exists.', 1)
        used = {g.log_prefix for g in self.groups()}
        prefix = next(f"E{n:02X}" for n in range(256) if f"E{n:02X}" not in used)
        sg = StorageGroup(name=name, log_prefix=prefix, log_path=log_path, system_path=log_path,
                          databases=[Database(name=name, edb=edb)])  # fmt: skip
        self.extra.append(sg)
        self.dbs[self.db_key(sg, sg.databases[0])] = DbState(
            mounted=False, recovery=True, db_sig=self.random.randrange(1, 1 << 31)
        )
        created = self.clock()
        sig = _signature(0x3A0000 + self.random.randrange(1 << 16), created)
        self.streams[name] = LabStream(sg, self.version, str(sig), current=1, checkpoint=1,
                                       mounted=False, sig=sig, created=created)  # fmt: skip

    def remove_database(self, name: str) -> None:
        """Remove-MailboxDatabase: a dismounted recovery database's object goes; its files
        stay on disk (Exchange does not delete them)."""
        sg, db = self.find_db(name)
        state = self.dbs[self.db_key(sg, db)]
        if not state.recovery:
            raise _ToolError(f"dr lab: only recovery databases are removed here ({name})", 1)
        if state.mounted:
            raise _ToolError(f"The database {name} is mounted. Dismount it first.", 1)
        self.extra = [g for g in self.extra if g.name != sg.name]
        del self.dbs[self.db_key(sg, db)]
        self.streams.pop(sg.name, None)

    def restore_request(self, name: str, source_db: str, source: str, target: str,
                        root: str) -> dict[str, Any]:  # fmt: skip
        """New-MailboxRestoreRequest: the source mailbox's messages, from a mounted recovery
        database, delivered into the target mailbox under ``root`` (as the store logs them)."""
        sg, db = self.find_db(source_db)
        state = self.dbs[self.db_key(sg, db)]
        if not (state.recovery and state.mounted):
            raise _ToolError(f"The database {source_db} isn't a mounted recovery database.", 1)
        alias = self._store_mailbox(source)
        if target not in self.mailbox_dbs:
            raise _ToolError(f"The operation couldn't be performed because object '{target}' "
                             "couldn't be found.", 1)  # fmt: skip
        held = [m for m in exstore.contents(self.path(db.edb)).values() if m.mailbox == alias]
        for message in sorted(held, key=lambda m: m.key):
            copy = Message(target, f"{message.id}-r", f"{root}/{message.folder}", message.subject)
            self._transact(self.mailbox_dbs[target], "deliver", copy)
        found = {"Name": name, "Status": "Completed", "SourceDatabase": source_db,
                 "TargetMailbox": target, "ItemsTransferred": len(held)}  # fmt: skip
        self.requests[name] = found
        return found

    def _store_mailbox(self, given: str) -> str:
        """-SourceStoreMailbox: the MailboxGuid, or the display name — not the alias."""
        for alias, display in self.display_names.items():
            if given.lower() in (mailbox_guid(alias).lower(), display.lower()):
                return alias
        raise _ToolError(f"The operation couldn't be performed because the mailbox "
                         f"'{given}' couldn't be found in the source database.", 1)  # fmt: skip

    def crash(self, db_name: str) -> None:
        """The store stops with the database attached: Dirty Shutdown, files still dirty."""
        sg, db = self.find_db(db_name)
        state = self.dbs[self.db_key(sg, db)]
        state.mounted = False
        self.streams[sg.name].mounted = self._any_mounted(sg)
        self._apply_locks()


def _required_from(data: bytes, rolled: int) -> bytes:
    """A database file's bytes with Log Required ``rolled``-``rolled`` in both header pages."""
    header = ese.read_header(data)
    assert isinstance(header, ese.DatabaseHeader)
    fixed = replace(header, gen_min_required=rolled, gen_max_required=rolled)
    head = ese.database_header_bytes(fixed)
    return head + data[len(head) :]


def mailbox_guid(alias: str) -> str:
    """The lab's MailboxGuid of a mailbox: stable, derived from its alias."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailbox/{alias}"))


def _backup_step(action: str, values: dict[str, Any]) -> bool:
    """A backup library step (it names the backup type or its folder), not a restore step
    that happens to call the same cmdlet: only those go to the backup emulation."""
    if action == "circular_logging":
        return "type" in values
    return action != "mailbox_counts"  # that one is answered by the cmdlet, from the store


def _newly_created(warnings: Iterable[str]) -> bool:
    return any("new, empty database" in w for w in warnings)


def _mount_error(db: str, ec: int) -> str:
    return (
        f"Couldn't mount the database that you specified. Specified database: {db}; Error "
        "code: An Active Manager operation failed. Error: The database action failed. Error: "
        "Operation failed with message: MapiExceptionDatabaseError: Unable to mount "
        f"database. (hr=0x80004005, ec={ec})"
    )


def recover(host: ExchangeHost, prefix: str, log_dir: str, system_dir: str, db_dir: str) -> str:
    """``eseutil /r``: replay the stream's logs in ``log_dir`` into the databases in ``db_dir``.

    Starts at each dirty database's Log Required minimum, needs every generation up to its
    maximum (-543 otherwise), refuses a log of another stream (-530) and a damaged one (-501),
    replays every contiguous generation present (the current ``Enn.log`` last), leaves the
    database in Clean Shutdown and starts a new current log, as ESE does. A dirty database
    on a drive with no free space stops it before anything is written: -1808
    (JET_errDiskFull, "No space left on disk"); the log folder's drive full, -529
    (JET_errLogDiskFull, "Log disk full") — the ESE error list's numbers and texts (KB 266361,
    errors 0 to -1048, http://support.microsoft.com/kb/266361; KB 266367, -1051 and below).
    """
    logs = _stream_logs(host, prefix, log_dir)
    done = []
    for path in sorted(host.fs.host_path(db_dir).glob("*.edb")):
        header = exstore.read_db_header(path)
        if header.state == ese.DbState.CLEAN_SHUTDOWN:
            continue
        _room_to_recover(host, db_dir, log_dir)
        last, dbtime = _replay_into(path, header, logs)
        _finish_recovery(host, path, header, last, dbtime, prefix, log_dir, system_dir)
        done.append(path.name)
    return ", ".join(done)


def _room_to_recover(host: ExchangeHost, db_dir: str, log_dir: str) -> None:
    for folder, error in ((db_dir, (-1808, "JET_errDiskFull", "No space left on disk")),
                          (log_dir, (-529, "JET_errLogDiskFull", "Log disk full"))):  # fmt: skip
        if host.fs.free(host.fs.full(folder, host.native_cwd)[0]) == 0:
            raise exstore.RecoveryError(*error, folder)


def _stream_logs(host: ExchangeHost, prefix: str, log_dir: str) -> dict[int, Path]:
    folder = host.fs.host_path(log_dir)
    found: dict[int, Path] = {}
    pattern = re.compile(rf"{re.escape(prefix)}([0-9A-F]{{5,8}})?\.log", re.IGNORECASE)
    for path in folder.iterdir() if folder.is_dir() else []:
        if pattern.fullmatch(path.name):
            found[exstore.read_log(path).generation] = path
    return found


def _replay_into(path: Path, header: ese.DatabaseHeader, logs: dict[int, Path]) -> tuple[int, int]:
    start = header.gen_min_required
    for gen in range(start, header.gen_max_required + 1):
        if gen not in logs:
            raise exstore.missing_log(gen)
    gen, dbtime = start, header.dbtime
    present = sorted(g for g in logs if g >= start)
    if present and present[-1] != start + len(present) - 1:
        missing = next(g for g in range(start, present[-1]) if g not in logs)
        raise exstore.missing_log(missing)
    for gen in present:
        log = exstore.read_log(logs[gen])
        if header.log_signature is not None and log.header.signature != header.log_signature:
            raise exstore.bad_signature(logs[gen].name)
        txns = [t for t in log.txns() if t.db == _db_name(path, log)]
        dbtime = max(dbtime, exstore.apply_transactions(path, txns))
    return (present[-1] if present else start), dbtime


def _db_name(path: Path, log: exstore.LogFile) -> str:
    names = {r["db"] for r in log.records}
    stem = path.stem.lower()
    return next((n for n in names if n.lower() == stem), next(iter(names), path.stem))


def _finish_recovery(
    host: ExchangeHost,
    path: Path,
    header: ese.DatabaseHeader,
    last: int,
    dbtime: int,
    prefix: str,
    log_dir: str,
    system_dir: str,
) -> None:
    now = ese.LogTime.from_datetime(host.clock())
    clean = replace(
        header,
        state=ese.DbState.CLEAN_SHUTDOWN,
        gen_min_required=0,
        gen_max_required=0,
        dbtime=dbtime,
        last_consistent=ese.LgPos(last + 1),
        consistent_time=now,
        last_detach=ese.LgPos(last + 1),
        detach_time=now,
    )
    exstore.write_header(path, clean)
    folder = host.fs.host_path(log_dir)
    current = folder / f"{prefix}.log"
    if not current.exists() and header.log_signature is not None:
        log = ese.LogHeader(
            generation=last + 1,
            signature=header.log_signature,
            created=now,
            previous_created=None,
            page_size=header.page_size,
        )
        exstore.write_log(current, log, [], host.log_size)
    if header.log_signature is not None:
        chk = ese.CheckpointHeader(checkpoint=ese.LgPos(last + 1), signature=header.log_signature)
        (host.fs.host_path(system_dir) / f"{prefix}.chk").write_bytes(ese.checkpoint_bytes(chk))


__all__ += ["RecoveryError", "default_powershell", "log_file_name", "page_size", "recover"]
