"""The ``dr`` command line: ``dr <noun> <verb>``; ``--json`` on read commands.

Exit codes: 0 success; 1 internal error; 2 bad input; 3 not recoverable as asked;
4 refused by an Exchange backup rule; 5 workspace / catalog; 6 artifact repository;
7 run; 8 engine; 9 transport (host unreachable, authentication, timeout).
See docs/cli.md.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from dr import __version__
from dr.cli.common import STATE, emit_json, err_console, error_document, error_of
from dr.cli.helptext import install as _install_help

_install_help()

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
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
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
    ("info", "info"),
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
    password_file: Path = typer.Option(
        None,
        "--password-file",
        help="Read the repository passphrase from the first line of this file (before "
        "$DR_PASSPHRASE, $DR_PASSWORD_FILE, $DR_PASSWORD_COMMAND and the prompt).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    from dr.store.passphrase import use_password_file

    STATE.workspace = workspace
    use_password_file(password_file)


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


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON (``--json`` before any ``--``)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def _fail(document: dict[str, Any], exit_code: int) -> NoReturn:
    """Under --json, the failure as one JSON document on stdout (unless the command printed
    its document already); then exit. The text on stderr has been printed before."""
    if STATE.json and not STATE.json_emitted:
        emit_json(document)
    sys.exit(exit_code)


def _usage_error(exc: Any) -> NoReturn:
    """A command line click refused (unknown option, missing argument, bad value): shown as
    typer shows it, exit 2; under --json also as an E2300 document."""
    from typer import rich_utils

    rich_utils.rich_format_error(exc)
    ctx = getattr(exc, "ctx", None)
    hint = f"see `{ctx.command_path} --help`" if ctx is not None else "see `dr --help`"
    document = error_document(
        "E2300", exc.format_message(), exit_code=exc.exit_code, hint=hint, name="UsageError"
    )
    _fail(document, exc.exit_code)


def _click_exception() -> type[Exception]:
    """Recent typer vendors click (``typer._click``); older releases depend on click."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - typer < 0.20
        from click.exceptions import ClickException  # type: ignore[no-redef]
    return ClickException


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; turn dr and engine errors into one line and an exit code.

    Every failure goes through here, so ``--json`` reads the same for every command: the
    line on stderr, and one ``{"error": {...}}`` document on stdout (docs/cli.md)."""
    from dr.errors import DrError
    from engine.errors import EngineError

    args = list(sys.argv[1:] if argv is None else argv)
    STATE.json, STATE.json_emitted = wants_json(args), False
    try:
        returned = app(args=args, prog_name="dr", standalone_mode=False)
    except (DrError, EngineError) as exc:
        _print_error(exc.lines())
        _fail(error_of(exc), exc.exit_code)
    except _click_exception() as exc:
        _usage_error(exc)
    except typer.Abort:
        message = "aborted: the input ended before an answer was given"
        err_console.print(message)
        _fail(error_document("E1000", message, exit_code=1, name="Aborted"), 1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if STATE.json and not STATE.json_emitted:
            message = f"internal error: {type(exc).__name__}: {exc}"
            hint = "a bug: please report it with the command line"
            emit_json(error_document("E1000", message, exit_code=1, hint=hint, name="Bug"))
        raise
    sys.exit(returned if isinstance(returned, int) else 0)
