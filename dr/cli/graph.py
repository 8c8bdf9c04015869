"""`dr graph`: the artifact dependency graph — show what a target needs, find the gaps."""

from __future__ import annotations

from pathlib import Path

import typer

from dr.cli.common import console, emit_json

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
    fmt: str = typer.Option("dot", "--format", help="dot, mermaid or json."),
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Print TARGET and everything it needs, as Graphviz dot, Mermaid or JSON."""
    from dr.cli.plan import load_provider
    from dr.errors import ParameterError
    from dr.graph import build_graph, subgraph, to_dot, to_json, to_mermaid

    if fmt not in ("dot", "mermaid", "json"):
        raise ParameterError(f"--format {fmt!r} is not one of dot, mermaid, json")
    sub = subgraph(build_graph(load_provider(facts, inventory)), target)
    if fmt == "json":
        emit_json(to_json(sub))
    else:
        text = to_dot(sub) if fmt == "dot" else to_mermaid(sub)
        typer.echo(text, nl=False)


@app.command("gaps")
def gaps_(
    as_json: bool = typer.Option(False, "--json", help="Print the gaps as JSON."),
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Log-sequence gaps, backups whose base is gone, secrets with no recorded location.
    Exits 0 when there are none, 3 when there are (a restore would hit them)."""
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
