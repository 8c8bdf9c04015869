"""`dr demo`: a real restore on the built-in lab, with the commands shown as it goes.

Every step is a real `dr` command run in-process against a fresh workspace in the demo
directory, printed first (`$ dr ...`) so a reader can run it again by hand. The lab's
servers answer over WinRM on loopback while the plan runs, so the engine, pywinrm and the
lab's PowerShell interpreter all do their real work; the restored database is then
compared, message by message, with the lab's ground truth.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from dr.cli.common import console

MARKER = ".dr-demo"
DEMO_PASSPHRASE = "demo passphrase: never use a known passphrase for real backups"
DAYS = 7  # a week of mail and backups (about a minute on 2 cores; docs/performance.md)


def examples_dir() -> Path:
    """The shipped examples: dr/_data/examples in a wheel, examples/ in a checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_data" / "examples"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "examples"


def prepare(directory: Path) -> Path:
    """An empty demo directory; refuses to clear a directory the demo did not make."""
    from dr.errors import ParameterError

    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise ParameterError(
                f"{directory} exists and was not made by `dr demo`",
                hint="pass --dir with a new or empty directory",
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("made by dr demo; safe to delete\n", encoding="utf-8")
    shutil.copy2(examples_dir() / "estate.yaml", directory / "estate.yaml")
    return directory


def shown(args: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in args)


def invoke(args: list[str], expect: int = 0) -> int:
    """Run one dr command in-process, showing it first; return its exit code."""
    from dr.cli import _print_error, app
    from dr.errors import DrError
    from engine.errors import EngineError

    console.print(f"\n[bold cyan]$ dr {shown(args)}[/]", highlight=False)
    try:
        returned = app(args=args, prog_name="dr", standalone_mode=False)
        code = returned if isinstance(returned, int) else 0  # typer.Exit(n) comes back as n
    except (DrError, EngineError) as exc:
        _print_error(exc.lines())
        code = exc.exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    if code != expect:
        from dr.errors import DrError as Failure

        raise Failure(f"demo step `dr {shown(args)}` exited {code}, expected {expect}")
    if expect:
        console.print(f"[dim](exit {code}, as expected)[/]")
    return code


def section(title: str, text: str) -> None:
    console.rule(f"[bold]{title}")
    console.print(text, highlight=False)


class Demo:
    """The demo's state between chapters: where things are, what was planned and measured."""

    def __init__(self, base: Path, days: int) -> None:
        self.base, self.days = base, days
        self.rel = os.path.relpath(base)
        self.started = time.monotonic()
        self.plan: dict[str, Any] = {}
        self.run_seconds = 0.0
        self.lab: Any = None

    def path(self, name: str) -> str:
        return f"{self.rel}/{name}"

    def open_lab(self) -> Any:
        from dr.lab.estate import Lab

        self.lab = Lab.open(self.base / "ws" / "lab")
        return self.lab

    def at(self, hours: float) -> str:
        start = datetime.fromisoformat(self.open_lab().state["start"])
        return (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%MZ")


def command(
    directory: Path = typer.Option(
        Path("dr-demo"),
        "--dir",
        help="Where the demo keeps its workspace, lab, plan, runbooks and run journal "
        "(recreated on each run; default ./dr-demo).",
    ),
    days: int = typer.Option(DAYS, "--days", help="Days of mail and backups the lab runs."),
    keep: bool = typer.Option(
        True, "--keep/--no-keep", help="Keep the demo directory afterwards (default: keep)."
    ),
) -> None:
    """Restore a damaged Exchange 2016 database to a point in time, for real, on the lab.

    Builds the lab from the example estate (Contoso: Exchange 2003 and 2016), runs days of
    mail with nightly fulls and 4-hourly incrementals taken through dr's own backup path,
    damages database DB01, plans a point-in-time restore from the catalog, renders the
    runbook, executes it over WinRM against the lab, and proves the restored database equal
    to the lab's ground truth; then drills DB02 into the recovery forest and verifies the
    drill's signed evidence. Each step prints the dr command it runs.
    """
    base = prepare(directory.resolve())
    os.environ["DR_WORKSPACE"] = str(base / "ws")
    os.environ["DR_KEY_DIR"] = str(base / "keys")  # the demo's keys stay in the demo folder
    os.environ["DR_PASSPHRASE"] = DEMO_PASSPHRASE
    os.environ.pop("DR_REPOSITORY", None)
    os.environ.setdefault("DR_OPERATOR", "demo-operator")
    demo = Demo(base, days)
    for chapter in CHAPTERS:
        chapter(demo)
    finish(demo)
    if not keep:
        shutil.rmtree(base)


def estate(demo: Demo) -> None:
    section(
        "1. The estate",
        "Contoso runs an Exchange 2003 server (two storage groups, .edb + .stm), an Exchange "
        "2016 server (one log stream per database), domain controllers, a CA, KMS, and an "
        "isolated recovery forest. dr checks the file before it trusts it.",
    )
    invoke(["inventory", "validate", demo.path("estate.yaml")])


def lab_up(demo: Demo) -> None:
    section(
        "2. The lab: servers that answer like real ones",
        f"Each Exchange server becomes a folder tree with ESE-format databases and logs. "
        f"{demo.days} days of mail are delivered, moved and deleted on a simulated clock, and "
        "every backup (a full each night, incrementals every 4 hours) is taken by dr over "
        "WinRM, stored encrypted in the repository and recorded in the catalog.",
    )
    invoke(["lab", "up", "--inventory", demo.path("estate.yaml"), "--days", str(demo.days)])
    invoke(["catalog", "list", "--set", "ex2016-exchange", "--last", "4"])


def failure(demo: Demo) -> None:
    section(
        "3. The failure",
        "The store on EX2016 stops with DB01 attached and one of its pages damaged. Mail "
        "since the last backup is in logs the responder decides not to trust: the incident "
        "owner asks for DB01 as it was at 15:00 on the last day.",
    )
    invoke(["lab", "break", "corrupt-page", "--db", "DB01"])
    invoke(["lab", "status"])


def planning(demo: Demo) -> None:
    target = demo.at((demo.days - 1) * 24 + 9)  # the last day, 15:00 UTC: between incrementals
    section(
        "4. A point-in-time restore, planned from the catalog",
        f"DB01 back to {target}: the planner picks the full and the incremental log backups, "
        "computes the exact recoverable point, the data-loss window and the time it will "
        "take, against the SLA.",
    )
    plan_file = demo.path("plan.json")
    invoke(["plan", "database", "--db", "DB01", "--at", target, "-o", plan_file])
    demo.plan = json.loads(Path(plan_file).read_text(encoding="utf-8"))
    section("5. A restore that cannot be done as asked", "Before the first full, nothing can be.")
    invoke(["plan", "database", "--db", "DB01", "--at", demo.at(-1)], expect=3)


def runbook(demo: Demo) -> None:
    section(
        "6. The runbook a responder follows",
        "Rendered from the saved plan: exact commands, expected output, decision points, "
        "sign-off lines and the plan as a picture. The HTML is one self-contained file.",
    )
    invoke(["runbook", "render", demo.path("plan.json"), "-o", demo.path("runbook.md")])
    invoke(["runbook", "render", demo.path("plan.json"), "-o", demo.path("runbook.html")])


def execution(demo: Demo) -> None:
    from dr.lab.build import lab_env

    section(
        "7. The plan, run against the lab over WinRM",
        "The engine runs the saved plan: dr fetches the backups from its repository to the "
        "host's staging folder, then every host step is sent over WinRM to EX2016, where the "
        "lab parses and runs the PowerShell it receives. Every transition is journaled "
        "before it happens; when the run ends its record is signed with a key kept beside "
        "the workspace.",
    )
    lab = demo.open_lab()
    ports = {name: int(p) for name, p in lab.state["ports"].items()}
    os.environ.update(lab_env(lab))
    invoke(["evidence", "keygen"])  # the run's record is signed when it ends
    began = time.monotonic()
    with lab.serving(ports):
        invoke(["run", "start", demo.path("plan.json"), "--non-interactive"])
    demo.run_seconds = time.monotonic() - began
    invoke(["run", "status"])


def proof(demo: Demo) -> None:
    point = demo.plan["recoverable_point"]
    section(
        "8. The proof",
        "The lab knows which messages existed at every instant. The restored DB01 is "
        f"compared with that truth at the plan's recoverable point, {point}.",
    )
    invoke(["lab", "verify", "--db", "DB01", "--at", point])


def drill(demo: Demo) -> None:
    section(
        "9. The six-monthly drill, with evidence an auditor can check",
        "Every database must be restored to an alternate server at least once every six "
        "months. DB02 is drilled into the isolated recovery forest: restored on RX2016 from "
        "its backups, its header, mount, every mailbox's item count (as the backup counted "
        "them) and a seeded sample checked there, compared with the lab's truth, then "
        "removed. The run's record is signed (Ed25519, DSSE) and verified offline.",
    )
    lab = demo.open_lab()
    ports = {name: int(p) for name, p in lab.state["ports"].items()}
    with lab.serving(ports):
        invoke(["drill", "run", "DB02"])
    invoke(["drill", "due"])
    invoke(["evidence", "verify", demo.path("ws/evidence")])


CHAPTERS: list[Callable[[Demo], None]] = [
    estate,
    lab_up,
    failure,
    planning,
    runbook,
    execution,
    proof,
    drill,
]


def _duration(seconds: float | None) -> str:
    from engine.units import duration

    return duration(seconds)


def finish(demo: Demo) -> None:
    plan = demo.plan
    sla = plan.get("sla") or {}
    loss = plan.get("data_loss_window_seconds")
    rpo, rto = sla.get("rpo_seconds"), sla.get("rto_seconds")
    console.rule("[bold]What happened")
    console.print(
        f"  target            {plan['target']['at']}\n"
        f"  recoverable point {plan['recoverable_point']} (reached: DB01 equals the truth)\n"
        f"  data lost         {_duration(loss)} of mail before the target"
        f"{'' if rpo is None else f' (SLA RPO {_duration(rpo)})'}\n"
        f"  RTO               planned {_duration(plan.get('rto_estimate_seconds'))}"
        f"{'' if rto is None else f' (SLA {_duration(rto)})'}; the lab run took "
        f"{_duration(demo.run_seconds)} (the lab's files are small)\n"
        f"  demo              {_duration(time.monotonic() - demo.started)} in all",
        highlight=False,
    )
    console.rule("[bold]Where to look")
    console.print(
        f"  plan            {demo.path('plan.json')}\n"
        f"  runbook         {demo.path('runbook.md')}, {demo.path('runbook.html')}\n"
        f"  workspace       {demo.path('ws')} (catalog.sqlite, journal.sqlite, config.yaml)\n"
        f"  lab             {demo.path('ws/lab')} (hosts/, truth/); `dr lab status`\n"
        f"  repository      {demo.path('ws/repository')} (key file in {demo.path('keys')})\n"
        f"  run log         dr -w {demo.path('ws')} run status; dr -w {demo.path('ws')} run "
        "log RUN STEP\n"
        f"  drills          dr -w {demo.path('ws')} drill history; evidence in "
        f"{demo.path('ws/evidence')} (`dr evidence verify`)",
        highlight=False,
    )
