"""Run commands on a Windows host over WinRM (WS-Man / WinRS) with pywinrm's ``Protocol``.

Why not ``winrm.Session.run_ps``: it opens the shell in codepage 437 (non-ASCII output is
garbled), puts the whole script on a command line that cmd.exe cuts at ~8 K characters,
waits for output forever, and leaks the remote shell on any error. This module uses the
lower-level ``Protocol`` instead:

* one shell per command, opened with codepage 65001 (UTF-8) and closed in ``finally``;
* the script as ``powershell.exe -NoProfile -NonInteractive -EncodedCommand <UTF-16LE
  base64>`` (the base64 alphabet gives cmd.exe nothing to interpret); a script too long
  for the command line goes over stdin behind a short fixed bootstrap;
* its own Receive loop with a wall-clock deadline: each Receive asks the server to answer
  within ``min(operation_timeout, time left)``; at the deadline the command is sent the
  WinRS terminate signal and returned with ``timed_out=True``;
* CLIXML on stderr decoded to text; exit codes made signed (``4294967295`` → ``-1``);
* every exception pywinrm or requests can raise translated into :mod:`engine.errors`.

Security defaults: HTTPS on 5986, NTLM, certificate validation on. Plain HTTP, Basic auth
and ignoring certificates are each an explicit choice and each logs a warning; Basic over
plain HTTP (the password in clear on the wire) also needs ``allow_plaintext``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import requests.exceptions as rexc
import winrm.exceptions as wexc
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from winrm.protocol import Protocol

from engine.errors import (
    AuthenticationError,
    HostUnreachable,
    ProtocolError,
    TransportConfigError,
    TransportError,
    TransportTimeout,
)
from engine.transports.base import Command, Handle, Result, StartHook
from engine.transports.clixml import decode_stderr
from engine.transports.credentials import Credential
from engine.transports.local import encode_powershell

__all__ = [
    "FETCH_SCRIPT",
    "HASH_SCRIPT",
    "PUT_SCRIPT",
    "STDIN_BOOTSTRAP",
    "WinRMSettings",
    "WinRMTransport",
    "map_exception",
    "ps_quote",
]

log = logging.getLogger(__name__)

POWERSHELL = "powershell.exe"
PS_ARGS = ("-NoProfile", "-NonInteractive", "-EncodedCommand")
# cmd.exe's limit is 8191 characters; keep a margin for the executable and switches.
MAX_COMMAND_LINE = 8000
# Raw stdin bytes per Send: base64 of 64 KiB is ~87 KB, inside the 150 KB default
# MaxEnvelopeSize of the oldest WinRM services (Windows Server 2003 R2 / WMF 2).
STDIN_CHUNK = 64 * 1024
# Raw bytes per fetch command; the server splits the base64 over several Receives.
FETCH_CHUNK = 1024 * 1024
# Raw bytes per base64 line of a put.
PUT_LINE = 48 * 1024

# Runs a script sent over stdin: the first stdin line is the script's UTF-8 bytes in
# base64; everything after it stays readable by the script as its own stdin.
STDIN_BOOTSTRAP = (
    "$dr_line = [Console]::In.ReadLine()\n"
    "& ([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString("
    "[Convert]::FromBase64String($dr_line))))\n"
    "if ($LASTEXITCODE) { exit $LASTEXITCODE }\n"
)

# File transfer scripts (PowerShell 2.0 compatible). ``{path}`` is a quoted literal.
PUT_SCRIPT = (
    "$ProgressPreference = 'SilentlyContinue'\n"
    "$dr_path = {path}\n"
    "$dr_tmp = $dr_path + '.dr-partial'\n"
    "$dr_sha = [Security.Cryptography.SHA256]::Create()\n"
    "$dr_out = [IO.File]::Open($dr_tmp, [IO.FileMode]::Create)\n"
    "try {{ while ($null -ne ($dr_l = [Console]::In.ReadLine())) {{ if ($dr_l.Length) {{"
    " $dr_b = [Convert]::FromBase64String($dr_l); $dr_out.Write($dr_b, 0, $dr_b.Length);"
    " [void]$dr_sha.TransformBlock($dr_b, 0, $dr_b.Length, $null, 0) }} }} }}"
    " finally {{ $dr_out.Close() }}\n"
    "[void]$dr_sha.TransformFinalBlock((New-Object byte[] 0), 0, 0)\n"
    "if ([IO.File]::Exists($dr_path)) {{ [IO.File]::Delete($dr_path) }}\n"
    "[IO.File]::Move($dr_tmp, $dr_path)\n"
    "Write-Output ([BitConverter]::ToString($dr_sha.Hash) -replace '-', '')\n"
)
FETCH_SCRIPT = (
    "$ProgressPreference = 'SilentlyContinue'\n"
    "$dr_path = {path}\n"
    "$dr_in = [IO.File]::Open($dr_path, [IO.FileMode]::Open, [IO.FileAccess]::Read,"
    " [IO.FileShare]::ReadWrite)\n"
    "try {{ $dr_size = $dr_in.Length; [void]$dr_in.Seek({offset}, [IO.SeekOrigin]::Begin);"
    " $dr_buf = New-Object byte[] {count}; $dr_n = $dr_in.Read($dr_buf, 0, {count}) }}"
    " finally {{ $dr_in.Close() }}\n"
    "Write-Output $dr_size\n"
    "Write-Output ([Convert]::ToBase64String($dr_buf, 0, $dr_n))\n"
)
HASH_SCRIPT = (
    "$ProgressPreference = 'SilentlyContinue'\n"
    "$dr_path = {path}\n"
    "$dr_in = [IO.File]::OpenRead($dr_path)\n"
    "try {{ $dr_h = [Security.Cryptography.SHA256]::Create().ComputeHash($dr_in) }}"
    " finally {{ $dr_in.Close() }}\n"
    "Write-Output ([BitConverter]::ToString($dr_h) -replace '-', '')\n"
)

_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)")

Auth = Literal["ntlm", "kerberos", "credssp", "certificate", "basic"]


def ps_quote(value: str) -> str:
    """A path as a PowerShell literal, through the project's one quoting function."""
    if "\x00" in value:
        raise TransportError("a NUL character cannot be passed to PowerShell")
    from engine.render import quote_powershell

    return quote_powershell(value)


