"""The engine's errors. The engine never imports dr; the CLI maps these to one line too.

The tree (code, exit code)::

    EngineError                          8000  8   the engine could not do what was asked
    ├── PlanFormatError                  8100  2   a plan file is invalid (file, field)
    ├── LibraryError                     8200  2   a step library file is invalid (file:line field)
    ├── RenderError                      8300  2   a template or command cannot be rendered
    ├── JournalError                     8400  7   the run journal cannot be read or written
    │   └── RunNotFound                  8410  2   no run with that id in the journal
    ├── RunStateError                    8500  7   the run is not in a state that allows this
    └── TransportError                   8600  9   a host could not be reached or did not answer
        ├── AuthenticationError          8610  9   credentials were refused
        ├── TransportTimeout             8620  9   the command or the connection timed out
        ├── ProtocolError                8630  9   the remote end broke the protocol (WS-Man fault)
        ├── HostUnreachable              8640  9   connection refused, reset or DNS failure
        └── TransportConfigError         8650  2   a transport spec is invalid or unsafe
"""

from __future__ import annotations

from typing import Any, ClassVar


class EngineError(Exception):
    code: ClassVar[int] = 8000
    exit_code: ClassVar[int] = 8

    def __init__(
        self, message: str, *, hint: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = dict(details or {})

    @property
    def ident(self) -> str:
        return f"E{self.code}"

    def lines(self) -> list[str]:
        text = f"{self.ident} {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return [text]

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "code": self.ident,
            "exit_code": self.exit_code,
            "message": self.message,
            "hint": self.hint,
            "problems": [],
            "details": self.details,
        }


class PlanFormatError(EngineError):
    code = 8100
    exit_code = 2


class LibraryError(EngineError):
    code = 8200
    exit_code = 2


class RenderError(EngineError):
    code = 8300
    exit_code = 2


class JournalError(EngineError):
    code = 8400
    exit_code = 7


class RunNotFound(JournalError):
    code = 8410
    exit_code = 2


class RunStateError(EngineError):
    code = 8500
    exit_code = 7


class TransportError(EngineError):
    code = 8600
    exit_code = 9


class AuthenticationError(TransportError):
    code = 8610


class TransportTimeout(TransportError):
    code = 8620


class ProtocolError(TransportError):
    code = 8630


class HostUnreachable(TransportError):
    code = 8640


class TransportConfigError(TransportError):
    code = 8650
    exit_code = 2


def all_error_classes() -> list[type[EngineError]]:
    found: list[type[EngineError]] = []
    pending: list[type[EngineError]] = [EngineError]
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
