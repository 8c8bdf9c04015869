"""What every CLI module shares: the consoles, the workspace option, JSON output (and how
a failure reads under ``--json``), and :func:`suggest` for the commands dr prints as
suggestions (quoted to paste as they are).

CLI modules stay thin: parse, call the domain, render. Heavy imports (networkx, the catalog,
cryptography) happen inside commands so that ``dr --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console

from dr.suggest import Placeholder, suggest
from dr.workspace import Workspace, open_existing, resolve_path

__all__ = [
    "AT_RULE", "STATE", "Placeholder", "byte_progress", "console", "emit_json", "err_console",
    "error_document", "error_of", "parse_instant", "suggest", "want_json", "workspace",
    "workspace_path",
]  # fmt: skip

console = Console()
err_console = Console(stderr=True)


@dataclass
class GlobalState:
    workspace: str | None = None
    json: bool = False
    """The command was asked for JSON: a failure is then a JSON document on stdout too."""
    json_emitted: bool = False
    """A JSON document is on stdout already; a failure after it adds none (one document)."""


STATE = GlobalState()


def workspace() -> Workspace:
    """The existing workspace chosen by --workspace / $DR_WORKSPACE / ./.dr (error if none)."""
    return open_existing(STATE.workspace)


def workspace_path() -> Workspace:
    """The chosen workspace, whether or not it exists yet."""
    return Workspace(resolve_path(STATE.workspace))


def want_json() -> None:
    """Mark the command as asked for JSON by other means than ``--json`` (which the entry
    point sees in the arguments), so that its failures are JSON documents too."""
    STATE.json = True


def emit_json(data: Any) -> None:
    """Print machine-readable output: stable key order, UTF-8, one document."""
    STATE.json_emitted = True
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))
    sys.stdout.write("\n")


def error_document(
    code: str,
    message: str,
    *,
    exit_code: int,
    hint: str | None = None,
    name: str = "DrError",
    problems: list[dict[str, Any]] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A failure as every command prints it under ``--json``: ``{"error": {...}}``.

    One shape for dr's errors, the engine's, a command line click refused and a bug, so a
    script reads ``.error.code`` and ``.error.exit_code`` whatever went wrong."""
    return {
        "error": {
            "code": code,
            "name": name,
            "message": message,
            "hint": hint,
            "exit_code": exit_code,
            "problems": list(problems or []),
            "details": dict(details or {}),
        }
    }


def error_of(exc: Any) -> dict[str, Any]:
    """:func:`error_document` for a :class:`dr.errors.DrError` or an engine error."""
    found = exc.to_dict()
    return error_document(
        found["code"],
        found["message"],
        exit_code=found["exit_code"],
        hint=found["hint"],
        name=found["error"],
        problems=found["problems"],
        details=found["details"],
    )


AT_RULE = "ISO 8601; a time without an offset is UTC, in every command"


def parse_instant(value: str | None, option: str = "--at") -> datetime | None:
    """A time given on the command line → an aware UTC datetime (None stays None).

    One rule for every command: ISO 8601 (``2024-03-04T10:30``, ``…Z``, ``…+01:00``); a time
    without an offset is UTC. A bad value is a ParameterError naming the option."""
    from datetime import UTC
    from datetime import datetime as _dt

    from dr.errors import ParameterError

    if value is None:
        return None
    try:
        parsed = _dt.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ParameterError(
            f"{option} {value!r} is not a time",
            hint="write ISO 8601, e.g. 2024-03-04T10:30 (UTC: a time without an offset is UTC) "
            "or 2024-03-04T11:30+01:00",
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@contextmanager
def byte_progress(label: str, total: int, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over bytes (on stderr); a no-op for --json or tiny jobs."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    if quiet or total <= 0:
        yield lambda n: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
