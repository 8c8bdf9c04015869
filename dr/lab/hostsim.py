"""An Exchange host's backup commands, emulated for the loopback WinRS endpoint.

``HostSim(root, server)`` is a handler for :class:`dr.lab.winrs.WinRSServer`. ``root`` holds
the host's drives (``E:\\x`` → ``<root>/E/x``); the server's storage groups from the
inventory get database files (``.edb``, and ``.stm`` on 2000/2003), numbered transaction
logs, the current ``Enn.log`` and a checkpoint. :meth:`HostSim.workload` writes mail: new
log generations and changed database pages.

The steps of ``runbooks/backup.yaml`` start with their parameters as quoted assignments;
the simulator reads those (it does not interpret the rest of the PowerShell) and answers
the tool each step calls the way the real one behaves where it matters for recovery:

* ``Get-MailboxDatabase`` / the ``Exchange_StorageGroup`` WMI class: circular logging and
  whether the store is mounted; the step exits 4 for a log backup while it is on;
* ``eseutil /ml`` over the stream and on ``Enn.log``: the files, the current generation
  and the log signature, in eseutil's output format (research notes §1.5);
* ``diskshadow`` with the Exchange writer (2007+) and ``ntbackup backup`` (2000/2003):
  the current log is rolled, the files are copied into the temporary folder (NTBackup
  writes one ``.bkf``), and the logs below the checkpoint are truncated after a full or an
  incremental — never after a copy or a differential, nor after a full of a dismounted
  database (which Exchange treats as a copy);
* ``eseutil /mh`` on a copied database: Dirty Shutdown with the Log Required range and
  the signatures (research notes §1.4).

With circular logging on, every workload deletes the logs below the checkpoint. Every
backup is kept in :attr:`HostSim.backups` with the exact bytes it produced: the ground
truth a test compares a restore with. File transfers and anything else go to
:class:`dr.lab.pslite.PowerShellLite` on the same drives.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

from dr.exchange.logs import log_file_name
from dr.lab.pslite import PowerShellLite, clixml_error, unquote
from dr.model.inventory import Server, StorageGroup

__all__ = ["HostSim", "SimBackup", "SimStream", "script_vars"]

Output = Generator[tuple[str, bytes], None, int]
_ASSIGN = re.compile(r"^\$(\w+) = (.+)$", re.MULTILINE)
_LIST = re.compile(r"'(?:[^']|'')*'")
WRITER_GUID = "{76fe1ac4-15f7-4bcd-987e-8e1acb462fb7}"


def script_vars(script: str) -> dict[str, Any]:
    """The ``$name = <literal>`` assignments of a step's script (later ones win)."""
    found: dict[str, Any] = {}
    for name, value in _ASSIGN.findall(script):
        parsed = _literal(value.strip())
        if parsed is not None:
            found[name.lower()] = parsed
    return found


def _literal(text: str) -> Any:
    if re.fullmatch(r"'(?:[^']|'')*'", text):
        return unquote(text)
    if text.startswith("@(") and text.endswith(")"):
        return [unquote(item) for item in _LIST.findall(text)]
    if text in ("$true", "$false"):
        return text == "$true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return None


@dataclass
class SimStream:
    """One log stream of the simulated host: its files, generations and settings."""

    group: StorageGroup
    family_version: int
    signature: str
    current: int
    checkpoint: int
    circular_logging: bool = False
    mounted: bool = True

    @property
    def prefix(self) -> str:
        return self.group.log_prefix


@dataclass
class SimBackup:
    """What one backup produced on the host (name → bytes) and the logs it held."""

    stream: str
    backup_type: str
    truncated: bool
    files: dict[str, bytes] = field(default_factory=dict)
    first_gen: int = 0
    last_gen: int = 0


