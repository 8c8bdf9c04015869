"""`dr plan <scenario>`: make a restore plan, print it, save it with -o.

Every command reads the workspace's inventory and catalog (or, with --facts, a recorded
facts file), prints a summary (or the plan as JSON with --json) and exits 0; when the
target cannot be reached as asked it prints why and the nearest alternatives and exits 3
(--json prints the same facts as a JSON document).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dr.cli.common import console, emit_json, print_table, workspace

if TYPE_CHECKING:
    from dr.planner.facts import FactsProvider
    from engine.plan import Plan

app = typer.Typer(
    no_args_is_help=True,
    help="Restore plans, one command per scenario. Save with -o plan.json; run it with "
    "`dr run start plan.json`. Exit 3 means: not recoverable as asked (the reason and the "
    "nearest recoverable points are printed).",
)

OUTPUT = typer.Option(None, "--output", "-o", help="Save the plan (canonical JSON) here.")
JSON = typer.Option(False, "--json", help="Print the plan (or the refusal) as JSON.")
FACTS = typer.Option(
    None, "--facts", help="Plan from a recorded facts file (JSON) instead of the catalog."
)
INVENTORY = typer.Option(
    None, "--inventory", help="Use this inventory file instead of the workspace's."
)
AT = typer.Option(
    None,
    "--at",
    help="Target time, ISO 8601 (UTC unless an offset is given), e.g. "
    "2024-03-04T10:30. The plan reaches the latest recoverable point at or before it.",
)


def parse_at(value: str | None, option: str = "--at") -> datetime | None:
    """ISO 8601 → aware UTC datetime; a clear ParameterError otherwise (one rule:
    :func:`dr.cli.common.parse_instant`)."""
    from dr.cli.common import parse_instant

    return parse_instant(value, option)


def load_provider(
    facts: Path | None,
    inventory: Path | None,
    server_logs: list[str] | None = None,
    listed_at: str | None = None,
) -> FactsProvider:
    """Every fact at once, held in memory: a recorded file, or the whole catalog read into
    memory (for tools that look at every stream, such as `dr graph`). A plan uses
    :func:`open_provider`, which reads only what the planner asks for."""
    inv = _inventory(inventory)
    if facts is not None:
        return _recorded(facts, inv)
    from dr.catalog import Catalog
    from dr.planner.catalog_facts import catalog_facts

    live = _server_logs(inv, server_logs or [], listed_at)
    with Catalog.open(workspace().catalog_path) as catalog:
        return catalog_facts(catalog, inv, live, _step_facts())


@contextmanager
def open_provider(
    facts: Path | None,
    inventory: Path | None,
    server_logs: list[str] | None = None,
    listed_at: str | None = None,
) -> Iterator[FactsProvider]:
    """The facts for one plan: a recorded file, or the workspace's catalog, kept open while
    the plan is made and asked only what the planner needs (and the logs still on the
    servers, when the responder listed them)."""
    inv = _inventory(inventory)
    if facts is not None:
        yield _recorded(facts, inv)
        return
    from dr.catalog import Catalog
    from dr.planner.catalog_facts import CatalogFacts

    live = _server_logs(inv, server_logs or [], listed_at)
    with Catalog.open(workspace().catalog_path) as catalog:
        yield CatalogFacts(catalog, inv, live, _step_facts())


def planned(
    plan: Callable[[FactsProvider], Plan],
    facts: Path | None,
    inventory: Path | None,
    server_logs: list[str] | None = None,
    listed_at: str | None = None,
) -> Callable[[], Plan]:
    """Make ``plan`` with the facts open around it (what :func:`run_planner` calls)."""

    def make() -> Plan:
        with open_provider(facts, inventory, server_logs, listed_at) as provider:
            return plan(provider)

    return make


def _inventory(inventory: Path | None) -> Any:
    from dr.model.load import load_inventory, workspace_inventory

    return load_inventory(inventory) if inventory else workspace_inventory(workspace())


def _step_facts() -> Any:
    """The step library's facts the planner needs (which kinds are destructive): the library
    is read here, at the edge, and handed to the planner with the other facts. The
    templates are not compiled for this (a plan renders none); `dr runbook` and `dr run`
    check them."""
    from dr.planner.facts import StepFacts
    from engine.runbook import Library

    return StepFacts.of_library(Library.load(templates=False))


def _server_logs(inv: Any, values: list[str], listed_at: str | None) -> list[Any]:
    """`SG=FILE` values → LiveLogs facts; the listing time defaults to now."""
    from dr.errors import ParameterError
    from dr.planner.live import live_logs

    at = parse_at(listed_at, "--logs-listed-at") or datetime.now(UTC).replace(microsecond=0)
    found = []
    for value in values:
        sg, sep, name = value.rpartition("=")
        if not sep or not sg:
            raise ParameterError(
                f"--server-logs {value!r}: write STORAGE-GROUP=FILE",
                hint='e.g. --server-logs "EX2003/First Storage Group=e00-listing.txt"',
            )
        try:
            text = Path(name).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ParameterError(f"--server-logs {name}: cannot read ({exc.strerror})") from None
        found.append(live_logs(inv, sg, text, at, name))
    return found


def _recorded(path: Path, inv: Any) -> FactsProvider:
    from dr.errors import ParameterError
    from dr.planner.facts import memory_facts_from_dict

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ParameterError(f"{path}: cannot read the facts file ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ParameterError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    try:
        return memory_facts_from_dict(inv, data, _step_facts())
    except (KeyError, TypeError, ValueError) as exc:
        raise ParameterError(
            f"{path}: a fact is missing or malformed ({exc})",
            hint="facts files hold backups, live_logs and artifacts as docs/scenarios.md shows",
        ) from None


def run_planner(make: Callable[[], Plan], output: Path | None, as_json: bool) -> None:
    """Make the plan; print it; save it. A refusal is an error (exit 3), which under --json
    the entry point prints as ``{"error": {...}}`` with the facts in ``details``."""
    plan = make()
    if output is not None:
        _save(plan, output)
    if as_json:
        emit_json(json.loads(plan.canonical_json()))
    else:
        render_plan(plan, output)


def _save(plan: Plan, path: Path) -> None:
    """Write atomically: a half-written plan file is never left behind."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(plan.canonical_json(), encoding="utf-8")
    os.replace(tmp, path)


