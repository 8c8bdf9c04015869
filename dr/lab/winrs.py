"""A loopback WinRS endpoint: real HTTP, Basic auth, the WS-Man shell subset pywinrm uses.

The WinRM transport is tested against this, so the real client path runs (requests,
pywinrm's envelopes and parsing, our Receive loop) with no Windows host. It answers
Create shell, Command, Send (stdin), Receive, Signal and Delete; a Receive with nothing to
say within the request's ``OperationTimeout`` gets the ``w:TimedOut`` fault (WS-Man code
2150858793) exactly as a Windows host does, which pywinrm turns into a retryable error.

What runs a command is a *handler*: ``handler(script, stdin)`` returns a generator that
yields ``(stream, bytes)`` with ``stream`` in ``{"stdout", "stderr"}`` and returns the
exit code. ``script`` is the PowerShell text (decoded from ``-EncodedCommand``, and from
dr's stdin bootstrap for long scripts) or the raw command line for cmd commands; a handler
with ``shell_aware = True`` is also told which (``handler(script, stdin, "cmd")``), and one
with ``env_aware = True`` also the shell's environment variables, as the client set them at
Create (``handler(script, stdin, shell, env)``: how dr's WinRM transport hands a step its
secrets). The
handler starts at the first Receive, by which time the client has sent its stdin. A
long-running handler should yield ``(stream, b"")`` now and then: that is where a
terminate signal or a Delete stops it.

``kill()`` drops every connection at once, as a host that loses power would.
``go_down()`` does the same but keeps the shells and commands (the host still runs; only the
network is gone): connections are refused until ``come_up()`` listens on the same port
again. With a ``network`` (:class:`dr.lab.network.Reachability`), each command that ends is
reported to it first, and when it says so the endpoint goes down before the command's result
can be received — the command ran, its answer is lost.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import re
import socket
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from engine.transports.winrm import STDIN_BOOTSTRAP

__all__ = ["CommandRecord", "Handler", "ShellRecord", "WinRSServer", "decode_command_line"]

Handler = Callable[[str, bytes], Iterator[tuple[str, bytes]]]

SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
TIMED_OUT = 2150858793
NOT_FOUND = 2150858843
MAX_RECEIVE = 96 * 1024  # raw bytes per Receive answer: base64 fits a 150 KB envelope


@dataclass
class CommandRecord:
    """One command as the endpoint saw it; tests read these to check what happened."""

    id: str
    shell_id: str
    command_line: str
    script: str = ""
    stdin: bytearray = field(default_factory=bytearray)
    stdin_ended: bool = False
    exit_code: int | None = None
    finished: bool = False  # the handler ran to its end
    terminated: bool = False  # stopped by a signal or a Delete before it ended
    signals: list[str] = field(default_factory=list)
    pending: list[tuple[str, bytes]] = field(default_factory=list)
    done: bool = False
    started: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    cond: threading.Condition = field(default_factory=threading.Condition)


@dataclass
class ShellRecord:
    id: str
    options: dict[str, str]
    env: dict[str, str]
    closed: bool = False
    commands: list[str] = field(default_factory=list)


class _Fault(Exception):
    def __init__(self, code: int, subcode: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason = code, subcode, reason


class _Dropped(Exception):
    """The endpoint was killed while this request waited: send nothing."""


class WinRSServer:
    """``with WinRSServer(handler, "user", "pass") as server: ... server.url``."""

    def __init__(
        self,
        handler: Handler,
        username: str,
        password: str,
        host: str = "127.0.0.1",
        port: int = 0,
        network: Any = None,
    ) -> None:
        self.handler = handler
        self.network = network  # told of each command that ends; says when the host drops
        self._expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._httpd = _HTTPServer((host, port), _RequestHandler, self)
        self._lock = threading.Lock()
        self._killed = threading.Event()
        self._down = threading.Event()  # the network is gone; the host's state is kept
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.shells: dict[str, ShellRecord] = {}
        self.commands: dict[str, CommandRecord] = {}
        self.actions: list[str] = []
        self.receive_timeouts: list[float] = []  # OperationTimeout of each Receive
        self.rejected_logins = 0

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/wsman"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def open_shells(self) -> list[str]:
        return [s.id for s in self.shells.values() if not s.closed]

    def start(self) -> WinRSServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def kill(self) -> None:
        """Drop every connection and stop listening, mid-request if need be."""
        self._killed.set()
        self._wake_all()
        self._stop_listening()
        for record in list(self.commands.values()):
            record.stop.set()

    @property
    def down(self) -> bool:
        return self._down.is_set()

    def go_down(self) -> None:
        """The network is gone: drop every connection, refuse new ones; commands go on."""
        with self._lock:
            if self._down.is_set() or self._killed.is_set():
                return
            self._down.set()
        self._wake_all()
        self._stop_listening()

    def come_up(self) -> None:
        """Listen again on the same port; the shells and commands the host had are kept."""
        with self._lock:
            if not self._down.is_set() or self._killed.is_set():
                return
            address = self._httpd.server_address[:2]
            self._httpd = _HTTPServer((str(address[0]), int(address[1])), _RequestHandler, self)
            self._down.clear()
        self.start()

    def _stop_listening(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> WinRSServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._killed.is_set():
            self.kill()

    # -- called from request threads --

    def authorised(self, header: str | None, body: bytes = b"") -> bool:
        ok = header == self._expected
        sign_in = getattr(self.handler, "sign_in", None)  # a host that decides who signs in
        if sign_in is not None:
            user, _, password = _basic(header)
            opening = b"/transfer/Create" in body  # a new shell, not a request on an open one
            ok = bool(sign_in(user, password, ok, opening=opening))
        if not ok:
            with self._lock:
                self.rejected_logins += 1
        return ok

    def answering(self) -> bool:
        """Whether the host behind this endpoint answers at all (a handler may say it does
        not: a lab server that is lost)."""
        answers = getattr(self.handler, "answering", None)
        return True if answers is None else bool(answers())

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def handle(self, body: bytes) -> tuple[int, bytes]:
        """One SOAP request in, (HTTP status, SOAP reply) out."""
        request = _Request.parse(body)
        self.actions.append(request.action.rsplit("/", 1)[-1])
        try:
            action = _ACTIONS[request.action]
            reply_action, reply_body = action(self, request)
        except KeyError:
            return 500, _fault(request, _Fault(2150858817, "w:ActionNotSupported", "no action"))
        except _Fault as fault:
            return 500, _fault(request, fault)
        return 200, _envelope(request, reply_action, reply_body)

    # -- actions --

    def _create(self, request: _Request) -> tuple[str, str]:
        shell = ShellRecord(str(uuid.uuid4()).upper(), request.options(), request.environment())
        with self._lock:
            self.shells[shell.id] = shell
        body = (
            f"<x:ResourceCreated><a:Address>{escape(self.url)}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{SHELL}/cmd</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell.id}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters></x:ResourceCreated>"
        )
        return f"{TRANSFER}/CreateResponse", body

    def _command(self, request: _Request) -> tuple[str, str]:
        shell = self._shell(request)
        line = " ".join(t for t in (request.text("Command"), request.text("Arguments")) if t)
        record = CommandRecord(str(uuid.uuid4()).upper(), shell.id, line)
        record.script = decode_command_line(line)
        with self._lock:
            self.commands[record.id] = record
            shell.commands.append(record.id)
        body = (
            f"<rsp:CommandResponse><rsp:CommandId>{record.id}</rsp:CommandId></rsp:CommandResponse>"
        )
        return f"{SHELL}/CommandResponse", body

    def _send(self, request: _Request) -> tuple[str, str]:
        self._shell(request)
        stream = request.element("Stream")
        record = self._record(stream.get("CommandId") if stream is not None else None)
        try:
            record.stdin += base64.b64decode((stream.text or "") if stream is not None else "")
        except binascii.Error as exc:
            raise _Fault(2150858817, "w:SchemaValidationError", "bad base64 in Send") from exc
        record.stdin_ended = stream is not None and stream.get("End", "").lower() == "true"
        return f"{SHELL}/SendResponse", "<rsp:SendResponse/>"

    def _receive(self, request: _Request) -> tuple[str, str]:
        shell = self._shell(request)
        desired = request.element("DesiredStream")
        record = self._record(desired.get("CommandId") if desired is not None else None)
        self._start(record)
        wait = request.operation_timeout()
        self.receive_timeouts.append(wait)
        chunks, done = self._collect(record, wait)
        codepage = shell.options.get("WINRS_CODEPAGE", "437")
        return f"{SHELL}/ReceiveResponse", _receive_body(record, chunks, done, codepage)

    def _signal(self, request: _Request) -> tuple[str, str]:
        self._shell(request)
        signal = request.element("Signal")
        record = self._record(signal.get("CommandId") if signal is not None else None)
        code = request.text("Code") or ""
        record.signals.append(code.rsplit("/", 1)[-1])
        if code.endswith("/terminate"):
            self._stop(record)
        return f"{SHELL}/SignalResponse", "<rsp:SignalResponse/>"

    def _delete(self, request: _Request) -> tuple[str, str]:
        shell = self._shell(request)
        shell.closed = True
        for command_id in shell.commands:
            self._stop(self.commands[command_id])
        return f"{TRANSFER}/DeleteResponse", ""

    # -- command machinery --

    def _shell(self, request: _Request) -> ShellRecord:
        shell = self.shells.get(request.shell_id or "")
        if shell is None or shell.closed:
            raise _Fault(NOT_FOUND, "w:InvalidSelectors", "The shell was not found on the server.")
        return shell

    def _record(self, command_id: str | None) -> CommandRecord:
        record = self.commands.get(command_id or "")
        if record is None:
            raise _Fault(NOT_FOUND, "w:InvalidSelectors", "The command was not found.")
        return record

    def _start(self, record: CommandRecord) -> None:
        with record.cond:
            if record.started:
                return
            record.started = True
        script, stdin = unwrap_bootstrap(record.script, bytes(record.stdin))
        shell = "cmd" if script == record.command_line else "powershell"
        worker = threading.Thread(
            target=self._work, args=(record, script, stdin, shell), daemon=True
        )
        worker.start()

    def _work(self, record: CommandRecord, script: str, stdin: bytes, shell: str) -> None:
        code = 1
        try:
            if getattr(self.handler, "env_aware", False):  # the shell's <rsp:Environment>
                env = self.shells[record.shell_id].env if record.shell_id in self.shells else {}
                output = self.handler(script, stdin, shell, env)  # type: ignore[call-arg]
            elif getattr(self.handler, "shell_aware", False):
                output = self.handler(script, stdin, shell)  # type: ignore[call-arg]
            else:
                output = self.handler(script, stdin)
            code = _drive(output, record)
        except Exception as exc:  # a handler bug must still end the command
            _append(record, "stderr", f"lab handler failed: {exc!r}\r\n".encode())
        finally:
            drop = False
            if self.network is not None and not record.terminated:
                with contextlib.suppress(Exception):
                    drop = bool(self.network.command_ended(script))
            with record.cond:  # the host's own record: the command ran to its end
                record.exit_code = code
                record.finished = not record.terminated
                record.done = not drop  # dropping: no Receive may answer before the drop
                record.cond.notify_all()
            if drop:
                self.go_down()
                with record.cond:
                    record.done = True
                    record.cond.notify_all()

    def _collect(self, record: CommandRecord, wait: float) -> tuple[list[tuple[str, bytes]], bool]:
        with record.cond:
            record.cond.wait_for(
                lambda: record.pending or record.done or self._gone(), timeout=wait
            )
            if self._gone():
                raise _Dropped()
            chunks = _take(record.pending, MAX_RECEIVE)
            done = record.done and not record.pending
        if not chunks and not done:
            raise _Fault(
                TIMED_OUT,
                "w:TimedOut",
                "The WS-Management service cannot complete the operation within the time "
                "specified in OperationTimeout.",
            )
        return chunks, done

    def _gone(self) -> bool:
        return self._killed.is_set() or self._down.is_set()

    def _stop(self, record: CommandRecord) -> None:
        with record.cond:
            if not record.done:
                record.terminated = True
            record.stop.set()
            record.cond.notify_all()

    def _wake_all(self) -> None:
        for record in list(self.commands.values()):
            with record.cond:
                record.cond.notify_all()


def _basic(header: str | None) -> tuple[str, str, str]:
    """(user, ":", password) of an HTTP Basic ``Authorization`` header; empty if none."""
    if not header or not header.startswith("Basic "):
        return "", "", ""
    try:
        return base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", "", ""


def _drive(output: Iterator[tuple[str, bytes]], record: CommandRecord) -> int:
    """Run a handler's generator until it returns or the command is stopped."""
    while not record.stop.is_set():
        try:
            stream, data = next(output)
        except StopIteration as end:
            return int(end.value or 0)
        if data:
            _append(record, stream, data)
    if isinstance(output, Generator):
        output.close()
    return 1