class HostSim:
    """A handler for WinRSServer emulating ``server``'s backup tools over ``root``."""

    def __init__(self, root: Path, server: Server, *, log_size: int = 4096, seed: int = 1) -> None:
        if server.exchange_version is None:
            raise ValueError(f"{server.name} runs no Exchange")
        self.root, self.server, self.log_size = root, server, log_size
        self.random = random.Random(seed)
        self.files = PowerShellLite(root=root)
        self.version = server.exchange_version
        self.page = 4096 if self.version <= 2003 else 32768
        self.streams = {sg.name: self._create(sg, i) for i, sg in enumerate(server.storage_groups)}
        self.headers: dict[str, dict[str, Any]] = {}  # copied .edb (host path) → header facts
        self.backups: list[SimBackup] = []
        self.scripts: list[str] = []

    # -- the estate on disk ----------------------------------------------------------------

    def path(self, windows: str) -> Path:
        """Where a Windows path of this host lives under ``root``."""
        win = PureWindowsPath(windows)
        parts = [p for p in win.parts[1:] if p not in ("", "\\")]
        return self.root.joinpath(win.drive.rstrip(":"), *parts)

    def _create(self, sg: StorageGroup, index: int) -> SimStream:
        signature = f"Create time:10/25/2016 14:22:{index:02d}.101 Rand:{2710198 + index} Computer:"
        stream = SimStream(
            sg, self.version, signature, current=1, checkpoint=1,
            circular_logging=sg.circular_logging,
        )  # fmt: skip
        for db in sg.databases:
            self._write_database(db.edb, pages=8)
            if db.stm and self.version <= 2003:
                self._write_database(db.stm, pages=4)
        self._write_current(stream)
        self._write_mail(stream, generations=3)
        return stream

    def _write_database(self, windows: str, pages: int) -> None:
        target = self.path(windows)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"".join(self._page(n) for n in range(pages)))

    def _page(self, number: int) -> bytes:
        head = b"ESE-PAGE %08d " % number
        return head + self.random.randbytes(self.page - len(head))

    def log_dir(self, stream: SimStream) -> Path:
        return self.path(stream.group.log_path)

    def log_name(self, stream: SimStream, generation: int) -> str:
        return log_file_name(stream.prefix, generation, self.version)

    def _write_current(self, stream: SimStream) -> None:
        folder = self.log_dir(stream)
        folder.mkdir(parents=True, exist_ok=True)
        body = f"ESE-LOG {stream.prefix} gen={stream.current} {stream.signature}\n".encode()
        (folder / f"{stream.prefix}.log").write_bytes(body.ljust(self.log_size, b"\0"))
        (folder / f"{stream.prefix}.chk").write_bytes(
            f"ESE-CHECKPOINT {stream.prefix} gen={stream.checkpoint}\n".encode().ljust(64, b"\0")
        )

    def _roll(self, stream: SimStream) -> None:
        """The current log is full: it becomes a numbered file and a new one starts."""
        folder = self.log_dir(stream)
        data = self.random.randbytes(self.log_size - 64)
        head = f"ESE-LOG {stream.prefix} gen={stream.current} {stream.signature}\n".encode()
        (folder / self.log_name(stream, stream.current)).write_bytes(head.ljust(64, b"\0") + data)
        stream.current += 1
        stream.checkpoint = stream.current - 1
        self._write_current(stream)

    def workload(self, sg_name: str, generations: int = 3) -> None:
        """Mail arrives in ``sg_name``: ``generations`` logs fill, database pages change."""
        self._write_mail(self.streams[sg_name], generations)

    def _write_mail(self, stream: SimStream, generations: int) -> None:
        for _ in range(generations):
            self._roll(stream)
            for db in stream.group.databases:
                self._touch(db.edb)
        if stream.circular_logging:
            self._truncate(stream)

    def _touch(self, windows: str) -> None:
        target = self.path(windows)
        size = target.stat().st_size
        with target.open("r+b") as fh:
            number = self.random.randrange(size // self.page)
            fh.seek(number * self.page)
            fh.write(self._page(number))

    def logs(self, stream: SimStream) -> list[int]:
        """Generations of the numbered log files on disk, in order."""
        found = []
        for path in self.log_dir(stream).iterdir():
            match = re.fullmatch(rf"{stream.prefix}([0-9A-F]+)\.log", path.name, re.IGNORECASE)
            if match:
                found.append(int(match.group(1), 16))
        return sorted(found)

    def _truncate(self, stream: SimStream) -> None:
        """Delete the logs below the checkpoint (their contents are in the database)."""
        for generation in self.logs(stream):
            if generation < stream.checkpoint:
                (self.log_dir(stream) / self.log_name(stream, generation)).unlink()

    def set_circular_logging(self, sg_name: str, on: bool) -> None:
        self.streams[sg_name].circular_logging = on
        if on:
            self._truncate(self.streams[sg_name])

    # -- the handler -----------------------------------------------------------------------

    def __call__(self, script: str, stdin: bytes) -> Output:
        self.scripts.append(script)
        values = {**script_vars(script), "_script": script}
        for pattern, action in _TOOLS:
            if pattern.search(script):
                try:
                    return (yield from action(self, values))
                except _ToolError as exc:
                    yield "stderr", clixml_error(str(exc))
                    return exc.code
        return (yield from self.files(script, stdin))

    def _stream(self, values: dict[str, Any]) -> SimStream:
        name = values.get("sg") or values.get("db")
        for stream in self.streams.values():
            if stream.group.name == name or any(d.name == name for d in stream.group.databases):
                return stream
        log_path = values.get("logpath")
        for stream in self.streams.values():
            if log_path and stream.group.log_path.lower() == str(log_path).lower():
                return stream
        raise _ToolError(f"no storage group or database {name or log_path!r} on this server", 2)

    def circular_logging(self, values: dict[str, Any]) -> Output:
        stream = self._stream(values)
        answer = {
            "Name": values.get("db") or stream.group.name,
            "CircularLoggingEnabled": stream.circular_logging,
            "Mounted": stream.mounted,
        }
        yield "stdout", json.dumps(answer).encode() + b"\r\n"
        if stream.circular_logging and values.get("type") in ("incremental", "differential"):
            yield "stderr", clixml_error(f"circular logging is on for {answer['Name']}")
            return 4
        return 0

    def list_logs(self, values: dict[str, Any]) -> Output:
        stream = self._stream(values)
        yield "stdout", self._ml_stream(stream).encode()
        if "'.log')" in values["_script"]:
            yield "stdout", self._ml_current(stream).encode()
        return 0

    def _ml_stream(self, stream: SimStream) -> str:
        folder = stream.group.log_path.rstrip("\\")
        lines = [_BANNER, "Initiating FILE DUMP mode...", "", "Verifying log files...",
                 f"     Base name: {stream.prefix}", ""]  # fmt: skip
        names = [self.log_name(stream, g) for g in self.logs(stream)] + [f"{stream.prefix}.log"]
        lines += [f"      Log file: {folder}\\{name} - OK" for name in names]
        lines += ["", "No damaged log files were found.", "",
                  "Operation completed successfully in 0.31 seconds.", ""]  # fmt: skip
        return "\r\n".join(lines)

    def _ml_current(self, stream: SimStream) -> str:
        folder = stream.group.log_path.rstrip("\\")
        lines = [_BANNER, "Initiating FILE DUMP mode...", "",
                 f"      Base name: {stream.prefix}",
                 f"      Log file: {folder}\\{stream.prefix}.log",
                 f"      lGeneration: {stream.current} (0x{stream.current:X})",
                 f"      Checkpoint: (0x{stream.checkpoint:X},8,0)",
                 f"      Signature: {stream.signature}",
                 f"      Env LogFilePath: {folder}\\", "",
                 f"Integrity check passed for log file: {stream.prefix}.log", "",
                 "Operation completed successfully in 0.05 seconds.", ""]  # fmt: skip
        return "\r\n".join(lines)

    def vss_backup(self, values: dict[str, Any]) -> Output:
        stream = self._stream(values)
        backup_type = str(values.get("type"))
        dest = self._fresh(str(values["dest"]))
        self._roll(stream)
        files = {} if "edb" not in values else self._copy_databases(stream, dest, with_stm=False)
        record = self._copy_logs(stream, dest, backup_type, files)
        yield "stdout", self._diskshadow_text(backup_type, record).encode()
        return 0

    def ntbackup(self, values: dict[str, Any]) -> Output:
        stream = self._stream(values)
        backup_type = str(values.get("type"))
        dest = self._fresh(str(values["dest"]))
        self._roll(stream)
        parts: dict[str, bytes] = {}
        if backup_type in ("full", "copy"):
            parts = self._read_databases(stream, with_stm=True)
        record = self._copy_logs(stream, None, backup_type, parts)
        bkf = _container(record.files)
        (dest / "backup.bkf").write_bytes(bkf)
        record.files = {"backup.bkf": bkf}
        yield "stdout", f'Backup of "{stream.group.name}" completed: {len(bkf)} bytes\r\n'.encode()
        return 0

    def _fresh(self, windows: str) -> Path:
        dest = self.path(windows)
        if dest.exists():
            for old in sorted(dest.rglob("*"), reverse=True):
                old.unlink() if old.is_file() else old.rmdir()
        dest.mkdir(parents=True, exist_ok=True)
        return dest

    def _read_databases(self, stream: SimStream, *, with_stm: bool) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for db in stream.group.databases:
            for windows in (db.edb, db.stm if with_stm else None):
                if windows:
                    files[PureWindowsPath(windows).name] = self.path(windows).read_bytes()
        return files

    def _copy_databases(self, stream: SimStream, dest: Path, *, with_stm: bool) -> dict[str, bytes]:
        files = self._read_databases(stream, with_stm=with_stm)
        for name, data in files.items():
            (dest / name).write_bytes(data)
            self.headers[str(dest / name)] = {
                "required": (stream.checkpoint, stream.current),
                "log_signature": stream.signature,
                "db_signature": f"Create time:10/25/2016 14:23:00.000 Rand:{len(name)} Computer:",
            }
        return files

    def _copy_logs(
        self, stream: SimStream, dest: Path | None, backup_type: str, files: dict[str, bytes]
    ) -> SimBackup:
        generations = self.logs(stream)
        for generation in generations:
            name = self.log_name(stream, generation)
            files[name] = (self.log_dir(stream) / name).read_bytes()
        chk = f"{stream.prefix}.chk"
        files[chk] = (self.log_dir(stream) / chk).read_bytes()
        if dest is not None:
            for name in [self.log_name(stream, g) for g in generations] + [chk]:
                (dest / name).write_bytes(files[name])
        truncates = backup_type in ("full", "incremental") and stream.mounted
        if truncates:
            self._truncate(stream)
        record = SimBackup(stream.group.name, backup_type, truncates, dict(files),
                           generations[0] if generations else 0,
                           generations[-1] if generations else 0)  # fmt: skip
        self.backups.append(record)
        return record

    def _diskshadow_text(self, backup_type: str, record: SimBackup) -> str:
        return "\r\n".join([
            "Microsoft DiskShadow version 1.0", "",
            f"-> writer verify {WRITER_GUID}", f"-> set type {backup_type}", "-> begin backup",
            "-> create", f"Copied {len(record.files)} files.",
            "-> end backup", "The backup is complete.", "",
        ])  # fmt: skip

    def dump_header(self, values: dict[str, Any]) -> Output:
        edb = str(values.get("edb"))
        facts = self.headers.get(str(self.path(edb)))
        if facts is None:
            yield "stdout", (f"{_BANNER}\r\nInitiating FILE DUMP mode...\r\n\r\nOperation "
                             "terminated with error -1811 (JET_errFileNotFound, File not "
                             "found) after 0.16 seconds.\r\n").encode()  # fmt: skip
            return -1811
        yield "stdout", _mh_text(edb, facts, self.page).encode()
        return 0

    def mailbox_counts(self, values: dict[str, Any]) -> Output:
        """The backup's ``mailbox-counts`` step: this simulator keeps no mailboxes (the lab's
        Exchange hosts answer the real cmdlet from the store instead)."""
        yield "stdout", b"Mailboxes: 0\r\n"
        return 0

    def collect(self, values: dict[str, Any]) -> Output:
        dest = str(values["dest"]).rstrip("\\")
        base = self.path(dest)
        rows = []
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = path.relative_to(base).as_posix().replace("/", "\\")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            rows.append({"path": f"{dest}\\{rel}", "size": path.stat().st_size, "sha256": digest})
        yield "stdout", json.dumps(rows).encode() + b"\r\n"
        return 0


class _ToolError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


_BANNER = (
    "\r\nExtensible Storage Engine Utilities for Microsoft(R) Exchange Server\r\n"
    "Version 15.01\r\nCopyright (C) Microsoft Corporation. All Rights Reserved.\r\n"
)


def _mh_text(edb: str, facts: dict[str, Any], page: int) -> str:
    lo, hi = facts["required"]
    return "\r\n".join([
        _BANNER, "Initiating FILE DUMP mode...", f"         Database: {edb}", "",
        "DATABASE HEADER:", "Fields:", "        File Type: Database",
        f"     DB Signature: {facts['db_signature']}", f"         cbDbPage: {page}",
        "            State: Dirty Shutdown",
        f"     Log Required: {lo}-{hi} (0x{lo:x}-0x{hi:x}) [Min. Req. Pre-Redo: {lo} (0x{lo:x})]",
        f"    Log Committed: 0-{hi + 1} (0x0-0x{hi + 1:x})",
        "   Log Consistent: 0 (0x0) [Pre-Redo: 0 (0x0)]", "     Repair Count: 0",
        f"    Log Signature: {facts['log_signature']}", "",
        "Operation completed successfully in 0.172 seconds.", "",
    ])  # fmt: skip


def _container(files: dict[str, bytes]) -> bytes:
    """The simulator's stand-in for an NTBackup media file: named members, in order."""
    out = bytearray(b"DR-LAB-BKF 1\n")
    for name, data in files.items():
        out += f"{name}\t{len(data)}\n".encode() + data
    return bytes(out)


_TOOLS: tuple[tuple[re.Pattern[str], Any], ...] = (
    (re.compile(r"Get-MailboxDatabase|Exchange_StorageGroup"), HostSim.circular_logging),
    (re.compile(r"eseutil\.exe /ml \$prefix"), HostSim.list_logs),
    (re.compile(r"diskshadow\.exe /s"), HostSim.vss_backup),
    (re.compile(r"ntbackup\.exe backup \('@'"), HostSim.ntbackup),
    (re.compile(r"eseutil\.exe /mh"), HostSim.dump_header),
    (re.compile(r"Get-ChildItem -LiteralPath \$dest -Recurse"), HostSim.collect),
    (
        re.compile(
            r"\$rows = @\((Get-MailboxStatistics -Database|Get-WmiObject .*Exchange_Mailbox)"
        ),
        HostSim.mailbox_counts,
    ),
)
