"""`dr inventory` commands: validate an estate file, record it in the workspace, show it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dr.cli.common import console, emit_json, error_of, print_table, workspace

if TYPE_CHECKING:
    from dr.model.inventory import Inventory

app = typer.Typer(no_args_is_help=True)

FILE_ARG = typer.Argument(..., help="The estate file (YAML), e.g. examples/estate.yaml.")
JSON_OPT = typer.Option(False, "--json", help="Machine-readable output.")


def counts(inv: Inventory) -> dict[str, int]:
    """What the estate holds, counted the way `validate` reports it."""
    groups = [sg for s in inv.servers for sg in s.storage_groups]
    return {
        "servers": len(inv.servers),
        "storage_groups": len(groups),
        "databases": sum(len(sg.databases) for sg in groups),
        "mailboxes": len(inv.mailboxes),
        "backup_sets": len(inv.backup_sets),
    }


def _summary(inv: Inventory) -> str:
    c = counts(inv)
    return (
        f"ok: {c['servers']} servers, {c['storage_groups']} storage groups, "
        f"{c['databases']} databases, {c['mailboxes']} mailboxes, {c['backup_sets']} backup sets"
    )


@app.command()
def validate(file: Path = FILE_ARG, as_json: bool = JSON_OPT) -> None:
    """Check an estate file and list every problem with file:line:column and field.

    Exit code 0 when valid; 2 with one line per problem otherwise. With --json the result is
    {"ok": true, "counts": {...}} or {"ok": false, "problems": [{file, line, column, field,
    message}, ...]} (exit code 2 as well).

    Example: dr inventory validate examples/estate.yaml
    """
    from dr.errors import InventoryError
    from dr.model.inventory import load_inventory

    try:
        inv = load_inventory(file)
    except InventoryError as exc:
        if not as_json:
            raise
        problems = [p.to_dict() for p in exc.problems]
        emit_json({"ok": False, "problems": problems, **error_of(exc)})
        raise typer.Exit(exc.exit_code) from None
    if as_json:
        emit_json({"ok": True, "file": str(file), "counts": counts(inv)})
    else:
        console.print(_summary(inv), highlight=False)


@app.command()
def use(file: Path = FILE_ARG) -> None:
    """Validate an estate file and make it the workspace's inventory.

    Plans, schedules and checks then read this file. It is recorded by absolute path, so
    edit it in place; nothing is copied.

    Example: dr inventory use estate.yaml
    """
    from dr.model.inventory import load_inventory

    inv = load_inventory(file)
    ws = workspace()
    ws.update_config(inventory=str(file.resolve()))
    console.print(_summary(inv), highlight=False)
    console.print(f"inventory in use: {file.resolve()}", highlight=False)


@app.command()
def show(as_json: bool = JSON_OPT) -> None:
    """Show the workspace's inventory: organization, forests, servers, storage, SLA, secrets.

    Secrets appear as name → where they are kept; the file never holds their values.

    Example: dr inventory show --json
    """
    from dr.model.load import workspace_inventory

    inv = workspace_inventory(workspace())
    if as_json:
        emit_json(inventory_json(inv))
        return
    for table in tables(inv):
        print_table(table)


HOSTS_ARG = typer.Argument(
    None, help="Servers to ask (default: every server of the inventory with a transport)."
)
HOSTS_FILE = typer.Option(
    None, "--hosts", help="A YAML file of host name → transport spec, beside config.yaml's."
)


@app.command()
def probe(
    hosts: list[str] | None = HOSTS_ARG,
    hosts_file: Path | None = HOSTS_FILE,
    as_json: bool = JSON_OPT,
) -> None:
    """Ask each host which PowerShell it has, and record the answer for the planner.

    Sends one read-only command (`$PSVersionTable`) over the host's transport. The answer
    is kept in the workspace (host-facts.json) and from then on wins over what the
    inventory implies, so plans pick step variants the host can run. A host that cannot be
    reached is reported and keeps its earlier answer.

    Example: dr inventory probe EX2016 DC1
    """
    from dr import hostfacts
    from dr.backup.command import host_specs, transport_factory
    from dr.errors import DrError, ParameterError
    from dr.model.load import recorded_inventory

    ws = workspace()
    inv = recorded_inventory(ws)  # compared with the answers, so without the earlier ones
    specs = host_specs(ws.config(), hosts_file)
    names = [s.name for s in inv.servers] + [
        s.name for f in inv.recovery_forests for s in f.servers
    ]
    known = {n.lower(): n for n in names}
    if hosts:
        unknown = [h for h in hosts if h.lower() not in known]
        if unknown:
            raise ParameterError(
                f"{unknown[0]!r} is not a server of the inventory",
                hint=f"servers: {', '.join(names)}",
            )
        chosen = [known[h.lower()] for h in hosts]
    else:
        mapped = {k.lower() for k in specs}
        chosen = [n for n in names if n.lower() in mapped]
        if not chosen:
            raise ParameterError(
                "no server of the inventory has a transport",
                hint="map hosts under `hosts:` in the workspace config.yaml, or pass --hosts FILE",
            )
    factory = transport_factory(specs)
    answers, rows = [], []
    for name in chosen:
        try:
            transport = factory(name)
            try:
                answer = hostfacts.probe(name, transport)
            finally:
                transport.close()
        except (DrError, hostfacts.ProbeError, OSError) as exc:
            rows.append({"host": name, "powershell": None, "error": str(exc).splitlines()[0]})
            continue
        answers.append(answer)
        rows.append({"host": name, "powershell": answer.powershell, "error": None})
    hostfacts.record(ws.root, answers)
    _probe_report(inv, rows, as_json)
    if any(r["error"] for r in rows):
        raise typer.Exit(1)


def _probe_report(inv: Inventory, rows: list[dict[str, Any]], as_json: bool) -> None:
    from dr.planner.builder import platform_of

    servers = {s.name: s for s in inv.servers}
    servers |= {s.name: s for f in inv.recovery_forests for s in f.servers}
    for row in rows:
        row["inventory_implies"] = platform_of(servers[row["host"]]).get("powershell")
    if as_json:
        emit_json({"hosts": rows})
        return
    table = _table("PowerShell", "host", "answered", "inventory implies", "note")
    for row in rows:
        answered, implied = row["powershell"], row["inventory_implies"]
        note = row["error"] or ("" if answered == implied else "recorded: plans use the answer")
        table.add_row(row["host"], answered or "-", implied or "unknown", note)
    print_table(table)


def inventory_json(inv: Inventory) -> dict[str, Any]:
    """The model as JSON (durations in seconds), plus the counts."""
    data = inv.model_dump(mode="json")
    data["counts"] = counts(inv)
    return data


def _hours(seconds: float) -> str:
    """Seconds as the shortest duration word: 900 → 15m, 14400 → 4h, 604800 → 7d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def tables(inv: Inventory) -> list[Any]:
    """The rich tables `dr inventory show` prints, one per part of the estate."""
    return [
        _organization(inv),
        _forests(inv),
        _servers(inv),
        _storage(inv),
        _recovery(inv),
        _sla(inv),
        _secrets(inv),
    ]


