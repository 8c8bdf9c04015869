"""`dr drill` commands: which drills are due, and what the drill history says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from dr.cli.common import console, emit_json, err_console, print_table, workspace
from engine.units import duration

app = typer.Typer(no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Machine-readable output.")
AT_OPT = typer.Option(
    None,
    "--at",
    help="Judge as of this time, ISO 8601 (UTC unless an offset is given); default: now.",
)


@app.command()
def due(at: str | None = AT_OPT, as_json: bool = JSON_OPT) -> None:
    """Which databases and scenario drills are due, overdue, and when each is next.

    Every database must pass a restore drill at least once per period (the inventory's
    `drills:` policy; six months by default). Each database has its own place in the
    period, so drills spread out instead of falling due together; a database never
    drilled is due and overdue. Exit 0 whatever is due (read the output or --json).

    Example: dr drill due --at 2026-12-01T00:00Z --json
    """
    from dr.cli.plan import parse_at

    ws = workspace()
    when = parse_at(at) or datetime.now(UTC).replace(microsecond=0)
    verdicts = _verdicts(ws, when)
    rows = [_due_row(v) for v in verdicts]
    if as_json:
        emit_json({"at": when.isoformat(), "drills": rows})
        return
    from rich.table import Table

    table = Table(title=f"Drills as of {when:%Y-%m-%d %H:%M}Z", show_lines=False)
    for column in ("what", "state", "last passed", "next", "why"):
        table.add_column(column, overflow="fold")
    for row in rows:
        state = "OVERDUE" if row["overdue"] else ("due" if row["due"] else "-")
        last = row["last_success"][:10] if row["last_success"] else "never"
        table.add_row(row["key"], state, last, row["next_date"][:10], row["why"])
    print_table(table)


def _due_row(v: Any) -> dict[str, Any]:
    return {
        "kind": v.kind,
        "key": v.key,
        "due": v.due,
        "overdue": v.overdue,
        "last_success": v.last_success.isoformat() if v.last_success else None,
        "next_date": v.next_date.isoformat(),
        "deadline": v.deadline.isoformat() if v.deadline else None,
        "why": v.why,
        "changed_since_last_test": v.changed_since_last_test,
    }


@app.command("run")
def run(
    db: str = typer.Argument(None, help="The database to drill: SERVER/SG/DB, SG/DB or DB."),
    due_only: bool = typer.Option(
        False, "--due", help="Drill every database that is due now (see `dr drill due`)."
    ),
    scenario: str = typer.Option(
        None,
        "--scenario",
        help="Rehearse a whole failure in the built-in lab instead: store-failure, "
        "server-loss or directory-loss (the lab breaks it, the incident plan restores it).",
    ),
    target: str = typer.Option(
        None,
        "--target",
        help="With --scenario: the database (store-failure), server (server-loss) or domain "
        "(directory-loss) to break; default: the policy's, else the first one.",
    ),
    forest: str = typer.Option(
        None, "--forest", help="Recovery forest to restore into (default: the policy's)."
    ),
    at: str = typer.Option(
        None,
        "--at",
        help="Restore to this point, ISO 8601 (UTC unless an offset is given); default: the "
        "latest point the backups reach.",
    ),
    into: str = typer.Option(
        None,
        "--into",
        help="forest or rdb (2010+: a recovery database); default: the inventory's policy.",
    ),
    keep: bool = typer.Option(
        False,
        "--keep",
        help="Hold the clean-up: the restored copy stays for inspection until "
        "`dr run ack RUN STEP`, then `dr run resume RUN` removes it.",
    ),
    by: str = typer.Option(
        None, "--by", help="Who runs the drill (default $DR_OPERATOR, else your login name)."
    ),
    non_interactive: bool = typer.Option(
        False,
        "--non-interactive",
        help="Never ask: a step that needs a person fails the drill (always so without a "
        "terminal, and with --json).",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Run a restore drill: plan, restore into the recovery forest, verify, clean up, record.

    The drill restores the database from its backups onto the recovery forest's server, then
    checks what was restored on that server: the database header (Clean Shutdown), the mount,
    every mailbox's item count against the counts the backup recorded, and a sample of
    mailboxes (seeded, recorded). On the built-in lab the restored database is also compared,
    message by message, with the lab's ground truth before it is removed. The verdict is
    appended to the drill history and the run's evidence is signed (`dr evidence keygen`
    first). A failed drill is recorded too, with what failed. At a terminal, a step that
    needs a person (Exchange 2000/2003's NTBackup restore, a paused check) is asked about as
    `dr run start` asks; with --non-interactive, without a terminal or with --json it fails
    the drill (exit 7), and its run is aborted and left for inspection.

    With --scenario the drill rehearses a whole failure instead, in the built-in lab only
    (it breaks what it drills): store-failure damages a database, and the point-of-failure
    restore from the catalog and the logs left on the server must bring back every message;
    server-loss takes the server away, and the rebuild (people for the hardware, the account,
    Windows and the certificates, asked at the terminal) must bring back every database;
    directory-loss makes a domain controller's directory unusable, and the restore in DSRM
    (typed at its console by a person) must bring back the directory its partners hold. Each
    is compared with the lab's ground truth and recorded, with who acknowledged what.

    Exit 0 every drill passed, 7 one failed, 10 held for inspection (--keep).

    Example: dr drill run EX2016/DB02/DB02 --json

    Example (in a lab workspace): dr drill run --scenario store-failure --target DB01
    """
    from dr.cli.run import operator_name
    from dr.drill.run import run_database_drill
    from dr.errors import ParameterError

    if into not in (None, "forest", "rdb"):
        raise typer.BadParameter("forest or rdb", param_hint="--into")
    if sum(map(bool, (db, due_only, scenario))) != 1:
        raise ParameterError(
            "name one database, or pass --due or --scenario NAME", hint="dr drill run DB02"
        )
    if target and not scenario:
        raise ParameterError("--target goes with --scenario", hint="dr drill run DB02")
    ws = workspace()
    if scenario:
        _scenario(ws, scenario, target, operator_name(by), non_interactive, as_json)
        return
    keys = [db] if db else [v.key for v in _due(ws) if v.kind == "database"]
    if not keys:
        if as_json:
            emit_json({"drills": []})
        else:
            console.print("no database drill is due")
        return
    out = err_console if as_json else console
    when = None
    if at:
        from dr.cli.plan import parse_at

        when = parse_at(at)
    import sys

    reporter = _reporter(out)
    person = None
    if not (non_interactive or as_json) and sys.stdin.isatty():
        from dr.cli.runview import PromptOperator

        person = PromptOperator(console, reporter)
    records = []
    for key in keys:
        outcome = run_database_drill(
            ws, key, by=operator_name(by), forest=forest, at=when, keep=keep, into=into,
            reporter=reporter, operator=person,
            say=lambda line: out.print(line, highlight=False, markup=False),
        )  # fmt: skip
        records.append(outcome.record)
    if as_json:
        emit_json({"drills": [r.model_dump(mode="json") for r in records]})
    else:
        _print_records(records)
    if any(r.verdict != "passed" for r in records):
        raise typer.Exit(7)
    if keep:
        raise typer.Exit(10)