class WinRMSettings(BaseModel):
    """How to reach one host; the fields of a ``kind: winrm`` transport spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    scheme: Literal["https", "http"] = "https"
    path: str = "/wsman"
    auth: Auth = "ntlm"
    cert_validation: Literal["validate", "ignore"] = "validate"
    ca_trust_path: str | None = None
    cert_pem: str | None = None
    cert_key_pem: str | None = None
    username: str | None = None
    operation_timeout: int = Field(default=20, ge=1)
    read_timeout: int = Field(default=30, ge=2)
    message_encryption: Literal["auto", "always", "never"] = "auto"
    proxy: str | None = None
    allow_plaintext: bool = False
    transfer_timeout: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> WinRMSettings:
        if self.operation_timeout >= self.read_timeout:
            raise ValueError("read_timeout must be longer than operation_timeout")
        if self.auth == "certificate" and not (self.cert_pem and self.cert_key_pem):
            raise ValueError("certificate auth needs cert_pem and cert_key_pem")
        if self.auth == "basic" and self.scheme == "http" and not self.allow_plaintext:
            raise ValueError(
                "basic auth over http sends the password in clear; use https, or set "
                "allow_plaintext: true for a test lab"
            )
        return self

    @property
    def url(self) -> str:
        port = self.port or (5986 if self.scheme == "https" else 5985)
        return f"{self.scheme}://{self.host}:{port}{self.path}"

    @property
    def needs_password(self) -> bool:
        return self.auth in ("ntlm", "credssp", "basic")

    @classmethod
    def from_spec(cls, spec: dict[str, object]) -> WinRMSettings:
        try:
            return cls.model_validate(spec)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "spec"
            host = spec.get("host", "?")
            raise TransportConfigError(
                f"winrm transport for host {host}: {field}: {first['msg']}",
                hint="see docs/transports.md for the winrm transport's fields",
            ) from exc


# --- exception mapping -----------------------------------------------------------------

# Most specific first: the first isinstance match wins.
WINRM_ERRORS: tuple[tuple[type[BaseException], type[TransportError]], ...] = (
    (wexc.InvalidCredentialsError, AuthenticationError),
    (wexc.BasicAuthDisabledError, AuthenticationError),
    (wexc.AuthenticationError, AuthenticationError),
    (wexc.WinRMOperationTimeoutError, TransportTimeout),
    (wexc.WSManFaultError, ProtocolError),
    (wexc.WinRMTransportError, ProtocolError),
    (wexc.WinRMError, ProtocolError),
)
REQUESTS_ERRORS: tuple[tuple[type[BaseException], type[TransportError]], ...] = (
    (rexc.SSLError, ProtocolError),
    (rexc.ConnectTimeout, HostUnreachable),
    (rexc.Timeout, TransportTimeout),
    (rexc.ConnectionError, HostUnreachable),
    (rexc.RequestException, ProtocolError),
)
# A reply pywinrm cannot make sense of: malformed XML, a missing element, RelatesTo
# not matching (pywinrm asserts it), bad base64.
REPLY_ERRORS: tuple[tuple[type[BaseException], type[TransportError]], ...] = (
    (AssertionError, ProtocolError),
    (ET.ParseError, ProtocolError),
    (StopIteration, ProtocolError),
    (KeyError, ProtocolError),
    (binascii.Error, ProtocolError),
)
ALL_ERRORS = WINRM_ERRORS + REQUESTS_ERRORS + REPLY_ERRORS


def map_exception(exc: BaseException, host: str) -> TransportError | None:
    """Our error for a backend exception, or None if it is not a backend exception."""
    for backend, ours in ALL_ERRORS:
        if isinstance(exc, backend):
            return ours(_describe(exc, host), hint=_hint(ours, host), details={"host": host})
    return None


def _describe(exc: BaseException, host: str) -> str:
    if isinstance(exc, wexc.InvalidCredentialsError | wexc.BasicAuthDisabledError):
        return f"winrm {host}: {exc.args[0] if exc.args else type(exc).__name__}"
    if isinstance(exc, wexc.WSManFaultError):
        code = f" {exc.wsman_fault_code}" if exc.wsman_fault_code is not None else ""
        return f"winrm {host}: WS-Man fault{code}: {exc.reason}"
    if isinstance(exc, wexc.WinRMOperationTimeoutError):
        return f"winrm {host}: the WS-Man operation timed out"
    if isinstance(exc, AssertionError):
        return f"winrm {host}: the reply did not answer our request (RelatesTo mismatch)"
    if isinstance(exc, rexc.ConnectionError) and not isinstance(exc, rexc.Timeout):
        return _connection_lost(exc, host)
    text = str(exc) or type(exc).__name__
    return f"winrm {host}: {type(exc).__name__}: {text}"


# What requests says, innermost first: the socket's error, or the HTTP client's.
_CAUSE = re.compile(
    r"\[Errno -?\d+\] [^'\")]+"
    r"|Remote end closed connection without response|Connection reset by peer"
)


def _connection_lost(exc: BaseException, host: str) -> str:
    """A refused connection (nothing sent) told apart from one that dropped while a request
    was out (the command may have run): the responder's next step differs."""
    text = str(exc)
    cause = _CAUSE.search(text)
    said = cause.group(0).strip() if cause else (text or type(exc).__name__)
    if "refused" in said.lower():
        return f"winrm {host}: connection refused, nothing was sent ({said})"
    if "Connection aborted" in text or "reset" in said.lower() or "Remote end" in said:
        return (
            f"winrm {host}: the connection dropped before the host answered; the command "
            f"may have run ({said})"
        )
    return f"winrm {host}: {type(exc).__name__}: {said}"


