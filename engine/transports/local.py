"""Run commands on the orchestrator's own host with :mod:`subprocess`.

Each command starts in a new process group (a new session on POSIX), so a timeout can stop
the command *and everything it started*: killing only the shell would leave a ``sleep`` or
an ``eseutil`` running with our pipes open. Output is collected by
``Popen.communicate``, which reads stdout and stderr concurrently, so several megabytes
on both streams cannot deadlock.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import TransportConfigError, TransportError
from engine.transports.base import Command, Result

__all__ = ["LocalTransport", "encode_powershell"]

# After a kill, how long to wait for the pipes to drain before giving up on them.
_DRAIN_SECONDS = 5.0


def encode_powershell(script: str) -> str:
    """The ``-EncodedCommand`` form of a script: base64 of its UTF-16LE bytes.

    The base64 alphabet holds no shell metacharacters, so no layer between us and the
    PowerShell parser can reinterpret the script."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


class LocalTransport:
    """The orchestrator's host. ``posix`` runs ``/bin/sh -c``; ``powershell`` needs ``pwsh``."""

    name = "local"

    def __repr__(self) -> str:
        return "LocalTransport()"

    def run(self, command: Command, timeout: float) -> Result:
        argv = self.argv(command)
        env = {**os.environ, **command.env}
        started = datetime.now(UTC)
        try:
            proc = subprocess.Popen(argv, env=env, **_popen_options(command))
        except OSError as exc:
            raise TransportError(f"local: cannot start {argv[0]}: {exc.strerror}") from exc
        stdout, stderr, timed_out = _communicate(proc, command.stdin, timeout)
        return Result(
            exit_code=proc.returncode if proc.returncode is not None else -1,
            stdout=stdout,
            stderr=stderr,
            started=started,
            ended=datetime.now(UTC),
            timed_out=timed_out,
        )

    def argv(self, command: Command) -> list[str]:
        """The exact argument vector for a command (no shell parses the script twice)."""
        if command.shell == "posix":
            if sys.platform == "win32":
                raise TransportConfigError("local: the posix shell is not available on Windows")
            return ["/bin/sh", "-c", command.script]
        if command.shell == "powershell":
            exe = shutil.which("pwsh") or shutil.which("powershell")
            if exe is None:
                raise TransportError(
                    "local: PowerShell is not installed on this host (no pwsh on PATH)",
                    hint="install PowerShell 7 (pwsh), or run PowerShell steps over winrm",
                )
            return [exe, "-NoProfile", "-NonInteractive", "-EncodedCommand", _encoded(command)]
        if sys.platform != "win32":
            raise TransportError(
                "local: cmd.exe exists only on Windows; this host cannot run cmd steps",
                hint="run cmd steps over winrm on the Windows host they belong to",
            )
        return ["cmd.exe", "/d", "/s", "/c", command.script]

    def put(self, local: Path, remote: str) -> None:
        _copy(Path(local), Path(remote))

    def fetch(self, remote: str, local: Path) -> None:
        _copy(Path(remote), Path(local))

    def close(self) -> None:
        """Nothing to release: each command owns its own process."""


def _encoded(command: Command) -> str:
    return encode_powershell(command.script)


def _popen_options(command: Command) -> dict[str, object]:
    options: dict[str, object] = {
        "stdin": subprocess.PIPE if command.stdin is not None else subprocess.DEVNULL,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
    }
    if sys.platform == "win32":
        options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        options["start_new_session"] = True
    return options


def _communicate(
    proc: subprocess.Popen[bytes], stdin: bytes | None, timeout: float
) -> tuple[bytes, bytes, bool]:
    try:
        out, err = proc.communicate(input=stdin, timeout=timeout)
        return out, err, False
    except subprocess.TimeoutExpired:
        _kill_group(proc)
    try:
        out, err = proc.communicate(timeout=_DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        # Something outside the group still holds our pipes; do not wait for it.
        out, err = b"", b""
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()
    return out, err, True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the command and every process it started."""
    if sys.platform == "win32":
        subprocess.run(
            ["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, check=False
        )
        proc.kill()
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _copy(source: Path, dest: Path) -> None:
    """Copy through a temporary file beside ``dest`` so a reader never sees half a file."""
    if not source.is_file():
        raise TransportError(f"local: {source} does not exist or is not a file")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    except OSError as exc:
        raise TransportError(f"local: cannot write to {dest.parent}: {exc.strerror}") from exc
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TransportError(f"local: cannot copy {source} to {dest}: {exc.strerror}") from exc