def _now(value: str | None) -> datetime:
    return parse_at(value, "--as-of") or datetime.now(UTC).replace(microsecond=0)


AS_OF = typer.Option(
    None,
    "--as-of",
    help="Take 'now' as this time (retention windows are counted to it); ISO 8601, without an "
    "offset UTC.",
)


@app.command("message")
def message(
    mailbox: str = typer.Option(..., "--mailbox", help="Alias of the mailbox."),
    deleted_at: str = typer.Option(..., "--deleted-at", help="When the messages were deleted."),
    purged: bool = typer.Option(
        False,
        "--purged",
        help="They were purged (hard-deleted past Recoverable Items): restore from a backup "
        "even inside deleted-item retention.",
    ),
    as_of: str = AS_OF,
    output: Path = OUTPUT,
    as_json: bool = JSON,
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Recover deleted messages: no backup within deleted-item retention (it says so)
    unless they were purged; otherwise a mail-level restore, or on 2010+ a recovery
    database and a restore request — always into the original database.

    Example: dr plan message --mailbox finance --deleted-at 2024-05-14T09:00Z -o plan.json
    """
    from dr.planner import plan_message

    when = parse_at(deleted_at, "--deleted-at")
    assert when is not None
    run_planner(
        planned(
            lambda p: plan_message(p, mailbox, when, _now(as_of), purged=purged), facts, inventory
        ),
        output,
        as_json,
    )


@app.command("mailbox")
def mailbox_(
    mailbox: str = typer.Option(..., "--mailbox", help="Alias of the mailbox."),
    deleted_at: str = typer.Option(None, "--deleted-at", help="When the mailbox was deleted."),
    at: str = AT,
    forest: str = typer.Option(None, "--forest", help="Recovery forest (2000/2003)."),
    as_of: str = AS_OF,
    output: Path = OUTPUT,
    as_json: bool = JSON,
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Recover a mailbox: reconnect it within deleted-mailbox retention; beyond it,
    restore its database into a recovery database (2010+) or the recovery forest and
    extract the mailbox.

    Example: dr plan mailbox --mailbox finance --at 2024-05-14T09:00Z -o plan.json
    """
    from dr.planner import plan_mailbox

    run_planner(
        planned(
            lambda p: plan_mailbox(
                p,
                mailbox,
                _now(as_of),
                parse_at(deleted_at, "--deleted-at"),
                parse_at(at),
                forest,
            ),
            facts,
            inventory,
        ),
        output,
        as_json,
    )


@app.command("database")
def database(
    db: list[str] = typer.Option(..., "--db", help="SERVER/SG/DB, SG/DB or DB; repeatable."),
    at: str = AT,
    point_of_failure: bool = typer.Option(
        False, "--point-of-failure", help="Roll forward as far as the logs go (the default)."
    ),
    offline: bool = typer.Option(
        False,
        "--offline",
        help="Restore an offline file backup on the recovery forest's server of the "
        "same names; production is not touched.",
    ),
    forest: str = typer.Option(
        None,
        "--forest",
        help="With --offline: the recovery forest (default: the one whose names match).",
    ),
    in_place: bool = typer.Option(
        False,
        "--in-place",
        help="With --offline: over the original database instead (its files and the group's "
        "logs moved aside, never deleted), when an online restore has failed.",
    ),
    server_logs: list[str] = typer.Option(
        None,
        "--server-logs",
        help="STORAGE-GROUP=FILE: a listing of the logs still on the server (dir, "
        "Get-ChildItem or eseutil /ml output of its log folder); repeatable. Without it "
        "the restore stops at the last log backup.",
    ),
    logs_listed_at: str = typer.Option(
        None, "--logs-listed-at", help="When the listing was taken (default: now)."
    ),
    output: Path = OUTPUT,
    as_json: bool = JSON,
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Restore stores / storage groups, to a point in time or offline.

    Copies the existing files first, dismounts, one temporary folder per storage group,
    restores the full (and differential) and log backups, the logs still on the server up
    to the target, replays (eseutil /cc on 2000/2003, /r on 2007+), verifies Clean Shutdown,
    mounts. Storage groups in parallel, stores of one group in series.

    Example: dr plan database --db DB01 --at 2024-05-14T11:00Z -o plan.json
    """
    from dr.errors import ParameterError
    from dr.planner import plan_database, plan_offline

    if at is not None and point_of_failure:
        raise ParameterError("give --at or --point-of-failure, not both")
    if (forest is not None or in_place) and not offline:
        raise ParameterError("--forest and --in-place go with --offline")
    if forest is not None and in_place:
        raise ParameterError("give --forest or --in-place, not both")
    when = parse_at(at)

    def make(p: Any) -> Any:
        if offline:
            return plan_offline(p, db, when, forest=forest, in_place=in_place)
        return plan_database(p, db, when)

    run_planner(
        planned(make, facts, inventory, server_logs, logs_listed_at),
        output,
        as_json,
    )


@app.command("server")
def server(
    server: str = typer.Option(..., "--server", help="The server to rebuild."),
    output: Path = OUTPUT,
    as_json: bool = JSON,
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Rebuild a lost server: same name, domain and Windows version (or its disk
    image), Exchange disaster-recovery setup with its recorded components, then stores,
    IIS metabase, SRS, KMS and CA.

    Example: dr plan server --server EX2016 -o plan.json
    """
    from dr.planner import plan_server

    run_planner(planned(lambda p: plan_server(p, server), facts, inventory), output, as_json)


@app.command("forest")
def forest(
    domain: str = typer.Option(..., "--domain", help="DNS or NetBIOS name of the domain."),
    objects: list[str] = typer.Option(
        [], "--object", help="DN to mark authoritative; repeatable (default: non-authoritative)."
    ),
    partners: bool = typer.Option(
        False,
        "--partners-survive",
        help="Other domain controllers of the domain still run: take SYSVOL from them "
        "(without it, and without --object, this DC's SYSVOL becomes the primary copy).",
    ),
    at: str = AT,
    output: Path = OUTPUT,
    as_json: bool = JSON,
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Recover after Active Directory failure: a domain controller's system state
    first, then the Exchange servers that depend on it.

    Example: dr plan forest --domain corp.contoso.com -o plan.json
    """
    from dr.planner import plan_forest

    run_planner(
        planned(
            lambda p: plan_forest(p, domain, objects, parse_at(at), partners), facts, inventory
        ),
        output,
        as_json,
    )


@app.command("alternate")
def alternate(
    db: str = typer.Option(..., "--db", help="SERVER/SG/DB, SG/DB or DB."),
    forest: str = typer.Option(None, "--forest", help="Recovery forest (if several)."),
    at: str = AT,
    output: Path = OUTPUT,
    as_json: bool = JSON,
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Restore a database into the recovery forest. Refused, naming each mismatch,
    unless organization, administrative group legacyExchangeDN, storage group and database
    names match the source.

    Example: dr plan alternate --db DB02 --at 2024-05-14T11:00Z -o plan.json
    """
    from dr.planner import plan_alternate

    run_planner(
        planned(lambda p: plan_alternate(p, db, forest, parse_at(at)), facts, inventory),
        output,
        as_json,
    )


@app.command("drill")
def drill(
    db: str = typer.Option(..., "--db", help="SERVER/SG/DB, SG/DB or DB."),
    forest: str = typer.Option(None, "--forest", help="Recovery forest (if several)."),
    at: str = AT,
    output: Path = OUTPUT,
    as_json: bool = JSON,
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
    into: str = typer.Option(
        None,
        "--into",
        help="forest (the recovery forest) or rdb (2010+: a recovery database on the "
        "policy's recovery_database_server, else the database's own server); default: the "
        "inventory's drills: policy.",
    ),
) -> None:
    """A restore drill: the restore into the recovery forest or a recovery database,
    then the header, the mount, every mailbox's item count against the backup's, a seeded
    sample, and the clean-up.

    Example: dr plan drill --db EX2016/DB02/DB02 --into rdb -o drill.json
    """
    from dr.planner import plan_drill

    if into not in (None, "forest", "rdb"):
        raise typer.BadParameter("forest or rdb", param_hint="--into")
    run_planner(
        planned(lambda p: plan_drill(p, db, forest, parse_at(at), into=into), facts, inventory),
        output,
        as_json,
    )


@app.command("site")
def site(
    output: Path = OUTPUT,
    as_json: bool = JSON,
    facts: Path = FACTS,
    inventory: Path = INVENTORY,
) -> None:
    """Everything after losing the site: forests first, then servers, then stores, as one
    plan with the parallelism the dependencies allow.

    Example: dr plan site -o site.json
    """
    from dr.planner import plan_site

    run_planner(planned(plan_site, facts, inventory), output, as_json)


# --------------------------------------------------------------------------- the summary


def _duration(seconds: float | None) -> str:
    from engine.units import duration

    return duration(seconds)


def _against(actual: float | None, limit: float | None) -> str:
    if limit is None or actual is None:
        return _duration(actual)
    verdict = "[green]within[/]" if actual <= limit else "[bold red]exceeds[/]"
    return f"{_duration(actual)} ({verdict} SLA {_duration(limit)})"


def critical_path_text(plan: Plan) -> str:
    """The critical path by step kind, runs of one kind folded: `restore-log-backup ×14`."""
    kinds = [plan.step(step_id).kind for step_id in plan.critical_path]
    parts: list[str] = []
    for kind in kinds:
        if parts and parts[-1].split(" ×")[0] == kind:
            count = int(parts[-1].split(" ×")[1]) + 1 if " ×" in parts[-1] else 2
            parts[-1] = f"{kind} ×{count}"
        else:
            parts.append(kind)
    return " → ".join(parts)


def render_plan(plan: Plan, output: Path | None) -> None:
    """The summary a responder reads before anything runs."""
    from rich.table import Table

    point = plan.recoverable_point.isoformat() if plan.recoverable_point else "n/a"
    target = plan.target.at.isoformat() if plan.target.at else "point of failure"
    head = Table.grid(padding=(0, 2))
    for label, value in [
        ("scenario", plan.scenario),
        ("target", f"{plan.target.what} @ {target}"),
        ("recoverable point", point),
        ("data-loss window", _against(plan.data_loss_window_seconds, plan.sla.rpo_seconds)),
        ("RTO estimate", _against(plan.rto_estimate_seconds, plan.sla.rto_seconds)),
        ("critical path", critical_path_text(plan)),
        ("digest", plan.digest),
    ]:
        head.add_row(f"[bold]{label}[/]", value)
    console.print(head)
    for warning in plan.warnings:
        console.print(f"[yellow]warning[/] {warning}", highlight=False)
    steps = Table("#", "step", "host", "est.", "needs", box=None, show_edge=False)
    for n, step in enumerate(plan.steps, start=1):
        flag = " [red](destructive)[/]" if step.destructive else ""
        steps.add_row(
            str(n),
            f"{step.title or step.kind}{flag}\n[dim]{step.id}[/]",
            step.host,
            _duration(step.estimate_seconds),
            str(len(step.needs)),
        )
    print_table(steps)
    if output is not None:
        console.print(f"saved to {output}")