def _hint(ours: type[TransportError], host: str) -> str | None:
    hints: dict[type[TransportError], str] = {
        AuthenticationError: "check the user and password for this host (docs/transports.md, "
        "credential sources) and that the auth method is enabled on its WinRM service",
        HostUnreachable: f"check that {host} is up and its WinRM listener answers "
        "(`winrm enumerate winrm/config/listener` on the host)",
        TransportTimeout: "the host or the network is slow; raise read_timeout",
    }
    return hints.get(ours)


@contextmanager
def mapped_errors(host: str) -> Iterator[None]:
    """Translate backend exceptions raised inside the block; ours and others pass through."""
    try:
        yield
    except TransportError:
        raise
    except Exception as exc:
        ours = map_exception(exc, host)
        if ours is None:
            raise
        raise ours from exc


# --- the transport ---------------------------------------------------------------------


class WinRMTransport:
    """One Windows host over WinRM. Safe to use from one thread at a time.

    With an ``on_start`` hook, ``run`` reports the shell id as soon as the shell exists
    (before the command is sent) and then the command id, so a crashed engine's successor
    can stop the command with :meth:`stop`: the terminate signal, then the shell's Delete,
    which ends whatever still runs in it.
    """

    reports_start = True

    def __init__(self, settings: WinRMSettings, credential: Credential | None = None) -> None:
        if settings.needs_password and credential is None:
            raise TransportConfigError(f"winrm {settings.host}: {settings.auth} needs a password")
        _check_auth_library(settings)
        self.settings = settings
        self.name = f"winrm:{settings.host}"
        self._credential = credential
        self._protocol: Protocol | None = None
        _warn_insecure(settings)

    def __repr__(self) -> str:
        user = self._credential.username if self._credential else None
        return (
            f"WinRMTransport(url={self.settings.url!r}, auth={self.settings.auth!r}, user={user!r})"
        )

    def run(self, command: Command, timeout: float, on_start: StartHook | None = None) -> Result:
        exe, args, payload = build_command_line(command)
        started = datetime.now(UTC)
        deadline = time.monotonic() + timeout
        protocol = self._connect()
        report = _reporter(on_start, self.settings)
        with mapped_errors(self.settings.host):
            shell_id = protocol.open_shell(
                noprofile=True, codepage=65001, env_vars=dict(command.env) or None
            )
            try:
                report(shell_id=shell_id)
                out, err, code, timed_out = self._execute(
                    shell_id, exe, args, payload, deadline, report
                )
            finally:
                self._close_shell(shell_id)
        return Result(code, out, decode_stderr(err), started, datetime.now(UTC), timed_out)

    def stop(self, handle: Handle, grace: float = 5.0) -> str:
        """Send the terminate signal to the recorded command, then delete its shell.

        A shell or command the host no longer knows is "not running"; an unreachable host
        raises (the caller cannot know, and says so)."""
        if handle.get("transport") != "winrm" or not handle.get("shell_id"):
            raise TransportError(f"winrm {self.settings.host}: not a winrm command handle")
        shell_id, command_id = str(handle["shell_id"]), handle.get("command_id")
        done: list[str] = []
        with mapped_errors(self.settings.host):
            protocol = self._connect()
            if command_id and _gone_if_unknown(
                lambda: protocol.cleanup_command(shell_id, command_id)
            ):
                done.append("terminate signal sent")
            if _gone_if_unknown(lambda: protocol.close_shell(shell_id, close_session=False)):
                done.append(f"shell {shell_id} deleted")
        return ", ".join(done) if done else "was not running (the host no longer knew its shell)"

    def put(self, local: Path, remote: str) -> None:
        """Copy a local file to the host, verified by SHA-256 (held in memory: see docs)."""
        data = _read_local(Path(local))
        script = PUT_SCRIPT.format(path=ps_quote(_absolute(remote, self.settings.host)))
        result = self._transfer(Command(script=script, stdin=_base64_lines(data)), "put", remote)
        got = result.stdout.decode("utf-8", "replace").strip().lower()
        if got != hashlib.sha256(data).hexdigest():
            raise ProtocolError(f"winrm {self.settings.host}: put {remote}: damaged in transit")

    def fetch(self, remote: str, local: Path) -> None:
        """Copy a file from the host in chunks, then check the SHA-256 of what arrived."""
        path = ps_quote(_absolute(remote, self.settings.host))
        local = Path(local)
        tmp = local.with_name(f".{local.name}.partial")
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            digest = self._fetch_chunks(path, remote, tmp)
            remote_digest = self._transfer(Command(HASH_SCRIPT.format(path=path)), "hash", remote)
            if remote_digest.stdout.decode("utf-8", "replace").strip().lower() != digest:
                raise ProtocolError(
                    f"winrm {self.settings.host}: fetch {remote}: the file changed while "
                    "it was read, or was damaged in transit"
                )
            tmp.replace(local)
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        if self._protocol is not None:
            with suppress(Exception):
                self._protocol.transport.close_session()
            self._protocol = None

    # -- internals --

    def _connect(self) -> Protocol:
        if self._protocol is None:
            self._protocol = _make_protocol(self.settings, self._credential)
        return self._protocol

    def _execute(
        self,
        shell_id: str,
        exe: str,
        args: list[str],
        payload: bytes | None,
        deadline: float,
        report: Callable[..., None],
    ) -> tuple[bytes, bytes, int, bool]:
        protocol = self._connect()
        command_id = protocol.run_command(
            shell_id, exe, args, console_mode_stdin=payload is None, skip_cmd_shell=False
        )
        report(shell_id=shell_id, command_id=command_id)
        if payload is not None:
            self._send_stdin(shell_id, command_id, payload)
        out, err, code, timed_out = self._receive(shell_id, command_id, deadline)
        self._terminate(shell_id, command_id, timed_out)
        return out, err, _signed32(code), timed_out

    def _send_stdin(self, shell_id: str, command_id: str, payload: bytes) -> None:
        protocol = self._connect()
        chunks = [payload[i : i + STDIN_CHUNK] for i in range(0, len(payload), STDIN_CHUNK)]
        chunks = chunks or [b""]
        for index, chunk in enumerate(chunks):
            protocol.send_command_input(shell_id, command_id, chunk, end=index == len(chunks) - 1)

    def _receive(
        self, shell_id: str, command_id: str, deadline: float
    ) -> tuple[bytes, bytes, int, bool]:
        """Receive until the command is done or the deadline passes (then timed_out)."""
        protocol = self._connect()
        out, err = bytearray(), bytearray()
        try:
            while (left := deadline - time.monotonic()) > 0:
                # The server answers within OperationTimeout, so this bounds each wait.
                protocol.operation_timeout_sec = _operation_timeout(self.settings, left)
                try:
                    chunk_out, chunk_err, code, done = protocol.get_command_output_raw(
                        shell_id, command_id
                    )
                except wexc.WinRMOperationTimeoutError:
                    continue
                out += chunk_out
                err += chunk_err
                if done:
                    return bytes(out), bytes(err), code, False
        finally:
            protocol.operation_timeout_sec = self.settings.operation_timeout
        return bytes(out), bytes(err), -1, True

    def _terminate(self, shell_id: str, command_id: str, timed_out: bool) -> None:
        """Signal terminate: stops a timed-out command; the spec asks for it after Done too."""
        try:
            self._connect().cleanup_command(shell_id, command_id)
        except Exception as exc:
            if timed_out:
                raise
            log.warning("winrm %s: terminate signal failed: %s", self.settings.host, exc)

    def _close_shell(self, shell_id: str) -> None:
        """Delete the shell; a failure here must not hide the command's own result or error."""
        try:
            self._connect().close_shell(shell_id, close_session=False)
        except Exception as exc:
            log.warning("winrm %s: closing shell %s failed: %s", self.settings.host, shell_id, exc)

    def _transfer(self, command: Command, what: str, remote: str) -> Result:
        result = self.run(command, timeout=self.settings.transfer_timeout)
        if not result.ok:
            reason = "timed out" if result.timed_out else f"exit code {result.exit_code}"
            detail = result.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
            raise TransportError(
                f"winrm {self.settings.host}: {what} {remote} failed ({reason})"
                + (f": {detail[0]}" if detail else "")
            )
        return result

    def _fetch_chunks(self, path: str, remote: str, tmp: Path) -> str:
        digest = hashlib.sha256()
        offset, size = 0, None
        with tmp.open("wb") as out:
            while size is None or offset < size:
                script = FETCH_SCRIPT.format(path=path, offset=offset, count=FETCH_CHUNK)
                result = self._transfer(Command(script), "fetch", remote)
                size, chunk = _parse_chunk(result.stdout, self.settings.host, remote)
                if not chunk and offset < size:
                    raise ProtocolError(f"winrm {self.settings.host}: fetch {remote}: file shrank")
                out.write(chunk)
                digest.update(chunk)
                offset += len(chunk)
        return digest.hexdigest()


