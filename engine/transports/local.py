"""Run commands on the orchestrator's own host with :mod:`subprocess`.

Each command starts in a new process group (a new session on POSIX), so a timeout can stop
the command *and everything it started*: killing only the shell would leave a ``sleep`` or
an ``eseutil`` running with our pipes open. Output is collected by
``Popen.communicate``, which reads stdout and stderr concurrently, so several megabytes
on both streams cannot deadlock.

Exactly once across a ``kill -9`` of the engine (POSIX). With an ``on_start`` hook the
command starts *gated*: a small ``sh`` wrapper waits for one line on its stdin before it
``exec`` s the real command. The hook receives the process's identity (pid, process group,
its start time from ``/proc/<pid>/stat`` and the boot id, so that a reused pid is never
mistaken for it); only when the hook has returned (the engine has journalled it) is the gate
opened. If the engine dies first, the gate reads end-of-file and the command never runs.
Once running, the command is found again by :meth:`LocalTransport.stop` from any process.

A command gets a minimal environment, not dr's: what the operating system needs
(:data:`PASSED_ENV`: ``PATH``, ``HOME``, the locale, the temporary folder, Windows'
``SystemRoot`` ...), dr's own non-secret settings (``DR_WORKSPACE``, ``DR_KEY_DIR`` ...)
and what the step declares (``Command.env``: its secrets). ``DR_PASSPHRASE``,
``DR_WINRM_PASSWORD`` and any other secret of the dr process never reach a step it did not
name.
Where ``setpriv --pdeathsig`` exists (Linux), the command is also killed by the kernel
when the engine thread that started it dies: a second line of defence, not the first.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import TransportConfigError, TransportError
from engine.transports.base import Command, Handle, Result, StartHook

__all__ = ["LocalTransport", "encode_powershell"]

# After a kill, how long to wait for the pipes to drain before giving up on them.
_DRAIN_SECONDS = 5.0
# Waits for the gate line, then becomes the command (same pid, same process group).
# Without stdin data the command gets /dev/null, as an ungated command does.
_GATE = 'read -r _ || exit 125; exec "$@"{devnull}'
# Put first, so the kernel kills the command if the engine dies at any moment after this.
_PDEATHSIG = ["setpriv", "--pdeathsig", "KILL", "--"]
_GATE_CLOSED = 125
# How long a process group may take to vanish after SIGKILL before stop() gives up.
_KILL_WAIT_SECONDS = 10.0


PASSED_ENV = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM",
        "TMPDIR", "TEMP", "TMP", "PYTHONPATH", "VIRTUAL_ENV",
        "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE",
        "APPDATA", "LOCALAPPDATA", "PROGRAMDATA", "PROGRAMFILES", "COMPUTERNAME",
        "PSMODULEPATH", "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE",
        "DR_WORKSPACE", "DR_KEY_DIR", "DR_KDF_PROFILE", "DR_RUNBOOKS", "DR_OPERATOR",
    }
)  # fmt: skip


def step_environment(
    declared: dict[str, str], environ: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment a local command gets: :data:`PASSED_ENV` and ``LC_*``, then ``declared``."""
    source = dict(os.environ) if environ is None else environ
    base = {k: v for k, v in source.items() if k.upper() in PASSED_ENV or k.startswith("LC_")}
    return {**base, **declared}


