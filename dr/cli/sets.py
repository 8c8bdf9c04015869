"""`dr set` commands: backup sets, their schedules, compression and (fixed) encryption."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from dr.cli.common import console, emit_json, print_table, workspace

if TYPE_CHECKING:
    from dr.catalog import Catalog, SetRecord

app = typer.Typer(no_args_is_help=True, help="Backup sets: what each host backs up, when, and how.")


def _open_synced() -> Catalog:
    """The catalog, with the inventory's sets registered (new ones added, changes checked)."""
    from dr.catalog import Catalog
    from dr.cli.catalog import optional_inventory

    ws = workspace()
    inventory = optional_inventory(ws)
    catalog = Catalog.open(ws.catalog_path)
    if inventory is not None:
        try:
            catalog.sync_sets(inventory.backup_sets)
        except BaseException:
            catalog.close()
            raise
    return catalog


def _schedule(text: str) -> dict[str, object]:
    """`day@22:00`, `week:sat@02:00`, `every:15m` (optionally `=incremental`) -> Schedule."""
    from dr.errors import ParameterError

    spec, _, backup_type = text.partition("=")
    kind, _, at = spec.partition("@")
    result: dict[str, object] = {"backup_type": backup_type or "full"}
    if kind.startswith("every:") and kind.endswith("m") and kind[6:-1].isdigit():
        return {**result, "every": "minutes", "minutes": int(kind[6:-1])}
    if kind == "day" and at:
        return {**result, "every": "day", "at": at}
    if kind.startswith("week:") and at:
        return {**result, "every": "week", "weekday": kind[5:], "at": at}
    raise ParameterError(
        f"--schedule {text!r} is not a schedule",
        hint="write day@22:00, week:sat@02:00 or every:15m, optionally =incremental",
    )


@app.command("add")
def add(
    name: str = typer.Argument(..., help="A clear name, e.g. ex2003-exchange."),
    host: str = typer.Option(..., "--host", help="The server the set backs up."),
    set_type: str = typer.Option(
        ...,
        "--type",
        help="system-state, system, exchange, exchange-mail-level, iis-metabase, kms, ca, files.",
    ),
    covers: list[str] = typer.Option(
        [], "--covers", help="What it selects: SG, SG/DB, mailbox, path, or 'all' (repeat)."
    ),
    schedule: list[str] = typer.Option(
        [], "--schedule", help="day@22:00, week:sat@02:00, every:15m[=incremental] (repeat)."
    ),
    compression: str = typer.Option("normal", "--compression", help="fast or normal."),
    encryption: str = typer.Option(
        "on", "--encryption", help="on or off. Chosen now and never changeable afterwards."
    ),
) -> None:
    """Create a backup set. Its encryption is fixed from now on.

    Losing the encryption key is losing the data: keep the key (or where it is kept) in a
    safe place before the first backup runs.

    Example: dr set add nightly-files --host EX2016 --type files --schedule 'day@22:00'
    """
    definition = _definition(
        name=name,
        host=host,
        type=set_type,
        covers=covers,
        schedules=[_schedule(s) for s in schedule],
        compression=compression,
        encryption={"enabled": _on_off(encryption)},
    )
    with _open_synced() as catalog:
        record = catalog.register_set(definition)
    console.print(
        f"created set {record.name} ({record.definition.type} on {record.definition.host})"
    )


def _on_off(value: str) -> bool:
    from dr.errors import ParameterError

    if value.lower() not in ("on", "off"):
        raise ParameterError(f"--encryption {value!r}: write on or off")
    return value.lower() == "on"


def _definition(**values: object):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from dr.errors import ParameterError
    from dr.model.sets import BackupSet

    try:
        return BackupSet.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ParameterError(f"{where}: {first['msg']}", hint="see `dr set add --help`") from exc


@app.command("show")
def show(
    name: str = typer.Argument(None, help="One set (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print the sets as JSON."),
) -> None:
    """The registered sets: host, type, what they cover, schedules, compression history,
    encryption (fixed at creation). Sets declared in the inventory are registered first.

    Example: dr set show ex2016-exchange
    """
    with _open_synced() as catalog:
        records = [catalog.set(name)] if name else catalog.sets()
    if as_json:
        emit_json([_as_dict(r) for r in records])
        return
    _render(records)


def _as_dict(record: SetRecord) -> dict[str, object]:
    return {
        **record.definition.model_dump(mode="json"),
        "created": record.created.isoformat(),
        "compression_history": [
            {"compression": c.compression, "effective": c.effective.isoformat()}
            for c in record.compression_history
        ],
    }


def _render(records: list[SetRecord]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("set", "host", "type", "covers", "schedules", "compression", "encryption"):
        table.add_column(column)
    for record in records:
        d = record.definition
        schedules = ", ".join(_describe_schedule(s) for s in d.schedules) or "-"
        history = " → ".join(c.compression for c in record.compression_history)
        enc = f"on ({d.encryption.cipher})" if d.encryption.enabled else "off"
        table.add_row(
            escape(d.name),
            d.host,
            d.type,
            escape(", ".join(d.covers) or "-"),
            schedules,
            history or d.compression,
            enc,
        )
    print_table(table)


def _describe_schedule(s: object) -> str:
    every = getattr(s, "every", "")
    kind = getattr(s, "backup_type", "full")
    if every == "minutes":
        return f"every {getattr(s, 'minutes', '?')}m {kind}"
    if every == "week":
        return f"{getattr(s, 'weekday', '?')} {getattr(s, 'at', '')} {kind}"
    return f"daily {getattr(s, 'at', '')} {kind}"


@app.command("edit")
def edit(
    name: str = typer.Argument(..., help="The set to change."),
    compression: str = typer.Option(
        None, "--compression", help="fast or normal; applies to backups that start from now on."
    ),
    schedule: list[str] = typer.Option(
        None, "--schedule", help="Replace the schedules (repeat); see `dr set add --help`."
    ),
    encryption: str = typer.Option(
        None, "--encryption", help="Refused: encryption is fixed when a set is created."
    ),
) -> None:
    """Change a set's compression or schedules. Encryption cannot change (exit 2).

    Example: dr set edit ex2016-exchange --compression normal
    """
    from dr.cli.catalog import optional_inventory

    inventory = optional_inventory(workspace())
    with _open_synced() as catalog:
        record = catalog.set(name)
        values = record.definition.model_dump()
        if compression is not None:
            values["compression"] = compression
        if schedule:
            values["schedules"] = [_schedule(s) for s in schedule]
        if encryption is not None:
            values["encryption"] = {**values["encryption"], "enabled": _on_off(encryption)}
        definition = _definition(**values)
        _refuse_declared(inventory, definition, record)
        updated = catalog.update_set(definition)
    console.print(f"updated set {updated.name}; compression now {updated.definition.compression}")


def _refuse_declared(inventory: object, definition: object, record: SetRecord) -> None:
    """A set the inventory declares is changed in the inventory, or the edit would be undone."""
    from dr.errors import ParameterError, PolicyError

    if getattr(definition, "encryption", None) != record.definition.encryption:
        raise PolicyError(
            f"backup set {record.name!r}: encryption is fixed when a set is created",
            hint="create a new set with the encryption you want and retire this one",
        )
    declared = {s.name for s in getattr(inventory, "backup_sets", [])}
    if record.name in declared:
        raise ParameterError(
            f"backup set {record.name!r} is declared in the inventory",
            hint="change it there; the change is recorded (and dated) by the next "
            "`dr set show` or `dr catalog import`",
        )
