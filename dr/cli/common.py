"""What every CLI module shares: the consoles, the workspace option, JSON output, and
:func:`suggest` for the commands dr prints as suggestions (quoted to paste as they are).

CLI modules stay thin: parse, call the domain, render. Heavy imports (networkx, the catalog,
cryptography) happen inside commands so that ``dr --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from dr.suggest import Placeholder, suggest
from dr.workspace import Workspace, open_existing, resolve_path

__all__ = [
    "STATE", "Placeholder", "console", "emit_json", "err_console", "suggest", "workspace",
    "workspace_path",
]  # fmt: skip

console = Console()
err_console = Console(stderr=True)


@dataclass
class GlobalState:
    workspace: str | None = None


STATE = GlobalState()


def workspace() -> Workspace:
    """The existing workspace chosen by --workspace / $DR_WORKSPACE / ./.dr (error if none)."""
    return open_existing(STATE.workspace)


def workspace_path() -> Workspace:
    """The chosen workspace, whether or not it exists yet."""
    return Workspace(resolve_path(STATE.workspace))


def emit_json(data: Any) -> None:
    """Print machine-readable output: stable key order, UTF-8, one document."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))
    sys.stdout.write("\n")
