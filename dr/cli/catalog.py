"""`dr catalog` commands: import backup runs, list what is stored."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dr.cli.common import console, emit_json, workspace

if TYPE_CHECKING:
    from dr.catalog.listing import ListingRow
    from dr.model.inventory import Inventory
    from dr.workspace import Workspace

app = typer.Typer(
    no_args_is_help=True,
    help="The catalog of backup runs and artifacts: import and list.",
)


def optional_inventory(ws: Workspace) -> Inventory | None:
    """The workspace's inventory if one is recorded (its sets are registered from it)."""
    if ws.inventory_path() is None:
        return None
    from dr.model.load import workspace_inventory

    return workspace_inventory(ws)


PROGRESS_FROM = 4 << 20  # a manifest this large shows a progress bar (on a terminal)


@app.command("import")
def import_(
    file: Path = typer.Argument(
        ..., help="A JSON or CSV manifest, or `wbadmin get versions` text."
    ),
    fmt: str = typer.Option(
        None, "--format", "-f", help="json, csv or wbadmin (default: from extension / content)."
    ),
    host: str = typer.Option(None, "--host", help="The server wbadmin output came from."),
    set_name: str = typer.Option(None, "--set", help="The set wbadmin versions belong to."),
    as_json: bool = typer.Option(False, "--json", help="Print the import report as JSON."),
) -> None:
    """Record backup runs made by other tools (all or nothing; safe to repeat).

    Every record is checked first: a bad one is reported as FILE:LINE: FIELD and nothing
    of the file is imported. Runs already in the catalog (same set, host, start, type) are
    skipped, so importing a file twice changes nothing. Runs of Exchange sets must obey the
    Exchange backup rules (a full first, no circular logging, no missing log generation).
    The manifest formats are described in docs/catalog.md.

    A manifest of 4 MiB or more shows a progress bar on a terminal (stderr). A large one
    (8 MiB or more) on a machine with two cores is written by a second process while this
    one checks; still one transaction. DR_CATALOG_WRITER=inline keeps
    it in one process (process: always two; auto: the default).
    """
    from dr.catalog import Catalog
    from dr.cli.common import byte_progress

    ws = workspace()
    inventory = optional_inventory(ws)
    size = file.stat().st_size if file.is_file() else 0
    small = size < PROGRESS_FROM
    with (
        Catalog.open(ws.catalog_path) as catalog,
        byte_progress(f"reading {file.name}", size, quiet=as_json or small) as tick,
    ):
        report = catalog.import_file(
            file, inventory, fmt, host=host, set_name=set_name, progress=tick
        )
    if as_json:
        emit_json(report.to_dict())
        return
    console.print(
        f"imported {report.runs_added} runs ({report.artifacts_added} artifacts) from "
        f"{report.file} ({report.format}); {report.runs_skipped} already present",
        highlight=False,
    )
    if report.sets_registered:
        console.print(f"registered sets: {', '.join(report.sets_registered)}", highlight=False)
    for stream in report.converted_to_copy:
        console.print(f"recorded as copy (database dismounted): {stream}", highlight=False)


@app.command("list")
def list_(
    set_name: str = typer.Option(None, "--set", "-s", help="Only this backup set."),
    host: str = typer.Option(None, "--host", help="Only runs of this server."),
    last: int = typer.Option(
        None, "--last", "-n", min=1, help="Only the newest N versions of each item."
    ),
    since: str = typer.Option(
        None,
        "--since",
        help="Only versions that ended at or after this time (ISO 8601; without an offset, UTC).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON."),
) -> None:
    """What is stored, version by version, like the backup vendor's listing.

    Per set and item, newest first: [I] incremental, [D] differential, [C] copy, no marker
    for a full; original size, date (UTC), stored size and how much storage saved
    ([76%] = stored at 24 % of the original). Expired versions are not shown.

    By default every version is listed, as the vendor does: a set of 15-minute log
    backups lists thousands. Narrow it with --set, --last 5 (the newest five per item) or
    --since 2024-05-18T00:00Z.
    """
    from dr.catalog import Catalog
    from dr.catalog.listing import listing

    ws = workspace()
    with Catalog.open(ws.catalog_path) as catalog:
        if set_name is not None:
            catalog.set(set_name)  # NotFoundError with a hint for a mistyped name
        rows = listing(catalog.conn, set_name, host, last=last, since=_since(since))
    if as_json:
        emit_json([row.to_dict() for row in rows])
        return
    render_listing(rows)


def _since(value: str | None) -> datetime | None:
    from dr.cli.common import parse_instant

    return parse_instant(value, "--since")


def render_listing(rows: list[ListingRow]) -> None:
    """One block per set and item, versions newest first, as the vendor lists them."""
    from itertools import groupby

    if not rows:
        console.print("nothing stored yet: import runs with `dr catalog import FILE`")
        return
    for (set_name, sg, item), group in groupby(
        rows, key=lambda r: (r.set_name, r.storage_group, r.item)
    ):
        label = f"{sg} / {item}" if sg else item
        console.print(f"[bold]{_escape(set_name)}[/]  {_escape(label)}", highlight=False)
        console.print(_table(list(group)))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _table(rows: list[ListingRow]) -> object:
    from rich.table import Table

    from dr.catalog.listing import human_size

    table = Table(box=None, pad_edge=False, show_header=False)
    for justify in ("left", "right", "left", "right", "right", "left"):
        table.add_column(justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        marker = f"{row.marker} " if row.marker else ""
        table.add_row(
            _escape(f"  {marker}{row.item}"),
            human_size(row.size),
            row.at.strftime("%Y/%m/%d %H:%M"),
            human_size(row.stored_size),
            _escape(f"[{row.saved_percent}%]"),
            row.generations or "",
        )
    return table