def _reporter(on_start: StartHook | None, settings: WinRMSettings) -> Callable[..., None]:
    """A function that hands ``on_start`` the handle so far (nothing without a hook)."""

    def report(**ids: str) -> None:
        if on_start is not None:
            on_start({"transport": "winrm", "host": settings.host, "endpoint": settings.url, **ids})

    return report


def _gone_if_unknown(call: Callable[[], object]) -> bool:
    """Run a Signal or Delete; False if the host says the shell or command does not exist."""
    try:
        call()
    except wexc.WSManFaultError as exc:
        if exc.wsman_fault_code in _NOT_FOUND_CODES:
            return False
        raise
    return True


# "The shell was not found" / "the request ... invalid selectors": already gone.
_NOT_FOUND_CODES = frozenset({2150858843, 2150858778})


def build_command_line(command: Command) -> tuple[str, list[str], bytes | None]:
    """(executable, arguments, stdin payload) for a command; long scripts go over stdin."""
    if command.shell == "posix":
        raise TransportConfigError("winrm: a posix shell command cannot run on a Windows host")
    if command.shell == "cmd":
        if len(command.script) > MAX_COMMAND_LINE:
            raise TransportError(
                f"winrm: cmd command is {len(command.script)} characters; cmd.exe takes 8191",
                hint="write the step as PowerShell, which has no such limit here",
            )
        return command.script, [], command.stdin
    encoded = encode_powershell(command.script)
    if len(encoded) + 64 <= MAX_COMMAND_LINE:
        return POWERSHELL, [*PS_ARGS, encoded], command.stdin
    script_line = base64.b64encode(command.script.encode("utf-8")) + b"\r\n"
    return (
        POWERSHELL,
        [*PS_ARGS, encode_powershell(STDIN_BOOTSTRAP)],
        script_line + (command.stdin or b""),
    )


