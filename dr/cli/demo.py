"""`dr demo`: the whole path on the example estate, with the commands shown as it goes.

Every step is a real `dr` command run in-process against a fresh workspace in the demo
directory, printed first (`$ dr ...`) so a reader can run it again by hand.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import typer

from dr.cli.common import console

MARKER = ".dr-demo"
PIT_TARGET = "2024-05-15T11:40Z"  # a Wednesday: full, differential, then incrementals
GAP_TARGET = "2024-05-14T12:00Z"  # inside the deliberate E01 log gap (docs/catalog.md)
NOW = "2024-05-19T21:00Z"  # the end of the example history
DEMO_PASSPHRASE = "demo passphrase: never use a known passphrase for real backups"
PAGE = 8192


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
    for name in ("estate.yaml", "history.json"):
        shutil.copy2(examples_dir() / name, directory / name)
    return directory


def invoke(args: list[str], expect: int = 0) -> int:
    """Run one dr command in-process, showing it first; return its exit code."""
    from dr.cli import _print_error, app
    from dr.errors import DrError
    from engine.errors import EngineError

    shown = " ".join(a if " " not in a else f'"{a}"' for a in args)
    console.print(f"\n[bold cyan]$ dr {shown}[/]", highlight=False)
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

        raise Failure(f"demo step `dr {shown}` exited {code}, expected {expect}")
    if expect:
        console.print(f"[dim](exit {code}, as expected)[/]")
    return code


def section(title: str, text: str) -> None:
    console.rule(f"[bold]{title}")
    console.print(text, highlight=False)


def command(
    directory: Path = typer.Option(
        Path("dr-demo"),
        "--dir",
        help="Where the demo keeps its workspace, plan, runbooks and run journal "
        "(recreated on each run; default ./dr-demo).",
    ),
) -> None:
    """Run the whole path on the example estate (Contoso: Exchange 2003 and 2016).

    Validates the estate, imports a fortnight of its backup history, lists it, plans a
    point-in-time restore, shows a refusal, renders the runbook and runs the plan with the
    dry-run transport. Each step prints the dr command it runs.
    """
    base = prepare(directory.resolve())
    os.environ["DR_WORKSPACE"] = str(base / "ws")
    os.environ["DR_KEY_DIR"] = str(base / "keys")  # the demo's key stays in the demo folder
    os.environ["DR_PASSPHRASE"] = DEMO_PASSPHRASE
    os.environ.pop("DR_REPOSITORY", None)
    os.environ.setdefault("DR_OPERATOR", "demo-operator")
    rel = os.path.relpath(base)
    for chapter in CHAPTERS:
        chapter(rel)
    finish(rel)


def estate(rel: str) -> None:
    section(
        "1. The estate",
        "Contoso runs an Exchange 2003 server (two storage groups, .edb + .stm), an Exchange "
        "2016 server (one log stream per database), domain controllers, a CA, KMS, and an "
        "isolated recovery forest. dr checks the file before it trusts it.",
    )
    invoke(["inventory", "validate", f"{rel}/estate.yaml"])
    invoke(["init", "--inventory", f"{rel}/estate.yaml"])


def history(rel: str) -> None:
    section(
        "2. What was backed up",
        "A fortnight of backup runs taken by other tools is imported: nightly fulls, log "
        "incrementals every 15 minutes (2016) or hour (2003), weekly differentials, a copy, "
        "system state, metabase, KMS, CA. Each is checked against the Exchange backup rules.",
    )
    invoke(["catalog", "import", f"{rel}/history.json"])
    invoke(["catalog", "list", "--set", "ex2016-exchange", "--last", "6"])
    invoke(["schedule", "due", "--at", NOW])
    invoke(["retention", "plan", "--set", "ex2003-exchange", "--at", NOW])


def planning(rel: str) -> None:
    section(
        "3. A point-in-time restore, planned",
        f"Database DB01 on EX2016 back to {PIT_TARGET}: the planner picks the full, the "
        "differential and incremental log backups, computes the exact recoverable point and "
        "the time it will take, against the SLA.",
    )
    invoke(["plan", "database", "--db", "DB01", "--at", PIT_TARGET, "-o", f"{rel}/plan.json"])
    section(
        "4. A restore that cannot be done as asked",
        "The Sales Store on EX2003 lost log generations on 2024-05-14. A target inside that "
        "gap is refused, with the missing generations and the nearest recoverable points.",
    )
    invoke(["plan", "database", "--db", "Sales Store", "--at", GAP_TARGET], expect=3)
    invoke(["graph", "gaps"], expect=3)


def runbook(rel: str) -> None:
    section(
        "5. The runbook a responder follows",
        "Rendered from the saved plan: exact commands, expected output, decision points, "
        "sign-off lines and the plan as a picture. The HTML is one self-contained file.",
    )
    invoke(["runbook", "render", f"{rel}/plan.json", "-o", f"{rel}/runbook.md"])
    invoke(["runbook", "render", f"{rel}/plan.json", "-o", f"{rel}/runbook.html"])


def execution(rel: str) -> None:
    section(
        "6. The plan, run (dry run)",
        "The engine runs the same saved plan: independent steps in parallel, storage-group "
        "locks, every transition journaled before it happens. The dry-run transport records "
        "each command instead of sending it.",
    )
    invoke(["run", "start", f"{rel}/plan.json", "--dry-run", "--non-interactive"])
    invoke(["run", "status"])


def store(rel: str) -> None:
    section(
        "7. Keeping the backups: the artifact repository",
        "dr keeps its own encrypted, deduplicated copy of what it will restore from. A 32 MiB "
        "database of 8 KiB pages is backed up, 1 % of its pages change, and the next "
        "version stores only those pages (the in-file delta). Then the version is fetched "
        "back exactly as a restore plan's first step does, and compared with the source.",
    )
    host = Path(rel) / "EX2016" / "Databases"
    database = make_database(host / "DB01.edb", pages=4096)
    invoke(["store", "init", f"{rel}/repo"])
    invoke(["set", "add", "ex2016-db-files", "--host", "EX2016", "--type", "files",
            "--covers", "E:\\Databases"])  # fmt: skip
    invoke(["backup", "run", "ex2016-db-files", "--from", str(host), "--blocks", "*.edb"])
    change_pages(database, percent=1)
    invoke(["backup", "run", "ex2016-db-files", "--from", str(host), "--blocks", "*.edb"])
    invoke(["store", "ls"])
    invoke(["store", "verify", "--read-data"])
    run = latest_run("ex2016-db-files")
    invoke(["store", "fetch", run, "--to", f"{rel}/staging"])
    same = sha256(database) == sha256(Path(rel) / "staging" / run / "DB01.edb")
    verdict = "[green]identical[/]" if same else "[bold red]DIFFERENT[/]"
    console.print(f"fetched DB01.edb against the source: {verdict} (SHA-256)")
    if not same:
        from dr.errors import IntegrityError

        raise IntegrityError("the demo's restored database differs from its source")


def make_database(path: Path, pages: int) -> Path:
    """A database-like file: pages of compressible records, deterministic."""
    import random

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2024)
    with open(path, "wb") as fh:
        for number in range(pages):
            fh.write(_page(number, rng))
    return path


def _page(number: int, rng: object) -> bytes:
    import random

    assert isinstance(rng, random.Random)
    record = f"page {number:08d} mailbox item {rng.randrange(10**9):09d} ".encode()
    return (record * (PAGE // len(record) + 1))[:PAGE]


def change_pages(path: Path, percent: float) -> None:
    import random

    rng = random.Random(7)
    pages = path.stat().st_size // PAGE
    with open(path, "r+b") as fh:
        for number in rng.sample(range(pages), max(1, int(pages * percent / 100))):
            fh.seek(number * PAGE)
            fh.write(_page(number, rng))


def latest_run(set_name: str) -> str:
    from dr.catalog import Catalog
    from dr.cli.common import workspace

    with Catalog.open(workspace().catalog_path) as catalog:
        return f"run-{max(r.id for r in catalog.runs(set_name=set_name))}"


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


CHAPTERS: list[Callable[[str], None]] = [estate, history, planning, runbook, execution, store]


def finish(rel: str) -> None:
    console.rule("[bold]Where to look")
    console.print(
        f"  plan            {rel}/plan.json\n"
        f"  runbook         {rel}/runbook.md, {rel}/runbook.html\n"
        f"  workspace       {rel}/ws (catalog.sqlite, journal.sqlite)\n"
        f"  repository      {rel}/repo (key file in {rel}/keys)\n"
        f"  run log         dr -w {rel}/ws run status; dr -w {rel}/ws run log RUN STEP",
        highlight=False,
    )
