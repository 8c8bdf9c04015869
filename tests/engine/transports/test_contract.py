"""One contract, every transport: local (posix sh), winrm (loopback WinRS endpoint), dry-run.

Each host fixture speaks its shell's dialect (the same intent written as sh or as
PowerShell) and knows how to tell that a timed-out command really stopped.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pytest

from dr.lab.winrs import WinRSServer
from engine.render import quote_powershell
from engine.transports.base import Command, Result, Transport
from engine.transports.dryrun import DryRunTransport, Recorder, Scripted
from engine.transports.local import LocalTransport

from .conftest import MakeTransport


@dataclass
class Host:
    """A transport plus the dialect to talk to it and a way to check what happened."""

    transport: Transport
    shell: str
    newline: str
    echo: Callable[[str], str]
    to_stderr: Callable[[str], str]
    exit_with: Callable[[int], str]
    sleep: Callable[[float], str]
    big: Callable[[int], str]
    cat_stdin: str
    remote: Callable[[str], str]
    stopped: Callable[[], bool]
    files: bool = True

    def run(self, script: str, timeout: float = 30.0, stdin: bytes | None = None) -> Result:
        return self.transport.run(Command(script, shell=self.shell, stdin=stdin), timeout)  # type: ignore[arg-type]


def _alive(pid: int, within: float = 5.0) -> bool:
    """True if the process exists and is not a zombie waiting to be reaped, ``within``
    seconds from now: a killed process of a killed group dies asynchronously (the kernel
    delivers SIGKILL, the process exits, its new parent reaps it), so a loaded machine may
    still show it for a moment after the kill returned."""
    deadline = time.monotonic() + within
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return False
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.01)


def local_host(tmp_path: Path) -> Host:
    pidfile = tmp_path / "pid"
    q = shlex.quote

    def stopped() -> bool:
        return not _alive(int(pidfile.read_text()))

    return Host(
        transport=LocalTransport(),
        shell="posix",
        newline="\n",
        echo=lambda text: f"printf '%s\\n' {q(text)}",
        to_stderr=lambda text: f"printf '%s\\n' {q(text)} >&2",
        exit_with=lambda code: f"exit {code}",
        sleep=lambda s: f"echo $$ > {q(str(pidfile))}; exec sleep {s}",
        big=lambda n: f"head -c {n} /dev/zero | tr '\\0' x",
        cat_stdin="cat",
        remote=lambda name: str(tmp_path / "remote" / name),
        stopped=stopped,
    )


def winrm_host(make: MakeTransport, server: WinRSServer) -> Host:
    def stopped() -> bool:
        record = list(server.commands.values())[-1]
        return record.terminated and not record.finished

    return Host(
        transport=make(),
        shell="powershell",
        newline="\r\n",
        echo=lambda text: f"Write-Output {quote_powershell(text)}",
        to_stderr=lambda text: f"[Console]::Error.WriteLine({quote_powershell(text)})",
        exit_with=lambda code: f"exit {code}",
        sleep=lambda s: f"Start-Sleep -Seconds {s}",
        big=lambda n: f"[Console]::Out.Write('x' * {n})",
        cat_stdin="[Console]::Out.Write([Console]::In.ReadToEnd())",
        remote=lambda name: f"C:\\dr staging\\{name}",
        stopped=stopped,
    )


def _dry_answer(host: str, command: Command) -> Scripted:
    """The dry-run host's script: each line answered the way a real host would."""
    out, err, code, timed_out = b"", b"", 0, False
    for line in command.script.splitlines():
        verb, _, arg = line.partition(" ")
        if verb == "echo":
            out += arg.encode() + b"\n"
        elif verb == "err":
            err += arg.encode() + b"\n"
        elif verb == "exit":
            code = int(arg)
        elif verb == "sleep":
            code, timed_out = -1, True
        elif verb == "big":
            out += b"x" * int(arg)
        elif verb == "cat":
            out += command.stdin or b""
    return Scripted(exit_code=code, stdout=out, stderr=err, timed_out=timed_out)


def dry_host() -> Host:
    recorder = Recorder(handler=_dry_answer)

    def stopped() -> bool:
        return recorder.calls[-1].timeout == 1.0  # the deadline reached the transport

    return Host(
        transport=DryRunTransport("EX2003", recorder),
        shell="powershell",
        newline="\n",
        echo=lambda text: f"echo {text}",
        to_stderr=lambda text: f"err {text}",
        exit_with=lambda code: f"exit {code}",
        sleep=lambda s: f"sleep {s}",
        big=lambda n: f"big {n}",
        cat_stdin="cat",
        remote=lambda name: f"C:\\staging\\{name}",
        stopped=stopped,
        files=False,
    )


@pytest.fixture(params=["local", "winrm", "dry-run"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    if request.param == "local":
        built = local_host(tmp_path)
    elif request.param == "winrm":
        built = winrm_host(request.getfixturevalue("make_winrm"), request.getfixturevalue("winrs"))
    else:
        built = dry_host()
    yield built
    built.transport.close()


def test_exit_code_is_returned(host: Host) -> None:
    result = host.run(host.exit_with(3))
    assert result.exit_code == 3
    assert not result.ok
    assert host.run(host.exit_with(0)).ok


def test_stdout_and_stderr_are_kept_apart(host: Host) -> None:
    out = host.run(f"{host.echo('to-out')}\n{host.to_stderr('to-err')}")
    assert out.stdout == f"to-out{host.newline}".encode()
    assert out.stderr == f"to-err{host.newline}".encode()


def test_unicode_round_trips_as_utf8(host: Host) -> None:
    text = "Größe ✓ Ærø 𝄞 日本"
    result = host.run(host.echo(text))
    assert result.stdout.decode("utf-8") == text + host.newline


def test_timeout_returns_timed_out_and_stops_the_command(host: Host) -> None:
    result = host.run(host.sleep(30), timeout=1.0)
    assert result.timed_out
    assert not result.ok
    assert host.stopped()


def test_several_megabytes_of_output_arrive_intact(host: Host) -> None:
    size = 3 * 1024 * 1024 + 7
    result = host.run(host.big(size), timeout=60)
    assert result.ok
    assert len(result.stdout) == size
    assert result.stdout == b"x" * size


def test_stdin_is_delivered_byte_for_byte(host: Host) -> None:
    data = "line one\nzwei: ü\n$(not run) '; x #\n".encode() + bytes(range(1, 32))
    result = host.run(host.cat_stdin, stdin=data)
    assert result.ok
    assert result.stdout == data


def test_put_then_fetch_round_trips_a_file(host: Host, tmp_path: Path) -> None:
    if not host.files:
        pytest.skip("the dry-run host records transfers; it holds no files")
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(300_000) + "ende ✓".encode())
    host.transport.put(source, host.remote("db copy.edb"))
    back = tmp_path / "back" / "db copy.edb"
    host.transport.fetch(host.remote("db copy.edb"), back)
    assert back.read_bytes() == source.read_bytes()


def test_times_are_recorded_in_utc(host: Host) -> None:
    result = host.run(host.echo("t"))
    assert result.started.tzinfo is UTC
    assert result.ended.tzinfo is UTC
    assert result.started <= result.ended
