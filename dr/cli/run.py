"""`dr run`: execute a saved plan, watch it, answer it, resume it after anything.

Exit codes of `start` and `resume`: 0 the run succeeded; 7 it failed or was aborted;
10 it waits for a person (a manual step, an approval, a paused step) — the message names
the step and the `dr run ack` command to run, then `dr run resume RUN` continues;
130 interrupted (Ctrl-C): the commands running were stopped, `dr run resume RUN` continues.
"""

from __future__ import annotations

import getpass
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dr.cli.common import (
    Placeholder,
    console,
    emit_json,
    err_console,
    print_table,
    suggest,
    workspace,
)

if TYPE_CHECKING:
    from engine.executor import StepSpec
    from engine.journal import Journal, RunInfo
    from engine.runner import Runner
    from engine.transports.base import Transport

app = typer.Typer(no_args_is_help=True)

EXIT_WAITING = 10
EXIT_FAILED = 7
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C stopped
DRY_RUN = "DRY RUN — nothing was sent"

_RUNBOOKS = typer.Option(
    None, "--runbooks", help="Extra step-library directory (repeatable); kept for resume."
)
_HOSTS = typer.Option(
    None,
    "--hosts",
    help="YAML mapping each host to its transport, e.g. `EX1: {kind: winrm, url: ...}`; "
    "`orchestrator` and `localhost` run locally. Kept with the run for resume.",
)
_BY = typer.Option(None, "--by", help="Who you are (default $DR_OPERATOR, else your login name).")
_UNSEALED = typer.Option(
    False,
    "--unsealed",
    help="Use a plan whose digest is blank, missing or does not match its content (refused "
    "otherwise). Recorded in the run's journal, with your name.",
)
_VERBOSE = typer.Option(
    False,
    "--verbose",
    "-v",
    help="Print each command as it is sent to its host, and what it printed (redacted).",
)
_LIMIT = typer.Option(
    None,
    "--limit",
    help="Run only the steps on this host (give it again for more): the others are recorded "
    "skipped. A step a destructive step needs still runs, wherever it is; the run says so.",
)
_START_AT = typer.Option(
    None,
    "--start-at",
    help="Leave out the steps numbered before STEP (recorded skipped: you say they were "
    "done). A step a destructive step needs still runs; the run lists what it leaves out.",
    metavar="STEP",
)
_JSON_RUN = typer.Option(
    False,
    "--json",
    help="Print a JSON summary at the end (run, state, every step); progress goes to stderr "
    "and nothing is asked (steps that need a person wait, exit 10).",
)


def operator_name(by: str | None) -> str:
    """The person acting: --by, else $DR_OPERATOR, else the OS login."""
    return by or os.environ.get("DR_OPERATOR") or getpass.getuser()