def _append(record: CommandRecord, stream: str, data: bytes) -> None:
    with record.cond:
        record.pending.append((stream, data))
        record.cond.notify_all()


def _take(pending: list[tuple[str, bytes]], limit: int) -> list[tuple[str, bytes]]:
    taken: list[tuple[str, bytes]] = []
    size = 0
    while pending and size < limit:
        stream, data = pending[0]
        part, rest = data[: limit - size], data[limit - size :]
        taken.append((stream, part))
        size += len(part)
        if rest:
            pending[0] = (stream, rest)
        else:
            pending.pop(0)
    return taken


def _encode_for(codepage: str, data: bytes) -> bytes:
    """What the console would emit: UTF-8 in codepage 65001, lossy in the OEM codepage."""
    if codepage == "65001":
        return data
    return data.decode("utf-8", "replace").encode("cp437", "replace")


def _receive_body(
    record: CommandRecord, chunks: list[tuple[str, bytes]], done: bool, codepage: str
) -> str:
    parts = ["<rsp:ReceiveResponse>"]
    for stream, data in chunks:
        encoded = base64.b64encode(_encode_for(codepage, data)).decode()
        parts.append(f'<rsp:Stream Name="{stream}" CommandId="{record.id}">{encoded}</rsp:Stream>')
    if done:
        for stream in ("stdout", "stderr"):
            parts.append(f'<rsp:Stream Name="{stream}" CommandId="{record.id}" End="true"/>')
        code = record.exit_code if record.exit_code is not None else 1
        parts.append(
            f'<rsp:CommandState CommandId="{record.id}" State="{SHELL}/CommandState/Done">'
            f"<rsp:ExitCode>{code & 0xFFFFFFFF}</rsp:ExitCode></rsp:CommandState>"
        )
    else:
        state = f"{SHELL}/CommandState/Running"
        parts.append(f'<rsp:CommandState CommandId="{record.id}" State="{state}"/>')
    parts.append("</rsp:ReceiveResponse>")
    return "".join(parts)


