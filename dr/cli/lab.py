"""``dr lab``: the built-in lab — an estate that answers like real servers, and its truth.

dr lab up --days 3            build it: hosts, mail, backups through dr's backup path
dr lab serve                  a loopback WinRM endpoint per host (what `dr run` talks to)
dr lab advance --hours 3      more mail, and the backups that fall due
dr lab break crash-store --db DB01
dr lab break fill-disk --db DB01 / unreachable --host EX2016 / expire-backups --db DB01
dr lab repair fill-disk --db DB01 / unreachable --host EX2016
dr lab break purge-messages --mailbox finance --count 3
dr lab truth --db DB01 --at 2026-11-03T10:00Z
dr lab verify --db DB01 --at 2026-11-03T10:00Z
dr lab status / dr lab down
dr lab operator ...           a person's console actions for manual steps (2000/2003)
"""

from __future__ import annotations

import shutil
import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from dr.cli.common import console, emit_json, err_console, workspace, workspace_path
from dr.cli.lab_operator import app as operator_app

app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown")
app.add_typer(
    operator_app,
    name="operator",
    help="A person's actions at a lab host's console, for a runbook's manual steps.",
)

JsonOpt = typer.Option(False, "--json", help="Machine-readable output.")
DbOpt = typer.Option(..., "--db", help="Database name (DB01) or SERVER/SG/DB.")
AtOpt = typer.Option(
    None, "--at", help="Instant, ISO 8601 (UTC unless an offset is given); default: the lab's now."
)


def _at(value: str | None, lab: Any) -> datetime:
    from dr.cli.plan import parse_at

    return parse_at(value) or lab.now()


def _lab() -> Any:
    from dr.lab.build import open_lab

    return open_lab(workspace())


@app.command("up")
def up(
    inventory: Path = typer.Option(
        None,
        "--inventory",
        help="Estate file (default: the workspace's, else examples/estate.yaml).",
    ),
    days: float = typer.Option(3.0, "--days", help="Days of mail and scheduled backups to run."),
    seed: int = typer.Option(
        2026, "--seed", help="Seed of the mail workload (same seed, same lab)."
    ),
) -> None:
    """Build the lab: a folder tree per Exchange server, mail, and its backups.

    Every backup goes through dr's own backup path (the engine over WinRM to the lab host,
    the repository, the catalog), on the lab's simulated clock: a full each day at 22:00
    UTC and incrementals every 4 hours. The workspace is pointed at the lab (`hosts:`,
    `staging:`, `repository:` in its config.yaml). Needs `DR_PASSPHRASE` for a new
    repository.

    Example: `DR_PASSPHRASE=... dr -w lab-ws lab up --days 2`
    """
    from dr.cli.demo import examples_dir
    from dr.lab.build import build

    ws = workspace_path()
    source = inventory or (ws.inventory_path() if ws.exists() else None)
    source = source or examples_dir() / "estate.yaml"
    with err_console.status("building the lab") as status:
        lab = build(
            ws.root, Path(source), days=days, seed=seed, progress=lambda text: status.update(text)
        )
    console.print(
        f"lab ready in {ws.root / 'lab'}: {', '.join(_names(lab))}; now {_stamp(lab.now())}"
    )
    console.print("next: `dr lab serve` (keep it running), then plan and `dr run start`")


@app.command("advance")
def advance(
    hours: float = typer.Option(..., "--hours", help="How far to run the lab's clock on."),
) -> None:
    """Run the lab's clock on: mail in every mounted database, and the scheduled backups
    that fall due, through dr's backup path (as `dr lab up`). Not while `dr lab serve`
    runs (it needs the endpoints' ports).

    Example: `dr -w lab-ws lab advance --hours 3`
    """
    from dr.lab.build import advance as run_clock

    ws = workspace_path()
    with err_console.status("running the lab's clock on") as status:
        lab = run_clock(ws.root, hours, progress=lambda text: status.update(text))
    console.print(f"lab clock now {_stamp(lab.now())}")


def _names(lab: Any) -> list[str]:
    return [s.name for s in lab.all_servers()]


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%MZ")


@app.command("serve")
def serve() -> None:
    """Answer WinRM on loopback for every lab host until Ctrl-C.

    The ports are the ones `dr lab up` wrote into the workspace's `hosts:`; the account
    is the lab's own (`dr lab status` shows it). Set `DR_WINRM_USER` and
    `DR_WINRM_PASSWORD` to it in the shell that runs `dr run start`.

    Example: dr lab serve
    """
    lab = _lab()
    ports = {name: int(p) for name, p in lab.state["ports"].items()}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with lab.serving(ports) as served:
        for name, port in served.items():
            console.print(f"{name:10} http://127.0.0.1:{port}/wsman")
        console.print("serving; Ctrl-C stops")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