def _make_protocol(settings: WinRMSettings, credential: Credential | None) -> Protocol:
    try:
        return Protocol(
            endpoint=settings.url,
            transport=settings.auth,
            username=credential.username if credential else None,
            password=credential.password if credential else None,
            server_cert_validation=settings.cert_validation,
            ca_trust_path=settings.ca_trust_path,  # type: ignore[arg-type]
            cert_pem=settings.cert_pem,
            cert_key_pem=settings.cert_key_pem,
            read_timeout_sec=settings.read_timeout,
            operation_timeout_sec=settings.operation_timeout,
            message_encryption=settings.message_encryption,
            proxy=settings.proxy,
        )
    except (wexc.WinRMError, ValueError) as exc:
        raise TransportConfigError(f"winrm {settings.host}: {exc}") from exc


def _check_auth_library(settings: WinRMSettings) -> None:
    """pywinrm only notices a missing auth library at the first request; say so up front."""
    import winrm.transport as backend

    needed = {
        "kerberos": (backend.HAVE_KERBEROS, "pywinrm[kerberos]"),
        "credssp": (backend.HAVE_CREDSSP, "pywinrm[credssp]"),
        "ntlm": (backend.HAVE_NTLM, "requests_ntlm"),
    }
    present, package = needed.get(settings.auth, (True, ""))
    if not present:
        raise TransportConfigError(
            f"winrm {settings.host}: {settings.auth} auth needs {package}, which is not installed",
            hint=f"pip install '{package}', or choose another auth method",
        )