def _table(title: str, *columns: str) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        table.add_column(column)
    return table


def _organization(inv: Inventory) -> Any:
    table = _table(
        f"Organization {inv.organization.name}", "administrative group", "legacyExchangeDN"
    )
    for group in inv.organization.administrative_groups:
        table.add_row(group.name, group.legacy_exchange_dn)
    return table


def _forests(inv: Inventory) -> Any:
    table = _table("Forests", "forest", "domain", "NetBIOS", "domain controllers")
    for forest in inv.forests:
        for domain in forest.domains:
            dcs = ", ".join(domain.domain_controllers)
            table.add_row(forest.name, domain.name, domain.netbios or "", dcs)
    return table


def _servers(inv: Inventory) -> Any:
    table = _table("Servers", "server", "Windows", "Exchange", "roles", "drives (critical *)")
    for s in inv.servers:
        exchange = f"{s.exchange_version} {s.service_pack or ''}" if s.exchange_version else ""
        windows = (
            s.windows_version
            if s.exchange_version
            else f"{s.windows_version} {s.service_pack or ''}"
        )
        drives = " ".join(f"{d.letter}:{'*' if d.critical else ''}" for d in s.drives)
        table.add_row(s.name, windows.strip(), exchange.strip(), ", ".join(s.roles), drives)
    return table


def _storage(inv: Inventory) -> Any:
    per_db: dict[str, int] = {}
    from dr.model.refs import database_candidates

    for mailbox in inv.mailboxes:
        (ref,) = database_candidates(inv, mailbox.database)
        per_db[ref.key] = per_db.get(ref.key, 0) + 1
    table = _table(
        "Storage groups and databases",
        "server",
        "storage group",
        "prefix",
        "circular",
        "database",
        "files",
        "mailboxes",
    )
    for s in inv.servers:
        for sg in s.storage_groups:
            for db in sg.databases:
                key = f"{s.name}/{sg.name}/{db.name}"
                files = db.edb + (f" + {db.stm}" if db.stm else "")
                circular = "on" if sg.circular_logging else "off"
                count = str(per_db.get(key, 0))
                table.add_row(s.name, sg.name, sg.log_prefix, circular, db.name, files, count)
    return table


def _recovery(inv: Inventory) -> Any:
    table = _table(
        "Recovery forests", "forest", "organization", "server", "Exchange", "admin group"
    )
    for forest in inv.recovery_forests:
        for s in forest.servers:
            table.add_row(
                forest.name,
                forest.organization,
                s.name,
                str(s.exchange_version),
                s.administrative_group,
            )
    return table


def _sla(inv: Inventory) -> Any:
    target = inv.sla.availability_target
    title = "SLA" + (f" (availability {target:g} %)" if target else "")
    table = _table(title, "scope", "RPO", "RTO")
    table.add_row("estate default", _hours(inv.sla.default.rpo), _hours(inv.sla.default.rto))
    for ref, objective in inv.sla.databases.items():
        table.add_row(ref, _hours(objective.rpo), _hours(objective.rto))
    retention = inv.retention
    table.add_row("deleted items kept", _hours(retention.deleted_items), "")
    table.add_row("deleted mailboxes kept", _hours(retention.deleted_mailboxes), "")
    if inv.offsite:
        table.add_row("offsite", f"{inv.offsite.location} ({inv.offsite.country})", "")
    return table


def _secrets(inv: Inventory) -> Any:
    table = _table("Secrets (where they are kept)", "name", "kind", "host", "location")
    for secret in inv.secrets:
        table.add_row(secret.name, secret.kind, secret.host or "", secret.location)
    return table