@app.command("status")
def status(json_out: bool = JsonOpt) -> None:
    """The lab's clock, hosts, databases (mounted, state) and endpoint account.

    Example: dr lab status --json
    """
    from dr.lab import exstore
    from dr.lab.build import lab_env

    lab = _lab()
    rows = []
    for server in lab.all_servers():
        host = lab.host(server.name)
        for sg in server.storage_groups:
            for db in sg.databases:
                state = host.dbs[host.db_key(sg, db)]
                path = host.path(db.edb)
                header = exstore.read_db_header(path) if path.exists() else None
                rows.append(
                    {
                        "server": server.name,
                        "database": db.name,
                        "mounted": state.mounted,
                        "state": header.state.name if header else "missing",
                        "generation": host.streams[sg.name].current,
                    }
                )
    from dr.lab.network import Reachability

    hosts = {}
    for name in lab.endpoint_names():
        endpoint = lab.endpoint(name)
        network = Reachability(endpoint.root).read()
        if network or endpoint.fs.quotas:
            hosts[name] = {"network": network, "full_drives": sorted(endpoint.fs.quotas)}
    data = {
        "now": lab.now().isoformat(),
        "databases": rows,
        "hosts": hosts,
        "ports": lab.state["ports"],
        "account": lab_env(lab)["DR_WINRM_USER"],
        "faults": lab.state.get("faults", []),
        "password": lab.password,  # the lab's own loopback account: synthetic, never a real one
    }
    if json_out:
        emit_json(data)
        return
    console.print(
        f"lab clock {_stamp(lab.now())}; endpoint account {data['account']} "
        "(password: `dr lab status --json`)",
        highlight=False,
    )
    for name, state in hosts.items():
        network = state["network"]
        if network.get("down"):
            console.print(f"  {name:8} unreachable since {network.get('since')}", highlight=False)
        elif network:
            armed = network.get("at_command") or f"after {network.get('after')} more commands"
            console.print(f"  {name:8} drops off the network: {armed}", highlight=False)
        for drive in state["full_drives"]:
            console.print(f"  {name:8} drive {drive}: full", highlight=False)
    for row in rows:
        mounted = "mounted" if row["mounted"] else "dismounted"
        console.print(
            f"  {row['server']:8} {row['database']:28} {mounted:10} {row['state']:15} "
            f"gen {row['generation']}",
            highlight=False,
        )


@app.command("down")
def down(yes: bool = typer.Option(False, "--yes", help="Do not ask.")) -> None:
    """Remove the lab's folders (the workspace's catalog and repository stay).

    Example: dr lab down --yes
    """
    from dr.lab.build import lab_dir

    directory = lab_dir(workspace())
    if not yes and not typer.confirm(f"remove {directory}?"):
        raise typer.Exit(1)
    shutil.rmtree(directory)
    console.print(f"removed {directory}")


@app.command("truth")
def truth(db: str = DbOpt, at: str | None = AtOpt, json_out: bool = JsonOpt) -> None:
    """The messages database DB held at an instant, from the lab's ground truth.

    Example: dr lab truth --db DB01 --at 2026-11-02T14:00Z
    """
    lab = _lab()
    when = _at(at, lab)
    held = lab.truth(db, when)
    if json_out:
        emit_json(
            {"database": db, "at": when.isoformat(), "messages": [m.row() for m in held.values()]}
        )
        return
    console.print(f"{db} at {_stamp(when)}: {len(held)} messages", highlight=False)
    for message in sorted(held.values(), key=lambda m: (m.mailbox, m.folder, m.id)):
        console.print(
            f"  {message.mailbox:12} {message.folder:12} {message.id}  {message.subject}",
            highlight=False,
        )


