"""How `--help` names what an option or argument takes.

typer 0.29 prints a Python type for every parameter: `<bool>` beside a flag (which takes
nothing), `<list[str]>` beside a repeatable option, `<path>`, and a required argument as
`{plan_file}` in the usage line. A responder reads a command line, not a type annotation,
so dr's help says it the way command-line tools do: nothing beside a flag, `TEXT`,
`INTEGER`, `PATH`, `TIME` …, a repeatable option as `TEXT …` (give it again for each),
and arguments in the usage line as `PLAN_FILE` (required) or `[RUN]`.

This is applied once, when the CLI is built (:func:`install`), to typer's own parameter
classes; the versions it was written for are pinned in pyproject.toml (typer, rich), and
`tests/cli/test_help.py` pins the result.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["install", "type_label"]

_NAMES = {
    "str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "file": "PATH",
    "directory": "PATH", "datetime": "TIME", "bool": "", "int range": "INTEGER",
    "float range": "NUMBER",
}  # fmt: skip


def type_label(shown: str | None) -> str | None:
    """``<bool>`` → ``''``; ``<str>`` → ``TEXT``; ``<list[str]>`` → ``TEXT …``."""
    if shown is None:
        return None
    inner = shown[1:-1] if shown.startswith("<") and shown.endswith(">") else shown
    repeated = re.fullmatch(r"list\[(.+)\]", inner.strip())
    if repeated:
        base = type_label(f"<{repeated.group(1)}>") or "TEXT"
        return f"{base} …"
    if "|" in inner:  # a choice: its values, as they are typed
        return inner
    return _NAMES.get(inner.strip().lower(), inner.strip().upper())


def install() -> None:
    """Make typer's help name parameters as above (idempotent)."""
    from typer import core

    if getattr(core, "_dr_help_installed", False):
        return

    option_type = core.TyperOption.display_type_rich

    def option_display(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and not getattr(self, "count", False):
            return None  # a flag takes nothing: show nothing
        if self.metavar is not None:
            return str(self.metavar)
        return type_label(option_type(self, ctx))

    argument_type = core.TyperArgument.display_type_rich

    def argument_display(self: Any, ctx: Any) -> str | None:
        if self.metavar is not None:
            return str(self.metavar)
        return type_label(argument_type(self, ctx))

    def usage_name(self: Any) -> str:
        name = str(self.metavar or self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    core.TyperOption.display_type_rich = option_display  # type: ignore[method-assign]
    core.TyperArgument.display_type_rich = argument_display  # type: ignore[method-assign]
    core.TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
    core._dr_help_installed = True  # type: ignore[attr-defined]
