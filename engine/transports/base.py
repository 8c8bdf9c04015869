"""The transport contract: run a command on a host with a timeout; put and fetch files.

Every transport (local, winrm, dry-run) implements :class:`Transport`; one contract test
suite (tests/engine/transports/test_contract.py) runs against each. Backend exceptions are
translated at this boundary into :mod:`engine.errors` (TransportError and its children).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

Shell = Literal["powershell", "cmd", "posix"]

#: What a transport started, reported through ``on_start`` so that it can be journalled and,
#: after a crash, found and stopped: plain JSON-able data, never a secret (see
#: :class:`Stoppable`).
Handle = Mapping[str, Any]
StartHook = Callable[[Handle], None]


@dataclass(frozen=True)
class Command:
    """What to run. ``script`` is already rendered and quoted by engine.render.quote_*;
    ``stdin`` carries data (e.g. JSON parameters) that never passes through a shell parser."""

    script: str
    shell: Shell = "powershell"
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: bytes
    stderr: bytes
    started: datetime
    ended: datetime
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class Transport(Protocol):
    """One host's connection. Implementations are safe to use from one thread at a time."""

    name: str

    def run(self, command: Command, timeout: float) -> Result:
        """Run to completion or until ``timeout`` seconds pass; a timed-out command is
        stopped on the host and returned with ``timed_out=True`` (not raised)."""
        ...

    def put(self, local: Path, remote: str) -> None: ...

    def fetch(self, remote: str, local: Path) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Stoppable(Protocol):
    """A transport that reports what it starts and can stop it later, from another process.

    ``run(command, timeout, on_start=hook)`` calls ``hook(handle)`` as soon as the command
    exists on the host (and again if it learns more, e.g. WinRM's command id after its shell
    id); the command does nothing the caller could not stop before ``hook`` returns, so a
    caller that journals the handle inside ``hook`` can always find the command again.
    ``stop(handle)`` makes sure that command is no longer running: it returns what it did
    ("was not running", "stopped ...") and raises ``TransportError`` when it cannot tell.
    """

    reports_start: bool

    def run(
        self, command: Command, timeout: float, on_start: StartHook | None = None
    ) -> Result: ...

    def stop(self, handle: Handle, grace: float = 5.0) -> str: ...
