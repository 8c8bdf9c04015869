"""A tiny LabHost for the interpreter tests: drives under a folder, one fake native tool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dr.lab.ps import NativeResult, run_cmd, run_powershell
from dr.lab.ps.fs import FileSystem

Native = Callable[[list[str], Any, bytes], NativeResult]


class TinyHost:
    """Windows with PowerShell ``ps_version``, drives C: and E:, natives given by name."""

    def __init__(self, root: Path, *, ps_version: str | None = "5.1", exchange: int | None = None):
        for drive in ("C", "E"):
            (root / drive).mkdir(parents=True, exist_ok=True)
        (root / "C" / "Users" / "Administrator").mkdir(parents=True, exist_ok=True)
        self.name = "LAB01"
        self.fs = FileSystem(root)
        self.ps_version = ps_version
        self.exchange_version = exchange
        self.natives: dict[str, Native] = {}
        self.cmdlets: dict[str, Any] = {}
        self.calls: list[tuple[str, list[str]]] = []

    def cmdlet(self, name: str) -> Any:
        return self.cmdlets.get(name.lower())

    def native(self, name: str) -> Native | None:
        impl = self.natives.get(name)
        if impl is None:
            return None

        def run(argv: list[str], host: Any, stdin: bytes) -> NativeResult:
            self.calls.append((name, argv))
            return impl(argv, host, stdin)

        return run


def collect(output: Any) -> tuple[str, str, int]:
    """Drive a run_powershell / run_cmd generator: (stdout, stderr, exit code)."""
    out, err = bytearray(), bytearray()
    try:
        while True:
            stream, data = next(output)
            (out if stream == "stdout" else err).extend(data)
    except StopIteration as done:
        code = done.value
    return out.decode(), _plain_stderr(bytes(err)), code


def _plain_stderr(data: bytes) -> str:
    from engine.transports.clixml import decode_stderr

    return decode_stderr(data).decode("utf-8", "replace")


def ps(host: TinyHost, script: str, stdin: bytes = b"") -> tuple[str, str, int]:
    return collect(run_powershell(script, host, stdin))


def cmd(host: TinyHost, line: str) -> tuple[str, str, int]:
    return collect(run_cmd(line, host))


def run_on(host: Any, script: str, shell: str = "powershell") -> tuple[int, str, str]:
    """Run ``script`` on a lab host's handler (an Exchange host, a domain controller):
    (exit code, stdout, stderr as the host sent it — CLIXML for PowerShell errors)."""
    out, err = b"", b""
    gen = host(script, b"", shell)
    try:
        while True:
            stream, data = next(gen)
            if stream == "stdout":
                out += data
            else:
                err += data
    except StopIteration as stop:
        return int(stop.value), out.decode(), err.decode("utf-8", "replace")