@app.command("verify")
def verify(
    db: str | None = typer.Option(None, "--db", help="Database name (DB01) or SERVER/SG/DB."),
    at: str | None = AtOpt,
    host: str | None = typer.Option(None, "--host", help="Host holding the restored file."),
    mailbox: str | None = typer.Option(
        None, "--mailbox", help="A mailbox restore: the mailbox (alias) that received it."
    ),
    folder: str = typer.Option(
        "Recovered Items", "--folder", help="With --mailbox: the folder the restore wrote under."
    ),
    deleted_by: str | None = typer.Option(
        None,
        "--deleted-by",
        help="With --mailbox: judge only the messages held at --at and deleted by this "
        "instant (a message restore).",
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Prove a restore equal to the ground truth at --at.

    With --db: the database file on its host (or --host) holds every message, in its
    folder, and nothing else. With --mailbox: the copies a mailbox restore put under
    --folder are the mailbox as it was. With --mailbox and --deleted-by (a message
    restore): every message the mailbox held at --at and had lost by --deleted-by is back
    under --folder, in its folder. Exit 0 when equal; exit 3 naming every message that
    differs otherwise.

    Example: dr lab verify --db DB01 --at 2026-11-02T14:00Z
    """
    from dr.errors import ParameterError, TruthMismatch

    lab = _lab()
    if (db is None) == (mailbox is None):
        raise ParameterError("give --db or --mailbox", hint="`dr lab verify --help`")
    if deleted_by is not None and mailbox is None:
        raise ParameterError("--deleted-by goes with --mailbox", hint="`dr lab verify --help`")
    when = _at(at, lab)
    if mailbox:
        by = _at(deleted_by, lab) if deleted_by is not None else None
        verdict = lab.verify_mailbox(mailbox, when, folder, by)
    else:
        verdict = lab.verify(db, when, host)
    if json_out:
        emit_json(verdict.as_dict())
    else:
        word = "[green]equal[/]" if verdict.equal else "[bold red]DIFFERENT[/]"
        console.print(
            f"{verdict.database} against the truth at {_stamp(verdict.at)}: {word} "
            f"({verdict.found} messages, {verdict.expected} expected)"
        )
        for label, items in (("missing", verdict.missing), ("extra", verdict.extra)):
            for m in items:
                console.print(
                    f"  {label}: {m.mailbox} {m.folder} {m.id} {m.subject}", highlight=False
                )
        for want, got in verdict.moved:
            console.print(
                f"  in {got.folder}, should be in {want.folder}: {want.mailbox} {want.id}",
                highlight=False,
            )
    if not verdict.equal:
        raise TruthMismatch(
            f"{verdict.database} differs from the ground truth at {_stamp(verdict.at)}: "
            f"{len(verdict.missing)} missing, {len(verdict.extra)} extra, "
            f"{len(verdict.moved)} in the wrong folder",
            hint="the restore did not reach this point, or brought back the wrong data",
            details=verdict.as_dict(),
        )


@app.command("exec")
def exec_(
    host: str = typer.Argument(..., help="Lab host, e.g. EX2016."),
    script: str = typer.Argument(..., help="PowerShell (or, with --cmd, a cmd.exe line)."),
    cmd: bool = typer.Option(False, "--cmd", help="Run it as a cmd.exe command line."),
) -> None:
    """Run a command on a lab host, as a responder would at its console, and print what it says.

    Example (the listing `dr plan database --server-logs` reads):
    `dr lab exec EX2016 "Set-Location -LiteralPath 'F:\\ExchangeLogs\\DB01'; eseutil /ml E00"`.
    Exits with the command's exit code.
    """
    import sys

    target = _console(_lab(), host)
    code = 0
    output = target(script, b"", "cmd" if cmd else "powershell")
    try:
        while True:
            stream, data = next(output)
            (sys.stdout if stream == "stdout" else sys.stderr).buffer.write(data)
    except StopIteration as stop:
        code = int(stop.value or 0)
    sys.stdout.flush()
    if code:
        raise typer.Exit(code if 0 < code < 256 else 1)


def _console(lab: Any, name: str) -> Any:
    """The host whose console `dr lab exec` types at; a domain controller in DSRM only once
    its DSRM administrator has signed in there (`dr lab operator dsrm-sign-in`)."""
    from dr.errors import LabError

    if not any(s.name.lower() == name.lower() for s in lab.domain_controllers()):
        return lab.host(name)
    dc = lab.dc(name)
    state = dc.load()
    if not state.machine.present:
        raise LabError(f"{dc.name} is not there")
    if state.mode == "dsrm" and not state.console:
        raise LabError(
            f"{dc.name} is in Directory Services Restore Mode and nobody is signed in at its "
            "console: only the DSRM administrator can sign in",
            hint=f"dr lab operator dsrm-sign-in --host {dc.name} (the DSRM password from "
            "the place the runbook names)",
        )
    return dc


FAULTS = ("crash-store", "corrupt-page", "lose-database", "delete-log", "swap-log",
          "purge-messages")  # fmt: skip
OTHER_FAULTS = ("fill-disk", "unreachable", "expire-backups")


@app.command("break")
def break_(
    kind: str = typer.Argument(
        ...,
        help="crash-store | corrupt-page | lose-database | delete-log | swap-log (with --db); "
        "purge-messages (with --mailbox); lose-server | delete-computer-account (with --host); "
        "fill-disk (--host and --drive, or --db) | unreachable (--host) | expire-backups (--db); "
        "lose-dc (--host) | delete-object (--dn or --user)",
    ),
    db: str | None = typer.Option(
        None, "--db", help="The database (or the database whose stream, drive, backups) to break."
    ),
    host: str | None = typer.Option(
        None,
        "--host",
        help="The server, e.g. EX2016 (lose-server, delete-computer-account, "
        "fill-disk, unreachable).",
    ),
    generation: int | None = typer.Option(
        None, "--gen", help="delete-log / swap-log: the generation."
    ),
    mailbox: str | None = typer.Option(
        None, "--mailbox", help="purge-messages: the mailbox (alias) whose messages go."
    ),
    count: int = typer.Option(3, "--count", help="purge-messages: how many (the oldest)."),
    drive: str | None = typer.Option(None, "--drive", help="fill-disk: the drive letter (E)."),
    after: int | None = typer.Option(
        None,
        "--after-commands",
        help="unreachable: answer N more commands, then drop during the next (it runs; its "
        "answer is lost). A step runs its command, then its check.",
    ),
    at_command: str | None = typer.Option(
        None,
        "--at-command",
        help="unreachable: drop during the first command matching this regular expression "
        "(case-insensitive), e.g. 'eseutil\\S* /r'; it runs, its answer is lost.",
    ),
    at_step: str | None = typer.Option(
        None,
        "--at-step",
        help="unreachable, with --plan: drop during this step of the plan (its id, or its kind "
        "when the plan has one such step): its command runs, its answer is lost.",
    ),
    plan_file: Path | None = typer.Option(
        None, "--plan", help="unreachable --at-step: the plan (saved by `dr plan ... -o`)."
    ),
    before: str | None = typer.Option(
        None, "--before", help="expire-backups: only backups started before this instant."
    ),
    dn: str | None = typer.Option(
        None, "--dn", help="delete-object: the object's distinguished name."
    ),
    user: str | None = typer.Option(
        None, "--user", help="delete-object: the user with this alias (mailNickname)."
    ),
    lost: bool = typer.Option(
        False,
        "--lost",
        help="expire-backups: the repository lost them (a lost tape); the catalog still "
        "lists them.",
    ),
) -> None:
    """Break something, as a failure would; the lab records it.

    `crash-store` stops the store with DB attached (Dirty Shutdown); `corrupt-page` also
    damages one of its pages (eseutil /k finds it, mount refuses it); `lose-database`
    removes its .edb; `delete-log` deletes a log generation on the server; `swap-log`
    replaces one with a log of another stream (another log signature). `purge-messages
    --mailbox M [--count N]` deletes the N oldest messages of mailbox M and purges them
    (past Recoverable Items): only a backup brings them back.

    `lose-server` takes a whole server away with its disks: nothing answers at its address
    until it is rebuilt (`dr plan server`, and `dr lab operator install-windows` for the
    person's part); `delete-computer-account` deletes its account in the directory, which
    Exchange setup's recovery mode then refuses.

    `fill-disk --host H --drive E` (or `--db DB`: its database's drive) leaves the drive no
    free space: copies onto it fail as on Windows. `unreachable --host H` takes the host off
    the network, at once or mid-run (`--after-commands N`, `--at-command REGEX`, or
    `--at-step STEP --plan PLAN`: during that step's command).
    `dr lab repair fill-disk|unreachable` undoes either. `expire-backups --db DB [--before T]`
    expires DB's backups in the catalog, as retention would; with `--lost`, the repository
    loses them and the catalog still lists them.

    `lose-dc --host DC2016` leaves a domain controller's directory database unusable
    (NTDS does not start; its local backup catalog is lost with it); `delete-object --dn
    DN` (or `--user ALIAS`) deletes a directory object by mistake, and the deletion
    replicates to every domain controller that runs.

    Examples: `dr lab break lose-server --host EX2016`;
    `dr lab break unreachable --at-step soft-recovery --plan plan.json`
    """
    from dr.errors import LabError
    from dr.lab import faults

    lab = _lab()
    if kind == "lose-dc":
        if not host:
            raise LabError("lose-dc needs --host", hint="e.g. --host DC2016")
        said = faults.lose_dc(lab, host)
    elif kind == "delete-object":
        said = faults.delete_object(lab, dn, user)
    elif kind in faults.HOST_FAULTS:
        if not host:
            raise LabError(f"{kind} needs --host", hint="e.g. --host EX2016")
        said = faults.apply_host(lab, kind, host)
    elif kind == "purge-messages":
        if mailbox is None:
            raise LabError("say whose messages: --mailbox ALIAS")
        said = faults.purge_messages(lab, mailbox, count)
    elif kind in FAULTS:
        if db is None:
            raise LabError(f"say which database {kind} breaks: --db DB")
        said = faults.apply(lab, kind, db, generation)
    elif kind == "fill-disk":
        said = faults.fill_disk(lab, host, drive, db)
    elif kind == "unreachable":
        step = _plan_step(at_step, plan_file, host) if at_step or plan_file else None
        host = host or (step[0] if step else None)
        if not host:
            raise LabError("unreachable needs --host", hint="e.g. --host EX2016")
        said = faults.unreachable(lab, host, after, at_command, step[1:] if step else None)
    elif kind == "expire-backups":
        said = faults.expire_backups(
            lab, workspace().catalog_path, _repository(), _need_db(db), _before(before), lost
        )
    else:
        known = FAULTS + faults.HOST_FAULTS + OTHER_FAULTS + faults.DC_FAULTS
        raise LabError(f"unknown fault {kind!r}", hint="one of: " + ", ".join(known))
    console.print(said, highlight=False)


def _plan_step(step: str | None, plan_file: Path | None, host: str | None) -> tuple[str, str, str]:
    """(host, step id, the script its command sends) of a step of a saved plan, rendered
    through the step library as `dr run start` renders it."""
    from dr.errors import LabError

    if not step or plan_file is None:
        raise LabError("--at-step needs --plan PLAN, and --plan needs --at-step STEP")
    from dr.cli.run import _specs
    from engine.plan import load_plan

    plan = load_plan(plan_file, allow_unsealed=True)
    specs = _specs(plan, ())
    found = [s for s in plan.steps if s.id == step] or [
        s for s in plan.steps if s.kind == step and (host is None or s.host.lower() == host.lower())
    ]
    if len(found) != 1:
        ids = [s.id for s in plan.steps if s.kind == step]
        raise LabError(
            f"{plan_file}: {'no step' if not found else 'more than one step'} {step!r}",
            hint=("name one by its id: " + ", ".join(ids))
            if ids
            else "the plan's steps are its `steps` list (their `id` and `kind`)",
        )
    spec = specs[found[0].id]
    if spec.command is None or spec.command.shell == "posix" or spec.host == "orchestrator":
        raise LabError(f"{found[0].id} sends no command to a host (it runs {spec.action})")
    if host and spec.host.lower() != host.lower():
        raise LabError(f"{found[0].id} runs on {spec.host}, not {host}")
    return spec.host, found[0].id, spec.command.script


def _need_db(db: str | None) -> str:
    from dr.errors import LabError

    if db is None:
        raise LabError("say which database: --db DB", hint="`dr lab status` lists them")
    return db


def _before(value: str | None) -> datetime | None:
    from dr.cli.common import parse_instant

    return parse_instant(value, "--before")


def _repository() -> Path | None:
    recorded = workspace().config().get("repository")
    return Path(recorded) if recorded else None


@app.command("repair")
def repair(
    kind: str = typer.Argument(..., help="fill-disk | unreachable"),
    host: str | None = typer.Option(None, "--host", help="The host."),
    drive: str | None = typer.Option(None, "--drive", help="fill-disk: the drive letter."),
    db: str | None = typer.Option(None, "--db", help="fill-disk: the database's drive."),
) -> None:
    """Undo a fault a responder fixes on site: `fill-disk` (the space is back) or
    `unreachable` (the host answers again; a running `dr lab serve` listens within a
    second). Then `dr run ack RUN STEP --decision retry` and `dr run resume RUN`.

    Example: `dr lab repair unreachable --host EX2016`
    """
    from dr.lab import faults

    console.print(faults.repair(_lab(), kind, host, drive, db), highlight=False)
