"""`dr run start/resume -v`: each command as it is sent to its host, and what it printed.

A transport is wrapped, not changed: every other attribute (``reports_start``, ``stop``,
``put``, ``fetch``) is the wrapped transport's own, so a verbose run executes exactly as a
quiet one. Commands and output go through the journal's redactor first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console

from engine.redact import Redactor

_LOCK = threading.Lock()  # steps run in parallel: one command's lines stay together


class Verbose:
    def __init__(self, host: str, inner: Any, out: Console) -> None:
        self._host, self._inner, self._out = host, inner, out
        self._redact = Redactor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def run(self, command: Any, timeout: float, **kwargs: Any) -> Any:
        script = self._redact.text(command.script)
        with _LOCK:
            self._out.print(f"→ {self._host} ({command.shell}):", highlight=False, markup=False)
            for line in script.splitlines():
                self._out.print(f"    {line}", highlight=False, markup=False, soft_wrap=True)
        result = self._inner.run(command, timeout, **kwargs)
        self._print_result(result)
        return result

    def _print_result(self, result: Any) -> None:
        with _LOCK:
            self._out.print(f"← {self._host}: exit code {result.exit_code}", highlight=False)
            for name in ("stdout", "stderr"):
                text = self._redact.text(bytes(getattr(result, name)).decode("utf-8", "replace"))
                for line in text.rstrip("\n").splitlines():
                    self._out.print(f"    {name}: {line}", highlight=False, markup=False,
                                    soft_wrap=True)  # fmt: skip


def verbose_factory(factory: Callable[[str], Any], out: Console) -> Callable[[str], Any]:
    return lambda host: Verbose(host, factory(host), out)
