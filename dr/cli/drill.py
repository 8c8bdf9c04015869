"""`dr drill` commands: which drills are due, and what the drill history says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from dr.cli.common import console, emit_json, workspace

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
    from dr.drill import history
    from dr.drill.due import due_all
    from dr.drill.subjects import subjects
    from dr.model.load import workspace_inventory

    ws = workspace()
    when = parse_at(at) or datetime.now(UTC).replace(microsecond=0)
    verdicts = due_all(subjects(workspace_inventory(ws)), history.load(ws.root), when)
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
    console.print(table)


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
    console.print(table)
