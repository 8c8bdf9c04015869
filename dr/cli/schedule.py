"""`dr schedule` commands: which backups are due."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dr.cli.common import console, emit_json, workspace

if TYPE_CHECKING:
    from dr.model.sets import BackupSet
    from dr.schedule import LastRuns, ScheduleStatus

app = typer.Typer(no_args_is_help=True)


@app.command()
def due(
    at: str = typer.Option(
        None,
        "--at",
        help="The time to check, ISO 8601 (2024-05-01T22:00Z); without an offset, UTC (as in "
        "every command). Default: now. The schedules themselves run on the inventory's "
        "timezone clock.",
    ),
    show_all: bool = typer.Option(
        False, "--all", help="Also list schedules that are not due, with their next time."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (all schedules)."),
) -> None:
    """List the backups due now (or at --at), for every backup set: those the workspace
    inventory declares and those added with `dr set add`.

    Daily and weekly schedules are due when their latest slot has no successful run of that
    backup type since; `every N minutes` schedules when none ended in the last N minutes.
    Last runs come from the workspace catalog (successful and warning runs). Schedule times
    are on the inventory's `timezone` clock (UTC when it declares none, or without one).
    """
    from dr.cli.catalog import optional_inventory
    from dr.cli.common import parse_instant
    from dr.schedule import schedule_statuses

    ws = workspace()
    inv = optional_inventory(ws)
    timezone = inv.timezone if inv is not None else "UTC"
    when = parse_instant(at) or datetime.now(UTC)
    sets, last = sets_and_last_runs(ws.catalog_path, inv.backup_sets if inv else [], when)
    statuses = schedule_statuses(sets, last, when, timezone)
    if as_json:
        emit_json(
            {
                "at": when.isoformat(),
                "timezone": timezone,
                "due": [s.to_dict() for s in statuses if s.due],
                "schedules": [s.to_dict() for s in statuses],
            }
        )
        return
    _print(statuses, when, timezone, show_all)


def sets_and_last_runs(
    catalog_path: Path, declared: list[BackupSet], until: datetime
) -> tuple[list[BackupSet], LastRuns]:
    """The sets to schedule (declared, then registered by `dr set add`) and the newest
    successful run by ``until`` each schedule is compared with. Read only: the catalog is
    not synced with the inventory here (an empty catalog, or none, has no runs)."""
    if not catalog_path.is_file():
        return list(declared), {}
    from dr.catalog import Catalog
    from dr.schedule import last_runs_for_schedules, scheduled_sets

    with Catalog.open(catalog_path) as catalog:
        sets = scheduled_sets(declared, [r.definition for r in catalog.sets()])
        ended = catalog.last_ended(until)
    return sets, last_runs_for_schedules(sets, ended)


def _local(value: datetime, timezone: str) -> str:
    from zoneinfo import ZoneInfo

    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _print(statuses: list[ScheduleStatus], when: datetime, timezone: str, show_all: bool) -> None:
    from rich.table import Table

    shown = statuses if show_all else [s for s in statuses if s.due]
    count = sum(s.due for s in statuses)
    console.print(
        f"{count} of {len(statuses)} schedules due at {_local(when, timezone)} ({timezone})",
        highlight=False,
    )
    if not shown:
        return
    table = Table("set", "host", "type", "schedule", "last run", "due", "since / next")
    for s in shown:
        last = _local(s.last_run, timezone) if s.last_run else "never"
        flag = "[bold red]due[/]" if s.due else ""
        table.add_row(
            s.set_name,
            s.host,
            s.backup_type,
            s.description,
            last,
            flag,
            _local(s.next_due, timezone),
        )
    console.print(table)
