"""`dr info`: per database, what it can be restored to (like pgBackRest's `info`)."""

from __future__ import annotations

from pathlib import Path

import typer

from dr.cli.common import console, emit_json, print_table

_STAMP = "%Y-%m-%d %H:%M:%SZ"


def command(
    db: str = typer.Option(
        None, "--db", help="One database: SERVER/SG/DB, SG/DB or a unique name (DB01)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the databases as JSON."),
    facts: Path = typer.Option(
        None, "--facts", help="Use a recorded facts file instead of the catalog."
    ),
    inventory: Path = typer.Option(
        None, "--inventory", help="Use this inventory instead of the workspace's."
    ),
) -> None:
    """Per database: the recoverable window (oldest and newest point a plan can reach), the
    last backup of each kind, and whether the chain is whole. Read from the catalog by the
    planner's own rules, so it agrees with what `dr plan` would do. Times are UTC.

    Exits 0 when every chain shown is whole, 3 when one is not.

    Example: dr info --db EX2016/DB01
    """
    from dr.cli.plan import load_provider
    from dr.info import info

    found = info(load_provider(facts, inventory), db)
    if as_json:
        emit_json({"databases": [d.to_dict() for d in found]})
    else:
        _print(found)
    if not all(d.whole for d in found):
        raise typer.Exit(3)


def _when(at: object) -> str:
    return "none" if at is None else at.strftime(_STAMP)  # type: ignore[attr-defined]


def _print(found: list) -> None:  # type: ignore[type-arg]
    from rich.table import Table

    for d in found:
        state = "[green]whole[/]" if d.whole else "[red]has a gap[/]"
        console.print(f"[bold]{d.database}[/]  chain {state}", highlight=False)
        console.print(f"  recoverable from {_when(d.oldest)} to {_when(d.newest)}",
                      highlight=False)  # fmt: skip
        table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 2))
        for name in ("kind", "last backup", "at", "logs"):
            table.add_column(name)
        for kind, v in d.last.items():
            logs = f"{v.logs.first}-{v.logs.last}" if v.logs else ""
            table.add_row(kind, v.id, v.at.strftime(_STAMP), logs)
        if d.last:
            print_table(table)
        else:
            console.print("  no backup in the catalog", highlight=False)
        for problem in d.problems:
            console.print(f"  [yellow]problem[/] {problem}", highlight=False, soft_wrap=True)