@app.command("start")
def start(
    plan_file: Path = typer.Argument(..., help="A plan saved by `dr plan ... -o FILE`."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Send nothing: record every command that would run, in order. Shown everywhere "
        "as DRY RUN — nothing was sent.",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Only check what the steps need (each host's transport and credential, each "
        "fetch step's staging folder, the repository and its key, every secret) and report "
        "it; exit 0 when all is there, 2 otherwise. Records and sends nothing.",
    ),
    non_interactive: bool = typer.Option(
        False,
        "--non-interactive",
        help="Never prompt: a step that needs a person stops the run (exit 10) until `dr run ack`.",
    ),
    parallel: int = typer.Option(4, "--parallel", "-j", min=1, help="Steps run at once."),
    two_person: bool = typer.Option(
        True,
        "--two-person/--no-two-person",
        help="Destructive steps need the approval of someone other than the starter. "
        "Turning it off is recorded in the journal, with your name.",
    ),
    by: str = _BY,
    runbooks: list[Path] = _RUNBOOKS,
    hosts: Path = _HOSTS,
    unsealed: bool = _UNSEALED,
    journal_sync: str = typer.Option(
        "full",
        "--journal-sync",
        help="full (default): each journal commit survives a power cut. normal: survives a "
        "crash or kill -9 of dr, but a power cut may lose the last commits; faster on slow "
        "disks. Kept with the run for resume.",
    ),
    as_json: bool = _JSON_RUN,
    verbose: bool = _VERBOSE,
    limit: list[str] = _LIMIT,
    start_at: str = _START_AT,
) -> None:
    """Start executing a plan; every transition is journalled before it happens.

    First, what the steps need is checked (as `--check` shows it); a real run refuses to
    begin while something is missing. Steps whose needs are done run in parallel within
    their resource locks. A failed attempt is printed at once with what its command said
    last, and whether it is retried. If dr stops for any reason (Ctrl-C included),
    `dr run resume RUN` continues without running a finished step again: a step that was
    running is stopped if it still runs, then re-checked.

    Example: dr run start plan.json --check && dr run start plan.json

    Example: dr run start plan.json -v
    """
    from engine.plan import load_plan, seal_problem
    from engine.runner import RunOptions, create_run

    if journal_sync not in ("full", "normal"):
        raise typer.BadParameter("full or normal", param_hint="--journal-sync")
    plan = load_plan(plan_file, allow_unsealed=unsealed)
    problem = seal_problem(plan)
    options = RunOptions(
        parallel=parallel,
        dry_run=dry_run,
        non_interactive=non_interactive,
        two_person=two_person,
        library_dirs=tuple(str(p.resolve()) for p in runbooks or []),
        hosts_file=str(hosts.resolve()) if hosts else None,
        journal_sync=journal_sync,
    )
    specs = _specs(plan, options.library_dirs)
    _selection_problem(plan, specs, limit, start_at)
    if check or not dry_run:
        _passphrase_for_steps(plan)
    to_run = _kept(plan, specs, limit, start_at)  # --limit / --start-at: only what will run
    if check:
        _check_only(plan_file, plan, to_run, options, as_json)
    if not dry_run:  # a dry run sends nothing, so it needs none of it
        _refuse_unless_ready(plan_file, plan, to_run, options)
    out = err_console if as_json else console
    with _journal() as journal:
        info = create_run(journal, plan, plan_file.resolve(), operator_name(by), options)
        if problem:
            _record_unsealed(journal, info.id, operator_name(by), f"{plan_file}: {problem}")
            err_console.print(f"[yellow]warning[/]: {plan_file}: {problem} (--unsealed, recorded)")
        out.print(f"run [bold]{info.id}[/] started by {info.started_by}", highlight=False)
        _select(journal, info, plan, specs, limit, start_at, operator_name(by), out)
        _execute(journal, info, specs, operator_name(by), as_json, verbose=verbose)


@app.command("resume")
def resume(
    run: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    by: str = _BY,
    unsealed: bool = _UNSEALED,
    as_json: bool = _JSON_RUN,
    non_interactive: bool = typer.Option(
        False,
        "--non-interactive",
        help="Never prompt, even if the run was started without it: a step that needs a "
        "person stops the run again (exit 10) until `dr run ack`.",
    ),
    verbose: bool = _VERBOSE,
    limit: list[str] = _LIMIT,
    start_at: str = _START_AT,
) -> None:
    """Continue a run from its journal, after a crash, a kill, a pause or an acknowledgement.

    A step that was running when dr stopped is first stopped if its command still runs (the
    process group dr recorded, or the WinRM shell), then re-checked with its idempotency
    check: already done → succeeded; not done → runs again; no check, or the host cannot be
    reached → paused for you to decide. Ctrl-C stops it again the same way (exit 130).

    Example: dr run resume 3f2a9c01
    """
    from engine.runner import RunOptions, run_plan

    with _journal() as journal:
        info = journal.run(run)
        options = RunOptions.from_dict(info.options)
        plan = run_plan(info)
        _check_run_seal(journal, info, plan, operator_name(by), unsealed)
        specs = _specs(plan, options.library_dirs)
        _selection_problem(plan, specs, limit, start_at)
        if not options.dry_run:
            _passphrase_for_steps(plan)
        out = err_console if as_json else console
        _select(journal, info, plan, specs, limit, start_at, operator_name(by), out)
        _execute(
            journal, info, specs, operator_name(by), as_json,
            prompt=not non_interactive, verbose=verbose,
        )  # fmt: skip


def _selection_problem(
    plan: Any, specs: dict[str, StepSpec], limit: list[str] | None, start_at: str | None
) -> None:
    from dr.errors import ParameterError
    from engine.plan import validate_dag
    from engine.selection import problem

    found = problem(specs, validate_dag(plan.steps), limit or (), start_at)
    if found is not None:
        raise ParameterError(found[0], hint=found[1])


def _kept(
    plan: Any, specs: dict[str, StepSpec], limit: list[str] | None, start_at: str | None
) -> dict[str, StepSpec]:
    """The steps --limit / --start-at keep: what the check before the start looks at."""
    from engine.plan import validate_dag
    from engine.selection import select

    if not limit and start_at is None:
        return specs
    left_out = select(specs, validate_dag(plan.steps), limit or (), start_at).skipped
    return {sid: spec for sid, spec in specs.items() if sid not in left_out}


def _select(
    journal: Journal,
    info: RunInfo,
    plan: Any,
    specs: dict[str, StepSpec],
    limit: list[str] | None,
    start_at: str | None,
    by: str,
    out: Any,
) -> None:
    """Record the steps --limit / --start-at leave out as skipped (only those not begun),
    and say which it leaves out and which preconditions of destructive steps still run."""
    from engine.journal import Entry
    from engine.plan import validate_dag
    from engine.selection import select

    if not limit and start_at is None:
        return
    states = journal.step_states(info.id)
    chosen = select(specs, validate_dag(plan.steps), limit or (), start_at)
    skipped = {s: why for s, why in chosen.skipped.items() if states.get(s, "pending") == "pending"}
    body = {"limit": list(limit or []), "start_at": start_at, "by": by, "skipped": sorted(skipped)}
    entries = [Entry("option", body)] + [
        Entry("step", {"state": "skipped", "attempt": 0, "host": specs[s].host,
                       "message": f"left out: {why} (by {by})"}, s)
        for s, why in skipped.items()
    ]  # fmt: skip
    journal.append(info.id, entries)
    for sid, why in skipped.items():
        out.print(f"left out: {sid} — {why}", highlight=False, markup=False)
    for sid, why in chosen.kept.items():
        out.print(f"still runs: {sid} — {why}", highlight=False, markup=False)


def _passphrase_for_steps(plan: Any) -> None:
    """Steps that declare the repository passphrase read it from $DR_PASSPHRASE: give it
    from --password-file / $DR_PASSWORD_FILE / $DR_PASSWORD_COMMAND when those hold it."""
    from dr.store.passphrase import PASSPHRASE_ENV, export_for_steps

    if any(ref.env == PASSPHRASE_ENV for step in plan.steps for ref in step.secrets):
        export_for_steps()


@app.command("status")
def status(
    run: str = typer.Argument(None, help="Run id (or prefix); without it, list the runs."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List runs, or show one run's steps: state, host, attempt, last message.

    A dry run reads DRY RUN — nothing was sent, its state `dry run: N/N recorded`.

    Example: dr run status 3f2a9c01 --json
    """
    with _journal() as journal:
        if run is None:
            rows = [_run_row(journal, info) for info in journal.runs()]
            emit_json(rows) if as_json else _print_runs(rows)
            return
        info = journal.run(run)
        data = {**_run_row(journal, info), "steps": _step_rows(journal, info)}
        emit_json(data) if as_json else _print_run(data)


@app.command("ack")
def ack_command(
    run: str = typer.Argument(..., help="Run id (or prefix)."),
    step: str = typer.Argument(..., help="The step that waits."),
    by: str = typer.Option(..., "--by", help="Your name: recorded as evidence."),
    note: str = typer.Option("", "--note", help="What you did or saw; why you approve."),
    decision: str = typer.Option(
        "done",
        "--decision",
        help="done (the manual step is done / approved), retry (run a paused step again), "
        "skip (go on without it).",
    ),
) -> None:
    """Record a person's answer for a waiting step: a manual step done, an approval given.

    Approval of a destructive step must come from someone other than the person who
    started the run (unless the run was started with --no-two-person).

    Example: dr run ack 3f2a9c01 fetch --by alice --decision retry --note "share mounted"
    """
    from engine.runner import Decision, ack

    if decision not in ("done", "retry", "skip"):
        raise typer.BadParameter("one of done, retry, skip", param_hint="--decision")
    with _journal() as journal:
        new = ack(journal, run, step, Decision(by=by, decision=decision, note=note))
        info = journal.run(run)
    resume = suggest("dr", "run", "resume", info.id)
    console.print(f"{step}: {new} (by {by}) — continue with: {resume}", highlight=False)


@app.command("abort")
def abort_command(
    run: str = typer.Argument(..., help="Run id (or prefix)."),
    by: str = _BY,
    note: str = typer.Option("", "--note", help="Why (recorded)."),
) -> None:
    """Stop a run for good: nothing new starts, and commands already running are stopped.

    The dr process executing the run stops its running commands (the local process group;
    WinRM's terminate signal and shell deletion) and records each. If no dr process runs it
    (it was killed), this command stops what the journal says was left running.

    Example: dr run abort 3f2a9c01 --by alice
    """
    from engine.runner import RunOptions, abort, stop_orphans

    with _journal() as journal:
        info = abort(journal, run, operator_name(by), note)
        options = RunOptions.from_dict(info.options)
        factory, _ = _transports(options)
        lines = stop_orphans(journal, info, factory, operator_name(by))
    console.print(f"run {info.id} aborted by {operator_name(by)}")
    for line in lines:
        console.print(f"  {line}", highlight=False, markup=False)


@app.command("log")
def log_command(
    run: str = typer.Argument(..., help="Run id (or prefix)."),
    step: str = typer.Argument(None, help="Step id (without it, --follow follows every step)."),
    follow: bool = typer.Option(
        False,
        "--follow",
        "-f",
        help="Print the run's journal as it grows, like `tail -f`: each step's transitions "
        "and, as each attempt ends, what it printed; stop when the run ends (succeeded, "
        "failed, aborted). Ctrl-C stops following, not the run.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Print what a step's attempts printed (secrets redacted), with sizes and SHA-256.

    Example: dr run log 3f2a9c01 fetch-artifacts.EX2016.SG1

    Example: dr run log 3f2a9c01 --follow
    """
    from engine.redact import Redactor

    if follow:
        from dr.cli.runfollow import follow_run

        with _journal() as journal:
            raise typer.Exit(follow_run(journal, run, step, as_json))
    if step is None:
        raise typer.BadParameter(
            "give the step whose output to print, or --follow", param_hint="STEP"
        )

    redactor = Redactor()
    with _journal() as journal:
        info = journal.run(run)
        outputs = journal.outputs(info.id, step)
    dry = bool(info.options.get("dry_run"))
    rows = [
        {
            "dry_run": dry,
            "attempt": o.attempt,
            "purpose": o.purpose,
            "stream": o.stream,
            "size": o.size,
            "cut": o.cut,
            "sha256": o.sha256,
            "text": redactor.text(o.data.decode("utf-8", errors="replace")),
        }
        for o in outputs
    ]
    if as_json:
        emit_json(rows)
        return
    if dry:
        console.print(
            f"[bold yellow]{DRY_RUN}[/]: run {info.id} recorded its commands; no host ran them"
        )
    if not rows:
        console.print(f"{step}: no output recorded")
    for row in rows:
        head = f"── attempt {row['attempt']} {row['purpose']} {row['stream']}"
        cut = f", {row['cut']} bytes cut" if row["cut"] else ""
        console.print(f"{head} ({row['size']} bytes{cut}, sha256 {row['sha256']})", style="dim")
        console.out(row["text"], highlight=False)


@app.command("verify")
def verify_command(
    run: str = typer.Argument(..., help="Run id (or prefix)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check a run's journal chain: every record's hash, the plan copy, the outputs.

    Example: dr run verify 3f2a9c01
    """
    with _journal() as journal:
        report = journal.verify_chain(run)
    if as_json:
        emit_json(
            {"run": report.run_id, "ok": report.ok, "records": report.records,
             "head": report.head, "problems": report.problems}
        )  # fmt: skip
    elif report.ok:
        console.print(f"run {report.run_id}: {report.records} records, chain intact")
        console.print(f"head {report.head}")
    else:
        for problem in report.problems:
            err_console.print(f"[red]run {report.run_id}: {problem}[/]", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


# -- helpers ------------------------------------------------------------------------------


def _findings(plan: Any, specs: dict[str, StepSpec], options: Any) -> list[Any]:
    from dr.cli.runcheck import context, preflight

    return preflight(plan, specs, context(_host_specs(options.hosts_file)))


def _check_only(
    plan_file: Path, plan: Any, specs: dict[str, StepSpec], options: Any, as_json: bool
) -> None:
    """`--check`: the report, and exit 0 (all there) or 2; nothing is recorded."""
    findings = _findings(plan, specs, options)
    ok = all(f.ok for f in findings)
    if as_json:
        emit_json({"plan": str(plan_file), "ok": ok, "findings": [f.to_dict() for f in findings]})
    else:
        _print_findings(console, plan_file, findings)
    raise typer.Exit(0 if ok else 2)


def _refuse_unless_ready(
    plan_file: Path, plan: Any, specs: dict[str, StepSpec], options: Any
) -> None:
    from dr.errors import PreflightError

    findings = _findings(plan, specs, options)
    missing = [f for f in findings if not f.ok]
    if not missing:
        return
    _print_findings(err_console, plan_file, findings)
    raise PreflightError(
        f"{plan_file}: not started: {len(missing)} of what its steps need "
        f"{'is' if len(missing) == 1 else 'are'} missing (above)",
        hint=f"fix them, then `{suggest('dr', 'run', 'start', str(plan_file), '--check')}`",
        details={"findings": [f.to_dict() for f in findings]},
    )


def _print_findings(out: Any, plan_file: Path, findings: list[Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    if not findings:
        out.print(f"{plan_file}: no step needs a host, a folder, the repository or a secret")
        return
    table = Table("check", "for", "", "detail", title=f"what {plan_file.name} needs")
    for f in findings:
        mark = Text("ok", style="green") if f.ok else Text("MISSING", style="bold red")
        detail = f.detail + (f" — {f.hint}" if f.hint and not f.ok else "")
        steps = f.steps if len(f.steps) <= 3 else (*f.steps[:3], f"+{len(f.steps) - 3}")
        subject = f"{f.subject}\n({', '.join(steps)})" if f.steps else f.subject
        table.add_row(f.check, Text(subject), mark, Text(detail))
    print_table(table, out, prose=True)
    missing = sum(1 for f in findings if not f.ok)
    out.print(f"{missing} missing" if missing else "everything the steps need is there")


def _record_unsealed(journal: Journal, run_id: str, by: str, problem: str) -> None:
    from engine.journal import Entry

    body = {"unsealed": True, "by": by, "note": f"used with --unsealed: {problem}"}
    journal.append(run_id, [Entry("option", body)])


def _check_run_seal(journal: Journal, info: RunInfo, plan: Any, by: str, unsealed: bool) -> None:
    """Resume only the plan the run was started with: its copy must match the run's digest."""
    from engine.errors import PlanFormatError
    from engine.plan import seal_problem

    problem = seal_problem(plan)
    if problem is None and plan.digest != info.plan_digest:
        problem = "the plan copy's digest is not the one the run was started with"
    if problem is None:
        return
    where = f"run {info.id}: its plan copy in the journal"
    if not unsealed:
        raise PlanFormatError(
            f"{where}: {problem}",
            hint=f"`{suggest('dr', 'run', 'verify', info.id)}` shows what changed; pass "
            "--unsealed to resume anyway "
            "(recorded in the journal)",
        )
    _record_unsealed(journal, info.id, by, f"{where}: {problem}")
    err_console.print(f"[yellow]warning[/]: {where}: {problem} (--unsealed, recorded)")


class _JournalContext:
    def __enter__(self) -> Journal:
        from engine.journal import Journal

        self.journal = Journal.open(workspace().journal_path)
        return self.journal

    def __exit__(self, *exc: object) -> None:
        self.journal.close()


def _journal() -> _JournalContext:
    return _JournalContext()


def _specs(plan: Any, library_dirs: tuple[str, ...]) -> dict[str, StepSpec]:
    from engine.executor import build_specs
    from engine.runbook import Library

    library = Library.load(extra_dirs=[Path(d) for d in library_dirs])
    return build_specs(plan, library)


def _execute(
    journal: Journal,
    info: RunInfo,
    specs: dict[str, StepSpec],
    by: str,
    as_json: bool = False,
    *,
    prompt: bool = True,
    verbose: bool = False,
) -> None:
    from dr.cli.runview import PlainReporter, PromptOperator, live_reporter
    from engine.runner import Runner, RunOptions

    options = RunOptions.from_dict(info.options)
    factory, recorder = _transports(options)
    if verbose:
        from dr.cli.runverbose import verbose_factory

        factory = verbose_factory(factory, err_console if as_json else console)
    interactive = prompt and not options.non_interactive and sys.stdin.isatty() and not as_json
    dry = options.dry_run
    if as_json:
        reporter: Any = PlainReporter(err_console, dry)
    elif console.is_terminal and not verbose:  # -v prints lines: no live table over them
        reporter = live_reporter(console, specs, dry)
    else:
        reporter = PlainReporter(console, dry)
    operator = PromptOperator(console, reporter) if interactive else None
    runner = Runner(journal, info, specs, factory, operator=operator, reporter=reporter, by=by)
    try:
        with _interrupt_stops(runner):
            state = runner.run()
    except KeyboardInterrupt:  # a second Ctrl-C while the first one stops the commands
        state = "interrupted"
    if state == "interrupted":
        err_console.print(interrupted_line(info.id), highlight=False, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if recorder is not None and not as_json:
        _print_dry_run(recorder)
    if as_json:
        emit_json(_summary(journal, info, state, recorder))
    from dr.evidence.hook import after_run

    after_run(workspace(), journal, info, state, err_console)  # record a finished run
    _finish(journal, info, state, by, quiet=as_json)


@contextmanager
def _interrupt_stops(runner: Runner) -> Iterator[None]:
    """While the run executes, Ctrl-C (SIGINT) asks the runner to stop instead of raising
    wherever the main thread is (a journal commit half done): the runner stops the commands
    it runs and returns. A second Ctrl-C raises as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        runner.interrupt()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted_line(run_id: str) -> str:
    """The one line Ctrl-C leaves: the run is stopped, and how to continue it."""
    resume = suggest("dr", "run", "resume", run_id)
    return f"interrupted: run {run_id} stopped; continue with: {resume}"


def _summary(journal: Journal, info: RunInfo, state: str, recorder: Any) -> dict[str, Any]:
    """What `--json` prints when the run stops: the run, its state, each step."""
    data = {**_run_row(journal, info), "state": state, "steps": _step_rows(journal, info)}
    data["exit_code"] = {"succeeded": 0, "waiting": EXIT_WAITING}.get(state, EXIT_FAILED)
    if recorder is not None:
        data["dry_run_commands"] = [
            {"host": c.host, "op": c.op, "script": _redact(c.script)} for c in recorder.calls
        ]
    return data


def _redact(text: str) -> str:
    from engine.redact import Redactor

    return Redactor().text(text)


def _transports(options: Any) -> tuple[Any, Any]:
    """A host → transport factory for the run; for --dry-run, the shared recorder too."""
    if options.dry_run:
        from engine.transports.dryrun import DryRunTransport, Recorder

        recorder = Recorder()
        return (lambda host: DryRunTransport(host, recorder)), recorder
    from dr.cli.runcheck import LOCAL_HOSTS

    specs = _host_specs(options.hosts_file)

    def factory(host: str) -> Transport:
        spec = specs.get(host) or ({"kind": "local"} if host in LOCAL_HOSTS else None)
        if spec is None:
            from engine.errors import TransportConfigError

            raise TransportConfigError(
                f"no transport for host {host!r}",
                hint="map it under `hosts:` in the workspace config.yaml, or in the --hosts file "
                "the run was started with",
            )
        # the table's `host:` (an address or FQDN) wins over the plan's host name
        return _open_transport({"host": host, **spec})

    return factory, None


def _host_specs(hosts_file: str | None) -> dict[str, dict[str, Any]]:
    cfg = workspace().config().get("hosts") or {}
    if hosts_file is None:
        return dict(cfg)
    from dr.errors import InputError
    from engine.yamlpos import YamlSyntaxError, load_located

    try:
        data = load_located(Path(hosts_file).read_text(encoding="utf-8")).data or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{hosts_file}: cannot read the hosts file ({exc})") from exc
    except YamlSyntaxError as exc:
        where = f"{hosts_file}:{exc.line}:{exc.column}" if exc.line else hosts_file
        raise InputError(f"{where}: {exc.message}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(f"{hosts_file}: expected a mapping of host name to transport spec")
    return {**cfg, **data}


def _open_transport(spec: dict[str, Any]) -> Transport:
    try:
        from engine.transports import open_transport  # type: ignore[attr-defined]
    except ImportError:
        open_transport = None
    if open_transport is not None:
        return open_transport(spec)  # type: ignore[no-any-return]
    if spec.get("kind") == "local":
        from engine.transports.local import LocalTransport

        return LocalTransport()
    from engine.errors import TransportError

    raise TransportError(f"transport kind {spec.get('kind')!r} is not available")


def _print_dry_run(recorder: Any) -> None:
    from engine.redact import Redactor

    redactor = Redactor()
    console.print(f"[bold]dry run[/]: {len(recorder.calls)} commands would be sent, in order")
    for i, call in enumerate(recorder.calls, 1):
        first = redactor.text(call.script).strip().splitlines() or [""]
        more = " …" if len(first) > 1 else ""
        line = f"{i:4d}  {call.host:<14} {first[0]}{more}"
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _finish(journal: Journal, info: RunInfo, state: str, by: str, quiet: bool = False) -> None:
    if state == "succeeded" and info.options.get("dry_run"):
        done = f"every step recorded, nothing restored ({DRY_RUN})"
        (err_console if quiet else console).print(f"run {info.id}: {done}", highlight=False)
        return
    skipped = sum(1 for s in journal.step_states(info.id).values() if s == "skipped")
    if state == "succeeded" and skipped:
        status = suggest("dr", "run", "status", info.id)
        (err_console if quiet else console).print(
            f"run {info.id} [yellow]succeeded with {skipped} step(s) left out or skipped[/]: "
            f"not a whole restore — `{status}` says which and why",
            highlight=False,
        )
        return
    if state == "succeeded":
        (err_console if quiet else console).print(f"run {info.id} [green]succeeded[/]")
        return
    if state == "waiting":
        for line in waiting_lines(journal, info, by):
            err_console.print(line, highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_WAITING)
    details = suggest("dr", "run", "status", info.id)
    err_console.print(f"[red]run {info.id} {state}[/] — `{details}` for details", highlight=False)
    raise typer.Exit(EXIT_FAILED)


def waiting_lines(journal: Journal, info: RunInfo, by: str) -> list[str]:
    """What the operator must do next, one command per step that waits, each ready to paste:
    ``by`` answers for the step, unless a second person must (then NAME is theirs)."""
    lines = [f"run {info.id} is waiting for a person:"]
    for sid, rec in journal.last_step_records(info.id).items():
        if rec.body["state"] not in ("waiting", "paused"):
            continue
        who = Placeholder("NAME") if rec.body.get("second_person") else by
        ack = ["dr", "run", "ack", info.id, sid, "--by", who]
        lines.append(f"  {sid} ({rec.body['state']}): {rec.body.get('message', '')}")
        if rec.body["state"] == "paused":
            lines.append(f"    retry it once fixed: {suggest(*ack, '--decision', 'retry')}")
            lines.append("    (or --decision done if you did it by hand, skip to go on without it)")
        else:
            other = f" (someone other than {info.started_by})" if who != by else ""
            lines.append(f"    when done{other}: {suggest(*ack)}")
    lines.append(f"then: {suggest('dr', 'run', 'resume', info.id)}")
    return lines


def _run_row(journal: Journal, info: RunInfo) -> dict[str, Any]:
    from dr.cli.runtimes import run_times

    states = journal.step_states(info.id)
    total = len(_plan_steps(info))
    done = sum(1 for s in states.values() if s in ("succeeded", "skipped", "acked"))
    skipped = sum(1 for s in states.values() if s == "skipped")
    return {
        "id": info.id,
        "state": journal.run_state(info.id),
        "started_by": info.started_by,
        "created": info.created,
        "plan": info.plan_path,
        "plan_digest": info.plan_digest,
        "steps_done": done,
        "steps_total": total,
        "steps_skipped": skipped,
        "dry_run": bool(info.options.get("dry_run")),
        **run_times(journal.records(info.id, kinds=["run"])),
    }


def _plan_steps(info: RunInfo) -> list[dict[str, Any]]:
    import json

    return list(json.loads(info.plan_json)["steps"])


def _step_rows(journal: Journal, info: RunInfo) -> list[dict[str, Any]]:
    from dr.cli.runtimes import step_times

    last = journal.last_step_records(info.id)
    times = step_times(journal.records(info.id, kinds=["step"]))
    none = {"started": None, "ended": None, "duration_seconds": None}
    rows = []
    for step in _plan_steps(info):
        rec = last.get(step["id"])
        body = rec.body if rec else {}
        rows.append(
            {
                "id": step["id"],
                "kind": step["kind"],
                "host": step["host"],
                "state": body.get("state", "pending"),
                "attempt": body.get("attempt", 0),
                "message": body.get("message", ""),
                "at": rec.at if rec else None,
                **times.get(step["id"], none),
            }
        )
    return rows


def _print_runs(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from dr.cli.runtimes import shown
    from engine.units import duration

    if not rows:
        console.print("no runs yet — `dr run start PLAN`")
        return
    table = Table()
    table.add_column("run", no_wrap=True)
    table.add_column("state", no_wrap=True)  # "dry run: 16/16 recorded" stays one phrase
    for name in ("steps", "started by", "created", "took", "plan"):
        table.add_column(name)
    for r in rows:
        steps = f"{r['steps_done']}/{r['steps_total']}"
        state, steps = (dry_run_state(r), "") if r["dry_run"] else (_state_shown(r), steps)
        took = duration(r["duration_seconds"], "—")
        table.add_row(r["id"], state, steps, r["started_by"], shown(r["created"]), took, r["plan"])
    print_table(table)


def _state_shown(row: dict[str, Any]) -> str:
    """A run's state; one that succeeded with steps left out (``--limit``, ``--start-at``,
    a person's skip) says so, so that it is not read as a whole restore."""
    skipped = row.get("steps_skipped", 0)
    if row["state"] == "succeeded" and skipped:
        return f"succeeded, {skipped} skipped"
    return str(row["state"])


def dry_run_state(row: dict[str, Any]) -> str:
    """A dry run's state, worded so that it cannot be read as a restore: steps "recorded"
    (their commands written down), never "succeeded"."""
    recorded = f"dry run: {row['steps_done']}/{row['steps_total']} recorded"
    return recorded if row["state"] == "succeeded" else f"{recorded}, {row['state']}"


def _print_run(data: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from dr.cli.runtimes import shown
    from engine.units import duration

    dry = bool(data["dry_run"])
    if dry:
        console.print(f"[bold yellow]{DRY_RUN}[/]", highlight=False)
        state = dry_run_state(data)
    else:
        state = f"{_state_shown(data)} — {data['steps_done']}/{data['steps_total']} steps done"
    console.print(
        f"run [bold]{data['id']}[/] {state}; started by {data['started_by']}; plan {data['plan']}",
        highlight=False,
    )
    took = duration(data["duration_seconds"], "—")
    console.print(
        f"started {shown(data['started'])}, ended {shown(data['ended'])}, took {took}",
        highlight=False,
    )
    table = Table("step", "state", "host", "attempt", "ended", "took", "message")
    for s in data["steps"]:
        attempt = str(s["attempt"] or "")
        step_state = "recorded" if dry and s["state"] == "succeeded" else s["state"]
        ended, took = shown(s["ended"]), duration(s["duration_seconds"], "—")
        table.add_row(s["id"], step_state, s["host"], attempt, ended, took, Text(s["message"]))
    print_table(table)
