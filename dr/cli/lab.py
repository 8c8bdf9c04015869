"""``dr lab``: the built-in lab — an estate that answers like real servers, and its truth.

dr lab up --days 3            build it: hosts, mail, backups through dr's backup path
dr lab serve                  a loopback WinRM endpoint per host (what `dr run` talks to)
dr lab advance --hours 3      more mail, and the backups that fall due
dr lab break crash-store --db DB01
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
    data = {
        "now": lab.now().isoformat(),
        "databases": rows,
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

    target = _lab().host(host)
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


FAULTS = ("crash-store", "corrupt-page", "lose-database", "delete-log", "swap-log",
          "purge-messages")  # fmt: skip


@app.command("break")
def break_(
    kind: str = typer.Argument(
        ...,
        help="crash-store | corrupt-page | lose-database | delete-log | swap-log (with --db); "
        "purge-messages (with --mailbox); lose-server | delete-computer-account (with --host)",
    ),
    db: str | None = typer.Option(
        None, "--db", help="The database (or the database whose stream) to break."
    ),
    host: str | None = typer.Option(
        None, "--host", help="lose-server / delete-computer-account: the server, e.g. EX2016."
    ),
    generation: int | None = typer.Option(
        None, "--gen", help="delete-log / swap-log: the generation."
    ),
    mailbox: str | None = typer.Option(
        None, "--mailbox", help="purge-messages: the mailbox (alias) whose messages go."
    ),
    count: int = typer.Option(3, "--count", help="purge-messages: how many (the oldest)."),
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

    Example: `dr lab break lose-server --host EX2016`
    """
    from dr.errors import LabError
    from dr.lab import faults

    lab = _lab()
    if kind in faults.HOST_FAULTS:
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
    else:
        raise LabError(
            f"unknown fault {kind!r}", hint="one of: " + ", ".join(FAULTS + faults.HOST_FAULTS)
        )
    console.print(said, highlight=False)