_ENCODED = re.compile(r"^-(?:e|ec|enc|encodedcommand)$", re.IGNORECASE)


def decode_command_line(line: str) -> str:
    """The PowerShell script of ``powershell ... -EncodedCommand <b64>``, else the line."""
    tokens = line.split()
    if not tokens or not re.search(r"(?:^|\\)(?:powershell|pwsh)(?:\.exe)?$", tokens[0], re.I):
        return line
    for flag, value in itertools.pairwise(tokens):
        if _ENCODED.match(flag):
            try:
                return base64.b64decode(value).decode("utf-16-le")
            except (binascii.Error, UnicodeDecodeError):
                return line
    return line


def unwrap_bootstrap(script: str, stdin: bytes) -> tuple[str, bytes]:
    """For dr's stdin bootstrap, the script it would run and the stdin left for it."""
    if script != STDIN_BOOTSTRAP:
        return script, stdin
    first, _, rest = stdin.partition(b"\n")
    try:
        return base64.b64decode(first.strip()).decode("utf-8"), rest
    except (binascii.Error, UnicodeDecodeError):
        return script, stdin


# --- SOAP in and out ------------------------------------------------------------------


@dataclass
class _Request:
    root: ET.Element
    action: str
    message_id: str
    shell_id: str | None

    @classmethod
    def parse(cls, body: bytes) -> _Request:
        root = ET.fromstring(body)
        request = cls(root, "", "", None)
        request.action = request.text("Action") or ""
        request.message_id = request.text("MessageID") or ""
        selector = next((e for e in root.iter() if e.get("Name") == "ShellId"), None)
        request.shell_id = selector.text if selector is not None else None
        return request

    def element(self, name: str) -> ET.Element | None:
        return next((e for e in self.root.iter() if e.tag.rsplit("}", 1)[-1] == name), None)

    def text(self, name: str) -> str | None:
        found = self.element(name)
        return found.text if found is not None else None

    def options(self) -> dict[str, str]:
        return {
            e.get("Name", ""): e.text or "" for e in self.root.iter() if e.tag.endswith("}Option")
        }

    def environment(self) -> dict[str, str]:
        return {
            e.get("Name", ""): e.text or "" for e in self.root.iter() if e.tag.endswith("}Variable")
        }

    def operation_timeout(self) -> float:
        match = re.fullmatch(r"PT([\d.]+)S", self.text("OperationTimeout") or "")
        return float(match.group(1)) if match else 60.0


