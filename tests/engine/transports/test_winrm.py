"""The WinRM transport against the loopback WinRS endpoint: real HTTP, real pywinrm."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests.exceptions as rexc
import winrm.exceptions as wexc

from dr.lab.pslite import PowerShellLite
from dr.lab.winrs import WinRSServer
from engine.errors import (
    AuthenticationError,
    HostUnreachable,
    ProtocolError,
    TransportConfigError,
    TransportError,
    TransportTimeout,
)
from engine.transports import open_transport
from engine.transports.base import Command
from engine.transports.credentials import Credential
from engine.transports.winrm import (
    MAX_COMMAND_LINE,
    REQUESTS_ERRORS,
    STDIN_BOOTSTRAP,
    WINRM_ERRORS,
    WinRMSettings,
    WinRMTransport,
    map_exception,
)

from .conftest import PASSWORD, USER, MakeTransport


def test_wrong_password_is_an_authentication_error(
    make_winrm: MakeTransport, winrs: WinRSServer
) -> None:
    transport = make_winrm(password="wrong")
    with pytest.raises(AuthenticationError) as caught:
        transport.run(Command("Write-Output 'x'"), timeout=10)
    assert caught.value.exit_code == 9
    assert "rejected" in caught.value.message
    assert "wrong" not in caught.value.message
    assert winrs.rejected_logins >= 1
    assert winrs.shells == {}


def test_a_command_outliving_the_operation_timeout_still_completes(
    make_winrm: MakeTransport, winrs: WinRSServer
) -> None:
    transport = make_winrm(operation_timeout=1, read_timeout=3)
    result = transport.run(Command("Start-Sleep -Seconds 2.5; Write-Output 'done'"), timeout=20)
    assert result.ok
    assert result.stdout == b"done\r\n"
    # the endpoint answered at least two Receives with the w:TimedOut fault, retried by us
    assert winrs.actions.count("Receive") >= 3


def test_the_deadline_bounds_every_receive(make_winrm: MakeTransport, winrs: WinRSServer) -> None:
    transport = make_winrm(operation_timeout=20, read_timeout=30)
    result = transport.run(Command("Start-Sleep -Seconds 60"), timeout=0.8)
    assert result.timed_out
    assert winrs.receive_timeouts and max(winrs.receive_timeouts) <= 0.8
    record = next(iter(winrs.commands.values()))
    assert record.terminated and "terminate" in record.signals


def test_endpoint_killed_mid_command_fails_promptly(lab_root: Path) -> None:
    started = threading.Event()
    inner = PowerShellLite(lab_root)

    def handler(script: str, stdin: bytes) -> Iterator[tuple[str, bytes]]:
        started.set()
        return (yield from inner(script, stdin))

    with WinRSServer(handler, USER, PASSWORD) as server:
        settings = WinRMSettings(
            host="127.0.0.1",
            port=server.port,
            scheme="http",
            auth="basic",
            allow_plaintext=True,
            operation_timeout=5,
            read_timeout=10,
        )
        transport = WinRMTransport(settings, Credential(USER, PASSWORD))
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(transport.run, Command("Start-Sleep -Seconds 120"), 120)
            assert started.wait(10)
            server.kill()
            with pytest.raises((HostUnreachable, ProtocolError)):
                future.result(timeout=15)


def test_unreachable_host(make_winrm: MakeTransport, winrs: WinRSServer) -> None:
    transport = make_winrm()
    winrs.kill()
    with pytest.raises(HostUnreachable) as caught:
        transport.run(Command("Write-Output 'x'"), timeout=5)
    assert "127.0.0.1" in caught.value.message
    assert caught.value.hint


class _DropAfter:
    """A network that drops the host as the command matching ``text`` ends."""

    def __init__(self, text: str) -> None:
        self.text = text

    def command_ended(self, script: str) -> bool:
        return self.text in script


def test_a_refused_connection_is_told_from_one_that_dropped_with_the_command_run(
    make_winrm: MakeTransport, winrs: WinRSServer
) -> None:
    """Dropped: the host ran the command and its answer never came (it may have run);
    refused: nothing listens, nothing was sent. Both are HostUnreachable, each says which."""
    transport = make_winrm()
    winrs.network = _DropAfter("'ran'")
    with pytest.raises(HostUnreachable) as dropped:
        transport.run(Command("Write-Output 'ran'"), timeout=10)
    assert "the connection dropped before the host answered; the command may have run" in (
        dropped.value.message
    )
    assert any(r.finished and "'ran'" in r.script for r in winrs.commands.values())
    with pytest.raises(HostUnreachable) as refused:
        transport.run(Command("Write-Output 'x'"), timeout=5)
    assert "connection refused, nothing was sent" in refused.value.message
    assert not any("'x'" in r.script for r in winrs.commands.values())
    winrs.network = None
    winrs.come_up()
    assert transport.run(Command("Write-Output 'back'"), timeout=10).stdout.strip() == b"back"


def test_shell_opened_utf8_script_encoded_and_always_closed(
    make_winrm: MakeTransport, winrs: WinRSServer
) -> None:
    transport = make_winrm()
    transport.run(Command("Write-Output 'a'"), timeout=10)
    transport.run(Command("Start-Sleep -Seconds 30"), timeout=0.5)
    transport.run(Command("exit 4"), timeout=10)
    assert winrs.open_shells() == []
    assert {s.options["WINRS_CODEPAGE"] for s in winrs.shells.values()} == {"65001"}
    first = next(iter(winrs.commands.values()))
    assert first.command_line.startswith(
        "powershell.exe -NoProfile -NonInteractive -EncodedCommand "
    )
    assert first.script == "Write-Output 'a'"
    assert all("terminate" in r.signals for r in winrs.commands.values())


def test_long_script_goes_over_stdin_with_its_data(
    make_winrm: MakeTransport, winrs: WinRSServer, interpreter: PowerShellLite
) -> None:
    script = "\n".join(f"$v{i} = 'padding {i}'" for i in range(400))
    script += "\n[Console]::Out.Write([Console]::In.ReadToEnd())"
    assert len(script) * 2 > MAX_COMMAND_LINE
    result = make_winrm().run(Command(script, stdin=b"payload \xff\x00"), timeout=10)
    assert result.stdout == b"payload \xff\x00"
    record = next(iter(winrs.commands.values()))
    assert record.script == STDIN_BOOTSTRAP
    assert len(record.command_line) < MAX_COMMAND_LINE
    assert interpreter.scripts[-1] == script


def test_clixml_errors_become_plain_text(make_winrm: MakeTransport) -> None:
    result = make_winrm().run(Command("Write-Error 'disk E: is full'"), timeout=10)
    assert result.exit_code == 1
    assert result.stderr == b"disk E: is full\r\n"


@pytest.mark.parametrize("code", [-1, -1073741819, 2147483647])
def test_exit_codes_are_signed(make_winrm: MakeTransport, code: int) -> None:
    assert make_winrm().run(Command(f"exit {code}"), timeout=10).exit_code == code


def test_env_reaches_the_shell(make_winrm: MakeTransport, winrs: WinRSServer) -> None:
    make_winrm().run(Command("exit 0", env={"DR_STEP": "restore-logs.EX1.SG1"}), timeout=10)
    assert next(iter(winrs.shells.values())).env == {"DR_STEP": "restore-logs.EX1.SG1"}


def test_posix_commands_are_refused(make_winrm: MakeTransport) -> None:
    with pytest.raises(TransportConfigError):
        make_winrm().run(Command("ls", shell="posix"), timeout=5)


def test_put_needs_an_absolute_windows_path(make_winrm: MakeTransport, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(TransportError, match="absolute Windows path"):
        make_winrm().put(source, "relative\\f")


def test_put_lands_on_the_host_drive(
    make_winrm: MakeTransport, lab_root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "restore.env"
    source.write_bytes(b"[restore]\r\nLastRestoreSet=1\r\n")
    make_winrm().put(source, "C:\\Temp\\it's ‘here’\\restore.env")
    landed = lab_root / "C" / "Temp" / "it's ‘here’" / "restore.env"
    assert landed.read_bytes() == source.read_bytes()
    assert not list(landed.parent.glob("*.dr-partial"))


def test_fetch_of_a_missing_file_fails_and_writes_nothing(
    make_winrm: MakeTransport, tmp_path: Path
) -> None:
    local = tmp_path / "out" / "priv1.edb"
    with pytest.raises(TransportError, match="fetch"):
        make_winrm().fetch("C:\\nowhere\\priv1.edb", local)
    assert not local.exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_fetch_spanning_several_chunks(
    make_winrm: MakeTransport, lab_root: Path, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 9000  # 2.2 MiB: three fetch commands
    (lab_root / "E" / "logs").mkdir(parents=True)
    (lab_root / "E" / "logs" / "E0000001A.log").write_bytes(data)
    local = tmp_path / "E0000001A.log"
    make_winrm().fetch("E:\\logs\\E0000001A.log", local)
    assert local.read_bytes() == data


def test_repr_and_errors_hide_the_password(make_winrm: MakeTransport) -> None:
    transport = make_winrm()
    assert PASSWORD not in repr(transport)
    assert PASSWORD not in repr(transport._credential)
    assert PASSWORD not in str(transport._credential)


# --- settings and the factory ------------------------------------------------------------


def test_secure_defaults() -> None:
    settings = WinRMSettings(host="ex2016.corp.example")
    assert settings.url == "https://ex2016.corp.example:5986/wsman"
    assert settings.auth == "ntlm"
    assert settings.cert_validation == "validate"


def test_basic_over_http_needs_an_explicit_opt_in() -> None:
    with pytest.raises(TransportConfigError, match="allow_plaintext"):
        open_transport({"kind": "winrm", "host": "ex1", "scheme": "http", "auth": "basic"})


def test_read_timeout_must_exceed_operation_timeout() -> None:
    with pytest.raises(TransportConfigError, match="read_timeout"):
        WinRMSettings.from_spec({"host": "ex1", "operation_timeout": 30, "read_timeout": 30})


def test_unknown_fields_are_named() -> None:
    with pytest.raises(TransportConfigError, match="pasword"):
        open_transport({"kind": "winrm", "host": "ex1", "pasword": "x"})


def test_insecure_choices_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    settings = WinRMSettings(host="lab1", auth="basic", cert_validation="ignore")
    with caplog.at_level(logging.WARNING, logger="engine.transports.winrm"):
        WinRMTransport(settings, Credential("u", "secret-value"))
    text = caplog.text
    assert "basic auth" in text and "NOT validated" in text
    assert "secret-value" not in text


def test_open_transport_takes_the_password_from_the_environment(winrs: WinRSServer) -> None:
    spec = {
        "kind": "winrm",
        "host": "127.0.0.1",
        "port": winrs.port,
        "scheme": "http",
        "auth": "basic",
        "allow_plaintext": True,
        "operation_timeout": 2,
        "read_timeout": 5,
    }
    env = {"DR_WINRM_127_0_0_1_USER": USER, "DR_WINRM_127_0_0_1_PASSWORD": PASSWORD}
    transport = open_transport(spec, env=env)
    try:
        assert transport.run(Command("Write-Output 'ok'"), timeout=10).stdout == b"ok\r\n"
    finally:
        transport.close()


def test_a_missing_auth_library_is_named_up_front() -> None:
    import winrm.transport

    if winrm.transport.HAVE_KERBEROS:
        pytest.skip("kerberos support is installed here")
    with pytest.raises(TransportConfigError, match=r"pywinrm\[kerberos\]"):
        open_transport({"kind": "winrm", "host": "ex1", "auth": "kerberos"})


def test_open_transport_kinds() -> None:
    assert open_transport({"kind": "local"}).name == "local"
    assert open_transport({"kind": "dry-run", "host": "EX2003"}).name == "dry-run:EX2003"
    with pytest.raises(TransportConfigError, match="ssh"):
        open_transport({"kind": "ssh"})


# --- exception mapping -------------------------------------------------------------------


def _module_exceptions(module: object) -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == module.__name__  # type: ignore[attr-defined]
    ]


def test_every_pywinrm_exception_is_mapped() -> None:
    mapped = {backend for backend, _ in WINRM_ERRORS}
    found = _module_exceptions(wexc)
    assert len(found) >= 7
    missing = [cls.__name__ for cls in found if cls not in mapped]
    assert missing == [], f"map these pywinrm exceptions in engine/transports/winrm.py: {missing}"


def test_every_requests_exception_maps_to_a_transport_error() -> None:
    found = [c for c in _module_exceptions(rexc) if issubclass(c, rexc.RequestException)]
    assert len(found) >= 10
    for cls in found:
        assert any(issubclass(cls, backend) for backend, _ in REQUESTS_ERRORS), cls.__name__


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            wexc.InvalidCredentialsError("the specified credentials were rejected"),
            AuthenticationError,
        ),
        (wexc.BasicAuthDisabledError(), AuthenticationError),
        (wexc.AuthenticationError(), AuthenticationError),
        (wexc.WinRMOperationTimeoutError(), TransportTimeout),
        (
            wexc.WSManFaultError(500, "m", "<r/>", "Access is denied.", "s:Sender", None, 5, None),
            ProtocolError,
        ),
        (wexc.WinRMTransportError("http", 502, ""), ProtocolError),
        (wexc.WinRMError("generic"), ProtocolError),
        (rexc.SSLError("certificate verify failed"), ProtocolError),
        (rexc.ConnectTimeout("connect"), HostUnreachable),
        (rexc.ReadTimeout("read"), TransportTimeout),
        (rexc.ConnectionError("refused"), HostUnreachable),
        (AssertionError(), ProtocolError),
    ],
)
def test_exception_mapping_table(exc: BaseException, expected: type[TransportError]) -> None:
    error = map_exception(exc, "ex1")
    assert type(error) is expected
    assert error is not None and error.message.startswith("winrm ex1:")


def test_wsman_fault_message_carries_code_and_reason() -> None:
    fault = wexc.WSManFaultError(500, "m", "<r/>", "Access is denied.", "s:Sender", None, 5, None)
    error = map_exception(fault, "ex1")
    assert error is not None and error.message == "winrm ex1: WS-Man fault 5: Access is denied."


def test_unrelated_exceptions_are_not_swallowed() -> None:
    assert map_exception(RuntimeError("bug"), "ex1") is None