def _scenario(ws: Any, name: str, target: str | None, by: str, non_interactive: bool,
              as_json: bool) -> None:  # fmt: skip
    import sys

    from dr.drill.scenario import run_scenario_drill

    out = err_console if as_json else console
    reporter = _reporter(out)
    person = None
    if not (non_interactive or as_json) and sys.stdin.isatty():
        from dr.cli.runview import PromptOperator

        person = PromptOperator(console, reporter)
    outcome = run_scenario_drill(
        ws, name, by=by, target=target, reporter=reporter, operator=person,
        say=lambda line: out.print(line, highlight=False, markup=False),
    )  # fmt: skip
    if as_json:
        emit_json({"drills": [outcome.record.model_dump(mode="json")]})
    else:
        _print_records([outcome.record])
    if outcome.record.verdict != "passed":
        raise typer.Exit(7)


@app.command("tick")
def tick(
    limit: int = typer.Option(
        0, "--max", min=0, help="Run at most this many drills this time (0: every one due)."
    ),
    by: str = typer.Option(
        None, "--by", help="Who the drills run as (default $DR_OPERATOR, else the login name)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Run the database drills that are due, one after another: for cron or a systemd timer.

    Takes the workspace's drill lock first: a second tick while one runs exits at once
    (exit 75) and says which process holds it — overlapping timers never run two drills
    at once. Overdue drills go first. Scenario drills that are due are listed, not run
    (plan them with `dr plan server|forest|site`). docs/drills.md has the cron line and the
    systemd timer unit.

    Exit 0 nothing due or every drill passed, 7 a drill failed, 75 another tick is running.

    Example: dr drill tick --max 2 --json
    """
    from dr.cli.run import operator_name
    from dr.drill.run import run_database_drill
    from dr.drill.tick import tick_lock

    ws = workspace()
    out = err_console if as_json else console
    with tick_lock(ws.root):
        due_now = _due(ws)
        databases = [v.key for v in due_now if v.kind == "database"]
        scenarios = [v.key for v in due_now if v.kind == "scenario"]
        chosen = databases[:limit] if limit else databases
        records = []
        for key in chosen:
            outcome = run_database_drill(
                ws, key, by=operator_name(by),
                say=lambda line: out.print(line, highlight=False, markup=False),
            )  # fmt: skip
            records.append(outcome.record)
    left = databases[len(chosen) :]
    if as_json:
        emit_json({"drills": [r.model_dump(mode="json") for r in records],
                   "left_for_later": left, "scenarios_due": scenarios})  # fmt: skip
    else:
        if records:
            _print_records(records)
        else:
            console.print("no database drill is due")
        if left:
            console.print(f"{len(left)} more due, left for the next tick (--max {limit})")
        for name in scenarios:
            console.print(
                f"scenario drill {name} is due: it needs people at the console; run "
                f"`dr drill run --scenario {name}` in the lab"
            )
    if any(r.verdict != "passed" for r in records):
        raise typer.Exit(7)


def _verdicts(ws: Any, when: datetime) -> list[Any]:
    """Every subject's verdict at ``when``, drift included (today's estate and library)."""
    from dr.drill import history
    from dr.drill.subjects import verdicts
    from dr.model.load import workspace_inventory
    from engine.runbook import Library

    return verdicts(workspace_inventory(ws), history.load(ws.root), Library.load(), when)[1]


def _due(ws: Any) -> list[Any]:
    return [v for v in _verdicts(ws, datetime.now(UTC).replace(microsecond=0)) if v.due]


def _reporter(out: Any) -> Any:
    from dr.cli.runview import PlainReporter

    return PlainReporter(out)


def _print_records(records: list[Any]) -> None:
    from rich.table import Table

    table = Table(title="Drills run")
    for column in ("drill", "database / scenario", "verdict", "RTO", "checks", "evidence"):
        table.add_column(column, overflow="fold")
    for r in records:
        checks = f"{sum(c.passed for c in r.checks)}/{len(r.checks)} passed"
        rto = duration(r.rto_seconds, "-")
        verdict = r.verdict.upper()
        table.add_row(r.drill_id, r.database or r.scenario or "-", verdict, rto, checks,
                      r.evidence_record_id or "-")  # fmt: skip
    print_table(table)
    for r in records:
        for c in r.checks:
            if not c.passed:
                console.print(f"  {r.drill_id}: {c.name}: {c.detail}", highlight=False,
                              markup=False)  # fmt: skip


@app.command("history")
def history_(as_json: bool = JSON_OPT) -> None:
    """Every drill recorded in this workspace, oldest first, with its verdict.

    The signed evidence record of each drill (`dr evidence verify`) is the authority;
    this is its index.

    Example: dr drill history --json
    """
    from dr.drill import history

    records = history.load(workspace().root)
    if as_json:
        emit_json({"drills": [r.model_dump(mode="json") for r in records]})
        return
    if not records:
        console.print("no drill recorded in this workspace yet")
        return
    from rich.table import Table

    table = Table(title="Drill history")
    for column in ("drill", "what", "into", "ended", "verdict", "evidence"):
        table.add_column(column, overflow="fold")
    for r in records:
        what = r.database or r.scenario or "-"
        verdict = r.verdict.upper() + (f": {r.failure}" if r.failure else "")
        table.add_row(r.drill_id, what, r.target, f"{r.ended_at:%Y-%m-%d %H:%M}Z", verdict,
                      r.evidence_record_id or "-")  # fmt: skip
    print_table(table)
