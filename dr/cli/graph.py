"""`dr graph`: the artifact dependency graph — show what a target needs, find the gaps."""

from __future__ import annotations

from pathlib import Path

import typer

from dr.cli.common import console, emit_json, err_console, want_json

app = typer.Typer(
    no_args_is_help=True,
    help="The artifact dependency graph: which backups, directories and secrets each thing "
    "needs to be restored, and what is missing before anyone needs a restore.",
)

FACTS = typer.Option(None, "--facts", help="Use a recorded facts file instead of the catalog.")
INVENTORY = typer.Option(None, "--inventory", help="Use this inventory instead of the workspace's.")


@app.command("show")
def show(
    target: str = typer.Argument(
        ...,
        help="A node: database:SERVER/SG/DB, server:NAME, backup:ID, directory:DOMAIN, "
        "or just the part after the colon.",
    ),
    fmt: str = typer.Option(
        None,
        "--format",
        help="dot (the default) or mermaid. `--format json` still works for this release: "
        "use --json.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the nodes and edges as JSON."),
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Print TARGET and everything it needs, as Graphviz dot, Mermaid or JSON (--json).

    Example: dr graph show EX2016/DB01 --format mermaid
    """
    from dr.cli.plan import load_provider
    from dr.graph import build_graph, subgraph, to_dot, to_json, to_mermaid

    chosen = _graph_format(fmt, as_json)
    sub = subgraph(build_graph(load_provider(facts, inventory)), target)
    if chosen == "json":
        emit_json(to_json(sub))
    else:
        text = to_dot(sub) if chosen == "dot" else to_mermaid(sub)
        typer.echo(text, nl=False)


def _graph_format(fmt: str | None, as_json: bool) -> str:
    """dot, mermaid or json; ``--format json`` is the old spelling of ``--json``."""
    from dr.errors import ParameterError

    if fmt not in (None, "dot", "mermaid", "json"):
        raise ParameterError(f"--format {fmt!r} is not one of dot, mermaid", hint="or use --json")
    if fmt == "json" or as_json:
        want_json()
        if fmt not in (None, "json"):
            raise ParameterError(f"--json and --format {fmt}: choose one")
        if fmt == "json":
            err_console.print("note: `--format json` is now `--json`; the next release drops it")
        return "json"
    return fmt or "dot"


@app.command("gaps")
def gaps_(
    as_json: bool = typer.Option(False, "--json", help="Print the gaps as JSON."),
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Log-sequence gaps, backups whose base is gone, secrets with no recorded location.
    Exits 0 when there are none, 3 when there are (a restore would hit them).

    Example: dr graph gaps --json
    """
    from dr.cli.plan import load_provider
    from dr.graph import gaps

    found = gaps(load_provider(facts, inventory))
    if as_json:
        emit_json({"gaps": [g.to_dict() for g in found]})
    elif not found:
        console.print("no gaps: every chain is complete and every secret has a location")
    for gap in [] if as_json else found:
        console.print(f"[yellow]{gap.kind}[/] {gap.message}", highlight=False)
    if found:
        raise typer.Exit(3)