_WARNED: set[tuple[str, str]] = set()  # (endpoint, choice): said once per process


def _warn_insecure(settings: WinRMSettings) -> None:
    choices = (
        (settings.scheme == "http", "plain http chosen; only auth-level encryption"),
        (settings.auth == "basic", "basic auth chosen (local accounts only)"),
        (settings.cert_validation == "ignore", "server certificate NOT validated"),
    )
    for chosen, text in choices:
        key = (settings.url, text)
        if chosen and key not in _WARNED:
            _WARNED.add(key)
            log.warning("winrm %s: %s", settings.host, text)


def _operation_timeout(settings: WinRMSettings, left: float) -> float:
    """The next Receive's OperationTimeout: never past the deadline (xs:duration allows
    fractions, as in Windows' own ``PT60.000S``)."""
    return round(max(0.2, min(float(settings.operation_timeout), left)), 3)


def _signed32(code: int) -> int:
    """WinRS reports exit codes as unsigned 32-bit; Windows tools mean them signed."""
    return code - 2**32 if code >= 2**31 else code


def _absolute(remote: str, host: str) -> str:
    if not _WINDOWS_ABSOLUTE.match(remote):
        raise TransportError(
            f"winrm {host}: remote path {remote!r} is not an absolute Windows path",
            hint=r"write it as C:\dir\file or \\server\share\file",
        )
    return remote


def _read_local(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TransportError(f"cannot read {path}: {exc.strerror}") from exc


def _base64_lines(data: bytes) -> bytes:
    lines = (base64.b64encode(data[i : i + PUT_LINE]) for i in range(0, len(data), PUT_LINE))
    return b"".join(line + b"\r\n" for line in lines)


def _parse_chunk(stdout: bytes, host: str, remote: str) -> tuple[int, bytes]:
    lines = stdout.decode("ascii", "replace").split()
    try:
        size = int(lines[0])
        chunk = base64.b64decode(lines[1]) if len(lines) > 1 else b""
    except (IndexError, ValueError) as exc:
        raise ProtocolError(f"winrm {host}: fetch {remote}: unexpected reply") from exc
    return size, chunk