_NS = (
    'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    f'xmlns:rsp="{SHELL}" xmlns:x="{TRANSFER}"'
)


def _envelope(request: _Request, action: str, body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope {_NS}><s:Header>'
        f"<a:Action>{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{escape(request.message_id)}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault(request: _Request, fault: _Fault) -> bytes:
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode>"
        f"<s:Value>{fault.subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        '<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f'Code="{fault.code}" Machine="127.0.0.1"><f:Message>{escape(fault.reason)}</f:Message>'
        "</f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope(request, "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", body)


_ACTIONS: dict[str, Callable[[WinRSServer, _Request], tuple[str, str]]] = {
    f"{TRANSFER}/Create": WinRSServer._create,
    f"{SHELL}/Command": WinRSServer._command,
    f"{SHELL}/Send": WinRSServer._send,
    f"{SHELL}/Receive": WinRSServer._receive,
    f"{SHELL}/Signal": WinRSServer._signal,
    f"{TRANSFER}/Delete": WinRSServer._delete,
}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, app: WinRSServer) -> None:
        self.app = app
        super().__init__(address, handler)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms ACK stalls
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.app.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.app.track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read the server's records, not its access log."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        app = self.server.app
        if app._gone() or not app.answering():  # the network went, or the machine is lost
            self.close_connection = True
            return
        if not app.authorised(self.headers.get("Authorization"), body):
            self._reply(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
            return
        try:
            status, reply = app.handle(body)
        except _Dropped:
            self.close_connection = True
            return
        except ET.ParseError:
            status, reply = 400, b""
        self._reply(status, reply, {"Content-Type": "application/soap+xml;charset=UTF-8"})

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
