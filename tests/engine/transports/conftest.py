"""Fixtures shared by the transport tests: a loopback WinRS endpoint and transports on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dr.lab.pslite import PowerShellLite
from dr.lab.winrs import WinRSServer
from engine.transports.credentials import Credential
from engine.transports.winrm import WinRMSettings, WinRMTransport

USER = "lab\\operator"
PASSWORD = "c0rrect h0rse;'$(x)"

MakeTransport = Callable[..., WinRMTransport]


@pytest.fixture
def lab_root(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    root.mkdir()
    return root


@pytest.fixture
def interpreter(lab_root: Path) -> PowerShellLite:
    return PowerShellLite(root=lab_root)


@pytest.fixture
def winrs(interpreter: PowerShellLite) -> Iterator[WinRSServer]:
    with WinRSServer(interpreter, USER, PASSWORD) as server:
        yield server


@pytest.fixture
def make_winrm(winrs: WinRSServer) -> Iterator[MakeTransport]:
    """Transports to the loopback endpoint (plain http + basic: the lab's explicit opt-in)."""
    made: list[WinRMTransport] = []

    def make(password: str = PASSWORD, **overrides: object) -> WinRMTransport:
        fields: dict[str, object] = {
            "host": "127.0.0.1",
            "port": winrs.port,
            "scheme": "http",
            "auth": "basic",
            "allow_plaintext": True,
            "operation_timeout": 2,
            "read_timeout": 10,
        }
        fields.update(overrides)
        transport = WinRMTransport(WinRMSettings(**fields), Credential(USER, password))  # type: ignore[arg-type]
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()
