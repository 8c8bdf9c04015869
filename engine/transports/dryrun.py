"""The dry-run transport: records what would run, runs nothing; scripted answers for tests.

``dr run start --dry-run`` (and ``dr demo``) give every host a :class:`DryRunTransport`
sharing one :class:`Recorder`, so the order of every command that would have been sent, to
which host, with which timeout, is kept in one list. By default every command "succeeds"
with empty output. Tests script answers: a list of :class:`Rule` s (a regular expression
searched in the script, and the answers it gives, consumed in order, the last one repeating),
or a handler function that sees the :class:`Command` and returns a :class:`Scripted` answer.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import TransportError
from engine.transports.base import Command, Result


@dataclass(frozen=True)
class Scripted:
    """One answer a dry-run host gives; ``raises`` simulates a transport failure."""

    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    raises: TransportError | None = None


@dataclass
class Rule:
    """Answer scripts matching ``pattern`` with ``answers`` in turn; the last one repeats."""

    pattern: str
    answers: list[Scripted]
    host: str | None = None
    used: int = 0

    def matches(self, host: str, script: str) -> bool:
        return (self.host is None or self.host == host) and re.search(
            self.pattern, script
        ) is not None

    def next(self) -> Scripted:
        answer = self.answers[min(self.used, len(self.answers) - 1)]
        self.used += 1
        return answer


@dataclass(frozen=True)
class Call:
    """One operation a dry-run host was asked to do."""

    host: str
    op: str  # run | put | fetch
    script: str
    shell: str = ""
    timeout: float | None = None


Handler = Callable[[str, Command], Scripted | None]


@dataclass
class Recorder:
    """What every dry-run host was asked to do, in order; shared by the hosts of one run."""

    rules: list[Rule] = field(default_factory=list)
    handler: Handler | None = None
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, host: str, command: Command, timeout: float) -> Scripted:
        with self._lock:
            self.calls.append(Call(host, "run", command.script, command.shell, timeout))
        if self.handler is not None:  # outside the lock: a handler may block (tests)
            scripted = self.handler(host, command)
            if scripted is not None:
                return scripted
        with self._lock:
            for rule in self.rules:
                if rule.matches(host, command.script):
                    return rule.next()
        return Scripted()

    def note(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def scripts(self, host: str | None = None) -> list[str]:
        return [c.script for c in self.calls if c.op == "run" and host in (None, c.host)]


class DryRunTransport:
    """A host that answers from a :class:`Recorder` instead of running anything."""

    def __init__(self, host: str = "dry-run", recorder: Recorder | None = None) -> None:
        self.name = f"dry-run:{host}"
        self.host = host
        self.recorder = recorder if recorder is not None else Recorder()

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> DryRunTransport:
        """``{"kind": "dry-run", "host": NAME, "recorder": Recorder?}`` (for open_transport)."""
        return cls(str(spec.get("host", "dry-run")), spec.get("recorder"))

    def run(self, command: Command, timeout: float) -> Result:
        started = datetime.now(UTC)
        scripted = self.recorder.answer(self.host, command, timeout)
        if scripted.raises is not None:
            raise scripted.raises
        return Result(
            exit_code=scripted.exit_code,
            stdout=scripted.stdout,
            stderr=scripted.stderr,
            started=started,
            ended=datetime.now(UTC),
            timed_out=scripted.timed_out,
        )

    def put(self, local: Path, remote: str) -> None:
        self.recorder.note(Call(self.host, "put", f"{local} -> {remote}"))

    def fetch(self, remote: str, local: Path) -> None:
        self.recorder.note(Call(self.host, "fetch", f"{remote} -> {local}"))

    def close(self) -> None:
        """Nothing to release."""


def rules(*pairs: tuple[str, Scripted | Sequence[Scripted]]) -> list[Rule]:
    """Shorthand for tests: ``rules(("eseutil /mh", Scripted(stdout=b"...")), ...)``."""
    out: list[Rule] = []
    for pattern, answer in pairs:
        answers = [answer] if isinstance(answer, Scripted) else list(answer)
        out.append(Rule(pattern, answers))
    return out
