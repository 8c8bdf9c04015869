"""The lab's PowerShell and cmd.exe: a real parser, an evaluator, core cmdlets, a file system.

``run_powershell(script, host, stdin)`` parses ``script`` with tree-sitter-pwsh (a syntax
error is refused before anything runs), then runs it against ``host`` (a
:class:`LabHost`: its name, drives, PowerShell / Exchange versions, and the cmdlets and
native tools it provides). ``run_cmd(line, host)`` runs one cmd.exe command line. Both are
generators yielding ``("stdout" | "stderr", bytes)`` and returning the exit code, the
handler shape of :class:`dr.lab.winrs.WinRSServer`; :func:`handler` wraps a host as one.

What reaches stdout: objects at the end of a top-level pipeline, formatted by
:func:`dr.lab.ps.values.format_output` — strings as lines, ``True``/``False``, numbers,
PSObjects in Format-List style (``Name : value``; PowerShell would choose a table for
objects with few properties). Errors go to stderr as CLIXML, as ``powershell.exe`` writes
them to a redirected stderr.

The exit code (``about_PowerShell_exe``, ``-Command`` / ``-EncodedCommand``): ``exit N``
gives N; otherwise 1 if ``$?`` is false after the last statement — an uncaught
terminating error, a non-terminating error in the last statement, or a native program
that exited non-zero there — else 0 (PowerShell/PowerShell#13501 describes this mapping;
nightroman/PowerShellTraps "Exit-code-depends" shows ``'Hello'; Write-Error Oops`` → 1
and ``Write-Error Oops; 'Hello'`` → 0).

The transport's file-transfer scripts (``PUT_SCRIPT``, ``FETCH_SCRIPT``, ``HASH_SCRIPT`` of
:mod:`engine.transports.winrm`) use .NET streams and SHA256 objects outside the subset:
they are recognised by their exact text and routed to :class:`dr.lab.pslite.PowerShellLite`
on the host's drives, after the host's file locks are checked.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Any, Protocol

from dr.lab.ps.commands import Call, NativeResult
from dr.lab.ps.fs import FileSystem, FsError
from dr.lab.ps.values import PSObject, PSRuntimeError

__all__ = [
    "Call",
    "CmdletImpl",
    "LabHost",
    "NativeImpl",
    "NativeResult",
    "PSObject",
    "PSRuntimeError",
    "handler",
    "run_cmd",
    "run_powershell",
]

Output = Generator[tuple[str, bytes], None, int]
CmdletImpl = Callable[[Call], Iterable[Any]]


class LabHost(Protocol):
    name: str
    fs: FileSystem
    ps_version: str | None
    exchange_version: int | None

    def cmdlet(self, name: str) -> CmdletImpl | None: ...

    def native(self, name: str) -> NativeImpl | None: ...


NativeImpl = Callable[[list[str], LabHost, bytes], NativeResult]


def run_powershell(script: str, host: LabHost, stdin: bytes = b"") -> Output:
    """Run a PowerShell script on ``host``; yields its streams, returns its exit code."""
    from dr.lab.ps.interp import Interpreter
    from dr.lab.ps.parse import ParseError, parse
    from dr.lab.pslite import clixml_error

    if host.ps_version is None:
        yield "stderr", _no_powershell()
        return 9009
    transfer = _transfer(script, host, stdin)
    if transfer is not None:
        return (yield from transfer)
    try:
        program = parse(script)
    except ParseError as exc:
        yield "stderr", clixml_error(exc.text.rstrip("\r\n"))
        return 1
    interp = Interpreter(host, stdin)
    return (yield from _drive(interp, program))


def _drive(interp: Any, program: Any) -> Output:
    """Run the script on a worker thread and relay its streams as they come.

    While nothing comes, an empty chunk is yielded every few milliseconds: that is where
    :class:`dr.lab.winrs.WinRSServer` stops a command, and closing this generator sets
    the interpreter's stop flag, which ends the script at its next statement or sleep.
    """
    from dr.lab.ps.interp import HEARTBEAT, Stopped

    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    interp.sink = lambda stream, data: events.put((stream, data))

    def work() -> None:
        try:
            events.put(("done", interp.run_program(program)))
        except Stopped:
            events.put(("done", 1))
        except BaseException as exc:  # handed to the caller's thread
            events.put(("raise", exc))

    threading.Thread(target=work, name="dr-lab-powershell", daemon=True).start()
    try:
        while True:
            try:
                kind, data = events.get(timeout=HEARTBEAT)
            except queue.Empty:
                yield "stdout", b""
                continue
            if kind == "done":
                return int(data)
            if kind == "raise":
                raise data
            yield kind, data
    finally:
        interp.stopped = True


def _no_powershell() -> bytes:
    return (
        b"'powershell.exe' is not recognized as an internal or external command,\r\n"
        b"operable program or batch file.\r\n"
    )


def _transfer(script: str, host: LabHost, stdin: bytes) -> Output | None:
    from dr.lab import pslite

    for pattern in (pslite._PUT, pslite._FETCH, pslite._HASH):
        match = pattern.fullmatch(script)
        if match is None:
            continue
        path = pslite.unquote(match.group(1))
        try:
            host.fs.check_unlocked(host.fs.full(path))
        except FsError as exc:
            return _fail(f'Exception calling "Open" with "4" argument(s): "{exc.message}"')
        return pslite.PowerShellLite(root=host.fs.root)(script, stdin)
    return None


def _fail(message: str) -> Output:
    from dr.lab.pslite import clixml_error

    yield "stderr", clixml_error(message)
    return 1


def run_cmd(command_line: str, host: LabHost) -> Output:
    """Run one cmd.exe command line on ``host`` (see :mod:`dr.lab.ps.cmd`)."""
    from dr.lab.ps.cmd import CmdSession

    return (yield from CmdSession(host).run(command_line))


def handler(host: LabHost) -> Callable[..., Output]:
    """A :class:`dr.lab.winrs.WinRSServer` handler that runs PowerShell and cmd on ``host``."""

    def run(script: str, stdin: bytes, shell: str = "powershell") -> Output:
        if shell == "cmd":
            return run_cmd(script, host)
        return run_powershell(script, host, stdin)

    run.shell_aware = True  # type: ignore[attr-defined]
    return run
