"""The ``dr`` command line: ``dr <noun> <verb>``; ``--json`` on read commands.

Exit codes: 0 success; 1 internal error; 2 bad input; 3 not recoverable as asked;
4 refused by an Exchange backup rule; 5 workspace / catalog; 6 artifact repository;
7 run; 8 engine; 9 transport (host unreachable, authentication, timeout).
See docs/cli.md.
"""

from __future__ import annotations

import importlib
import sys

import typer

from dr import __version__
from dr.cli.common import STATE, err_console

app = typer.Typer(
    name="dr",
    help=(
        "Restore and disaster-recovery orchestrator for Windows / Exchange estates.\n\n"
        "Start with `dr demo` to see the whole path on the built-in lab, or:\n\n"
        "  dr init --inventory estate.yaml   create a workspace (.dr/) for an estate\n\n"
        "  dr catalog import history.json    record backups taken by other tools\n\n"
        "  dr catalog list                   what can be restored, version by version"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)

# (module under dr.cli, command name, help). Each module defines `app` (a Typer group)
# or `command` (a single function registered under the name).
_GROUPS: list[tuple[str, str, str]] = [
    ("inventory", "inventory", "The estate: validate and show the inventory file."),
    ("sets", "set", "Backup sets: what each host backs up, when, and how."),
    ("schedule", "schedule", "Schedules: which backups are due."),
    ("catalog", "catalog", "The catalog of backup runs and artifacts: import and list."),
    ("retention", "retention", "Retention: which versions a policy expires, and why others stay."),
    ("graph", "graph", "The artifact dependency graph: show it, find its gaps."),
    ("plan", "plan", "Restore plans, one command per scenario (message ... site)."),
    ("runbook", "runbook", "Runbook documents rendered from a saved plan."),
    ("run", "run", "Execute a plan: start, status, resume, ack, abort, log."),
    ("store", "store", "The artifact repository: deduplicated, compressed, encrypted."),
    ("backup", "backup", "Take backups: drive a set's backup on its host, store, record."),
    ("drill", "drill", "Restore drills: which are due, run them, and the history of verdicts."),
    ("report", "report", "Reports for auditors: drill coverage, RTO and RPO, evidence status."),
    ("evidence", "evidence", "Signed evidence of runs: record, show, export, verify offline."),
    ("exchange", "exchange", "ESE files read directly: database, log and checkpoint headers."),
    ("lab", "lab", "The built-in lab: servers that answer like real ones, and the ground truth."),
]
_COMMANDS: list[tuple[str, str]] = [
    ("init", "init"),
    ("demo", "demo"),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    workspace: str = typer.Option(
        None,
        "--workspace",
        "-w",
        envvar="DR_WORKSPACE",
        help="Workspace directory (default ./.dr).",
        show_envvar=True,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    STATE.workspace = workspace


def _register() -> None:
    for module, name, help_text in _GROUPS:
        mod = importlib.import_module(f"dr.cli.{module}")
        app.add_typer(mod.app, name=name, help=help_text)
    importlib.import_module("dr.cli.store_fetch")  # adds fetch / check-chain to `dr store`
    for module, name in _COMMANDS:
        mod = importlib.import_module(f"dr.cli.{module}")
        app.command(name=name)(mod.command)


_register()


def _print_error(lines: list[str]) -> None:
    for line in lines:
        err_console.print(f"[bold red]error[/] {line}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; turn dr and engine errors into one line and an exit code."""
    from dr.errors import DrError
    from engine.errors import EngineError

    try:
        app(args=argv, prog_name="dr")
    except (DrError, EngineError) as exc:
        _print_error(exc.lines())
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
