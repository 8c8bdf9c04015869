"""`dr init`: create the workspace."""

from __future__ import annotations

from pathlib import Path

import typer

from dr.cli.common import console, workspace_path


def command(
    inventory: Path = typer.Option(
        None,
        "--inventory",
        "-i",
        help="The estate file (YAML) this workspace describes; validated before it is recorded.",
        exists=False,
    ),
) -> None:
    """Create a workspace (./.dr, or --workspace / DR_WORKSPACE) with an empty catalog.

    Safe to run again: it keeps what is there and records a new inventory file if given.

    Example: dr init --inventory examples/estate.yaml
    """
    from dr import workspace as ws_mod

    ws = workspace_path()
    if inventory is not None:
        from dr.model.inventory import load_inventory

        load_inventory(inventory)  # refuse an invalid estate before recording it
    ws = ws_mod.init(ws.root, inventory)
    from dr.catalog import Catalog

    Catalog.open(ws.catalog_path).close()
    console.print(f"workspace ready: {ws.root}")
    if inventory is not None:
        console.print(f"inventory: {inventory.resolve()}")
