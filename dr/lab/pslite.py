"""A tiny interpreter of the few PowerShell statements the transport tests send.

It is not PowerShell. It is the smallest host that lets the WinRM transport be tested for
real, end to end, through pywinrm and HTTP: it answers the statements below the way
``powershell.exe`` on a Windows host would (output, stderr as CLIXML, exit codes), and
the file-transfer scripts of :mod:`engine.transports.winrm` against a directory that
stands in for the host's drives (``C:\\x\\y`` → ``<root>/C/x/y``). The fuller lab plugs
in its own handler.

Statements (one per line or separated by ``;``; values are single-quoted literals,
``'text' * N``, numbers, ``$variables`` or ``[Console]::In.ReadToEnd()``)::

    Write-Output <value>          [Console]::Out.Write(<value>)
    [Console]::Error.WriteLine(<value>)      Write-Error <value>
    Start-Sleep -Seconds <n>      Start-Sleep -Milliseconds <n>
    exit <n>                      $name = <value>

Anything else is "not recognized" on stderr with exit code 1, as in PowerShell.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Generator
from pathlib import Path, PureWindowsPath

from engine.transports.winrm import FETCH_SCRIPT, HASH_SCRIPT, PUT_SCRIPT

__all__ = ["PowerShellLite", "split_statements", "unquote"]

Output = Generator[tuple[str, bytes], None, int]
# A statement's run: output, then an exit code if the statement ends the script.
Step = Generator[tuple[str, bytes], None, int | None]

QUOTES = "'\u2018\u2019\u201a\u201b"
_QUOTED = f"[{QUOTES}](?:[^{QUOTES}]|[{QUOTES}]{{2}})*[{QUOTES}]"
_HEARTBEAT = 0.02  # how often a sleeping command lets the endpoint stop it


class _Failure(Exception):
    """A statement failed the way a PowerShell terminating error would."""


def unquote(literal: str) -> str:
    """The value of a single-quoted PowerShell literal (doubled quotes are one quote)."""
    inner, out, i = literal[1:-1], [], 0
    while i < len(inner):
        out.append(inner[i])
        i += 2 if inner[i] in QUOTES and i + 1 < len(inner) and inner[i + 1] in QUOTES else 1
    return "".join(out)


def split_statements(script: str) -> list[str]:
    """Split on newlines and ``;`` outside quotes, parentheses and braces."""
    statements, current, depth, quoted, i = [], [], 0, False, 0
    while i < len(script):
        ch = script[i]
        if quoted and ch in QUOTES and i + 1 < len(script) and script[i + 1] in QUOTES:
            current.append(script[i : i + 2])
            i += 2
            continue
        if ch in QUOTES:
            quoted = not quoted
        elif not quoted and ch in "({":
            depth += 1
        elif not quoted and ch in ")}":
            depth -= 1
        elif not quoted and depth == 0 and ch in "\r\n;":
            statements.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip() and not s.strip().startswith("#")]


def clixml_error(message: str) -> bytes:
    """An error record as powershell.exe writes it to a redirected stderr."""
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = escaped.replace("\r", "_x000D_").replace("\n", "_x000A_")
    return (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/'
        f'2004/04"><S S="Error">{escaped}_x000D__x000A_</S></Objs>'
    ).encode()


def _template(script: str) -> re.Pattern[str]:
    text = script.format(path="DRPATHMARK", offset="DROFFMARK", count="DRCOUNTMARK")
    pattern = re.escape(text).replace("DRPATHMARK", f"({_QUOTED})")
    pattern = pattern.replace("DROFFMARK", r"(\d+)").replace("DRCOUNTMARK", r"(\d+)")
    return re.compile(pattern, re.DOTALL)


_PUT = _template(PUT_SCRIPT)
_FETCH = _template(FETCH_SCRIPT)
_HASH = _template(HASH_SCRIPT)


class PowerShellLite:
    """A handler for :class:`dr.lab.winrs.WinRSServer`; ``root`` holds the host's drives."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self.scripts: list[str] = []

    def __call__(self, script: str, stdin: bytes) -> Output:
        self.scripts.append(script)
        try:
            for pattern, action in ((_PUT, self._put), (_FETCH, self._fetch), (_HASH, self._hash)):
                match = pattern.fullmatch(script)
                if match:
                    return (yield from action(match, stdin))
            return (yield from _Session(stdin).run(script))
        except _Failure as exc:
            yield "stderr", clixml_error(str(exc))
            return 1

    def host_path(self, literal: str) -> Path:
        """Where a Windows path of this host lives under ``root``."""
        if self.root is None:
            raise _Failure("this lab host has no drives (PowerShellLite(root=...))")
        win = PureWindowsPath(unquote(literal))
        parts = [p for p in win.parts[1:] if p not in ("", "\\")]
        if ".." in parts or not win.is_absolute():
            raise _Failure(f"Cannot use path '{win}': not an absolute path inside the host")
        drive = win.drive.rstrip(":").strip("\\").replace("\\", "/")
        return self.root.joinpath(drive, *parts)

    def _put(self, match: re.Match[str], stdin: bytes) -> Output:
        target = self.host_path(match.group(1))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".dr-partial")
        sha = hashlib.sha256()
        with partial.open("wb") as out:
            for line in stdin.splitlines():
                try:
                    chunk = base64.b64decode(line.strip(), validate=True)
                except binascii.Error as exc:
                    raise _Failure("Invalid length for a Base-64 char array or string.") from exc
                out.write(chunk)
                sha.update(chunk)
        partial.replace(target)
        yield "stdout", sha.hexdigest().upper().encode() + b"\r\n"
        return 0

    def _fetch(self, match: re.Match[str], stdin: bytes) -> Output:
        source = self.host_path(match.group(1))
        offset, count = int(match.group(2)), int(match.group(3))
        data = self._read(source)
        chunk = data[offset : offset + count]
        yield "stdout", f"{len(data)}\r\n".encode() + base64.b64encode(chunk) + b"\r\n"
        return 0

    def _hash(self, match: re.Match[str], stdin: bytes) -> Output:
        data = self._read(self.host_path(match.group(1)))
        yield "stdout", hashlib.sha256(data).hexdigest().upper().encode() + b"\r\n"
        return 0

    @staticmethod
    def _read(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise _Failure(
                f'Exception calling "Open": "Could not find file \'{path.name}\'."'
            ) from exc


class _Session:
    """One script's run: variables, the last error, stdin."""

    def __init__(self, stdin: bytes) -> None:
        self.stdin = stdin.decode("utf-8", "surrogateescape")
        self.vars: dict[str, str] = {}
        self.had_error = False

    def run(self, script: str) -> Output:
        for statement in split_statements(script):
            code = yield from self.statement(statement)
            if code is not None:
                return code
        return 1 if self.had_error else 0

    def statement(self, text: str) -> Step:
        for pattern, action in _STATEMENTS:
            match = pattern.fullmatch(text)
            if match:
                return (yield from action(self, match))
        name = text.split()[0]
        yield "stderr", clixml_error(f"{name} : The term '{name}' is not recognized")
        self.had_error = True
        return None

    def value(self, expr: str) -> str:
        expr = expr.strip()
        if expr.startswith("(") and expr.endswith(")"):
            return self.value(expr[1:-1])
        repeat = re.fullmatch(rf"({_QUOTED})\s*\*\s*(\d+)", expr, re.DOTALL)
        if repeat:
            return unquote(repeat.group(1)) * int(repeat.group(2))
        if re.fullmatch(_QUOTED, expr, re.DOTALL):
            return unquote(expr)
        if expr.lower() == "[console]::in.readtoend()":
            return self.stdin
        if expr.startswith("$"):
            return self.vars.get(expr[1:].lower(), "")
        if re.fullmatch(r"[\w.:\\-]+", expr):
            return expr
        raise _Failure(f"unsupported expression: {expr[:60]}")

    def write(self, stream: str, match: re.Match[str], end: str) -> Step:
        text = self.value(match.group(1)) + end
        yield stream, text.encode("utf-8", "surrogateescape")
        return None

    def sleep(self, seconds: float) -> Step:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            time.sleep(min(_HEARTBEAT, max(0.0, until - time.monotonic())))
            yield "stdout", b""
        return None

    def write_error(self, match: re.Match[str]) -> Step:
        self.had_error = True
        yield "stderr", clixml_error(self.value(match.group(1)))
        return None

    def assign(self, match: re.Match[str]) -> Step:
        self.vars[match.group(1).lower()] = self.value(match.group(2))
        yield from ()
        return None

    def exit(self, match: re.Match[str]) -> Step:
        yield from ()
        return int(match.group(1) or 0)


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


_STATEMENTS = (
    (_re(r"(?:Write-Output|Write-Host|echo)\s+(.+)"), lambda s, m: s.write("stdout", m, "\r\n")),
    (_re(r"\[Console\]::Out\.Write\((.*)\)"), lambda s, m: s.write("stdout", m, "")),
    (_re(r"\[Console\]::Out\.WriteLine\((.*)\)"), lambda s, m: s.write("stdout", m, "\r\n")),
    (_re(r"\[Console\]::Error\.Write\((.*)\)"), lambda s, m: s.write("stderr", m, "")),
    (_re(r"\[Console\]::Error\.WriteLine\((.*)\)"), lambda s, m: s.write("stderr", m, "\r\n")),
    (_re(r"Write-Error\s+(.+)"), lambda s, m: s.write_error(m)),
    (_re(r"Start-Sleep\s+(?:-Seconds\s+|-s\s+)?([\d.]+)"), lambda s, m: s.sleep(float(m[1]))),
    (_re(r"Start-Sleep\s+-Milliseconds\s+(\d+)"), lambda s, m: s.sleep(int(m[1]) / 1000)),
    (_re(r"exit(?:\s+(-?\d+))?"), lambda s, m: s.exit(m)),
    (_re(r"\$(\w+)\s*=\s*(.+)"), lambda s, m: s.assign(m)),
)