def encode_powershell(script: str) -> str:
    """The ``-EncodedCommand`` form of a script: base64 of its UTF-16LE bytes.

    The base64 alphabet holds no shell metacharacters, so no layer between us and the
    PowerShell parser can reinterpret the script."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


class LocalTransport:
    """The orchestrator's host. ``posix`` runs ``/bin/sh -c``; ``powershell`` needs ``pwsh``."""

    name = "local"
    reports_start = sys.platform != "win32"

    def __repr__(self) -> str:
        return "LocalTransport()"

    def run(self, command: Command, timeout: float, on_start: StartHook | None = None) -> Result:
        argv = self.argv(command)
        gated = on_start is not None and self.reports_start
        if gated:
            argv = gate_argv(argv, has_stdin=command.stdin is not None)
        env = step_environment(dict(command.env))
        started = datetime.now(UTC)
        try:
            proc = subprocess.Popen(argv, env=env, **_popen_options(command, gated))
        except (FileNotFoundError, PermissionError) as exc:  # no retry makes it appear
            raise TransportConfigError(f"local: cannot start {argv[0]}: {exc.strerror}") from exc
        except OSError as exc:
            raise TransportError(f"local: cannot start {argv[0]}: {exc.strerror}") from exc
        if gated:
            assert on_start is not None
            _open_gate(proc, on_start)
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
                raise TransportConfigError(
                    "local: PowerShell is not installed on this host (no pwsh on PATH)",
                    hint="install PowerShell 7 (pwsh), or run PowerShell steps over winrm",
                )
            return [exe, "-NoProfile", "-NonInteractive", "-EncodedCommand", _encoded(command)]
        if sys.platform != "win32":
            raise TransportConfigError(
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

    def stop(self, handle: Handle, grace: float = 5.0) -> str:
        """Make sure the command ``handle`` names is no longer running (any process may ask).

        Its process group is sent SIGTERM, then SIGKILL after ``grace`` seconds, and we wait
        until no member is left. A group whose leader now has another start time, or a host
        restarted since (another boot id), is not ours: nothing is killed."""
        if handle.get("transport") != "local":
            raise TransportError(f"local: cannot stop {handle.get('transport')!r} commands")
        pgid, ticks = int(handle["pgid"]), int(handle["start_ticks"])
        if sys.platform == "win32" or handle.get("boot_id") != boot_id():
            return "was not running (the host restarted since it started)"
        if not group_members(pgid, ticks):
            return "was not running"
        _signal_group(pgid, signal.SIGTERM)
        if _wait_gone(pgid, ticks, grace):
            return f"stopped process group {pgid} (SIGTERM)"
        _signal_group(pgid, signal.SIGKILL)
        if _wait_gone(pgid, ticks, _KILL_WAIT_SECONDS):
            return f"stopped process group {pgid} (SIGKILL after {grace:g} s)"
        raise TransportError(f"local: process group {pgid} is still running after SIGKILL")


def _encoded(command: Command) -> str:
    return encode_powershell(command.script)


def gate_argv(argv: list[str], *, has_stdin: bool) -> list[str]:
    """``argv`` behind the gate: ``sh`` reads one line from stdin, then becomes ``argv``."""
    pdeath = _PDEATHSIG if _has_pdeathsig() else []
    script = _GATE.format(devnull="" if has_stdin else " </dev/null")
    return [*pdeath, "/bin/sh", "-c", script, "dr-gate", *argv]


def _open_gate(proc: subprocess.Popen[bytes], on_start: StartHook) -> None:
    """Report the process, then let it run; if reporting fails, it never runs."""
    assert proc.stdin is not None
    try:
        on_start(process_handle(proc.pid))
    except BaseException:
        proc.stdin.close()  # end of file at the gate: the command does not run
        proc.wait()
        raise
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass  # it died before the gate opened; its exit code says so


def process_handle(pid: int) -> dict[str, Any]:
    """What identifies a process we started, now and after a crash of this process."""
    return {
        "transport": "local",
        "pid": pid,
        "pgid": pid,
        "start_ticks": start_ticks(pid),
        "boot_id": boot_id(),
    }


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None: no such process)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text.rsplit(")", 1)[1].split()


def start_ticks(pid: int) -> int:
    """When the process started, in clock ticks since boot (0 where /proc is missing)."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else 0


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def group_members(pgid: int, ticks: int) -> list[int]:
    """Live (not zombie) processes of group ``pgid`` that started at or after ``ticks``;
    none if the group's leader pid now belongs to a process with another start time."""
    if not _group_exists(pgid):
        return []  # the kernel knows no process in the group (the common case: one call)
    if not Path("/proc/self/stat").exists():
        return [pgid]
    leader = _proc_stat(pgid)
    if leader is not None and int(leader[19]) != ticks and leader[0] not in "ZX":
        return []
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields and int(fields[2]) == pgid and fields[0] not in "ZX" and int(fields[19]) >= ticks:
            members.append(int(entry.name))
    return members


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_gone(pgid: int, ticks: int, seconds: float) -> bool:
    """Poll until the group has no live member; False if ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while group_members(pgid, ticks):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)  # polling another process's state: there is nothing to wait on
    return True


@functools.cache
def _has_pdeathsig() -> bool:
    """Whether ``setpriv --pdeathsig`` works here (Linux, util-linux 2.33 or later)."""
    exe = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    if exe is None:
        return False
    probe = subprocess.run(
        [exe, "--pdeathsig", "KILL", "--", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


def _popen_options(command: Command, gated: bool = False) -> dict[str, object]:
    options: dict[str, object] = {
        "stdin": subprocess.PIPE if gated or command.stdin is not None else subprocess.DEVNULL,
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
