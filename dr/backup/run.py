"""Take a backup on the set's host: refuse early, run the procedure, fetch, store, record.

Order, each stage only after the one before succeeded:

1. **admit** — the Exchange rules (:func:`dr.exchange.rules.admit`) against the catalog's
   history, with circular logging as the inventory records it: a refused incremental is
   refused here, before any transport is opened or any command sent;
2. **reach** — one probe command, so a wrong password is one clear error (exit 9);
3. **run** — the plan of :mod:`dr.backup.procedure` through the engine's runner (journal,
   retries, timeouts, redaction); the host's own check of circular logging runs first;
4. **fetch** — every file the host listed, through the transport, into a private staging
   directory, each checked against the SHA-256 the host computed;
5. **admit again** with the real log ranges and signatures, then **store** (the store's
   "back up from a local path" code) and **record** the run with its artifacts: header
   facts from ``eseutil /mh``, log ranges and signatures, sizes and digests.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dr.errors import (
    CircularLoggingViolation,
    IntegrityError,
    RunError,
    ToolOutputError,
)
from dr.suggest import suggest
from engine.transports.base import Command, Transport

if TYPE_CHECKING:
    from dr.catalog import Catalog, NewArtifact, NewRun
    from dr.model.inventory import Inventory
    from dr.model.sets import BackupSet
    from dr.store.repository import Repository
    from engine.journal import Journal
    from engine.plan import Plan

TransportFactory = Callable[[str], Transport]
Progress = Callable[[int], None]
PROBE = "Write-Output 'dr-probe'"


@dataclass(frozen=True)
class BackupContext:
    """Everything a remote backup touches, opened by the caller (the CLI or a test)."""

    inventory: Inventory
    catalog: Catalog
    repo: Repository
    journal: Journal
    transports: TransportFactory
    environ: Mapping[str, str]
    by: str = "dr backup"
    compression: str | None = None
    staging: Path | None = None
    clock: Callable[[], datetime] = field(
        default=lambda: datetime.now(UTC)
    )  # the lab's is simulated


@dataclass(frozen=True)
class BackupResult:
    run_id: int
    engine_run: str
    version: str
    backup_type: str
    files: int
    size: int
    stored: int


@dataclass(frozen=True)
class Fetched:
    """One file the host produced, now in staging: which part of the plan it belongs to."""

    part: dict[str, Any]
    rel: str
    path: Path
    size: int
    sha256: str


def run_remote_backup(
    ctx: BackupContext, bset: BackupSet, backup_type: str, progress: Progress | None = None
) -> BackupResult:
    """Take ``backup_type`` of ``bset`` on its host and keep it; see the module docstring."""
    from dr.backup.procedure import backup_plan

    plan = backup_plan(ctx.inventory, bset, backup_type)  # type: ignore[arg-type]
    started = ctx.clock()
    preflight(ctx.catalog, ctx.inventory, plan, started)
    host = plan.facts["host"]
    probe(ctx.transports, host)
    engine_run = execute(ctx, plan)
    with _staging(ctx.staging) as staging:
        fetched = fetch_all(ctx, plan, engine_run, staging, progress)
        artifacts = build_artifacts(ctx, plan, engine_run, fetched)
        run = _new_run(bset, plan, started, ctx.clock(), artifacts, ctx.compression)
        _admit(ctx.catalog, run)
        manifest = store(ctx, bset, plan, staging, started, progress, run)
    recorded = ctx.catalog.record_run(_with_locations(run, manifest))
    return BackupResult(
        recorded.id, engine_run, manifest["id"], recorded.backup_type,
        len(manifest["files"]), manifest["size"], manifest["stored"],
    )  # fmt: skip


# -- 1. admit before anything runs --------------------------------------------------------------


def preflight(catalog: Catalog, inv: Inventory, plan: Plan, at: datetime) -> None:
    """Refuse a run the Exchange rules refuse, from what the catalog and inventory know."""
    from dr.catalog.admission import Histories
    from dr.exchange.rules import LogRange, StreamBackup, admit

    histories = Histories(catalog.conn)
    for part in _exchange_parts(plan):
        key = part["storage_group"]
        history = histories.get(key)
        seen = max((b.logs.last for b in history if b.logs is not None), default=1)
        new = StreamBackup(
            backup_type=plan.facts["backup_type"],
            at=at,
            logs=LogRange(part["prefix"], 1, seen),  # continuity is judged after the run
            circular_logging=_inventory_circular(inv, key),
        )
        admit(history, new, stream=key)


def _exchange_parts(plan: Plan) -> list[dict[str, Any]]:
    return [p for p in plan.facts["parts"] if p["kind"] == "exchange"]


def _inventory_circular(inv: Inventory, key: str) -> bool:
    from dr.model.refs import resolve_storage_group

    return resolve_storage_group(inv, key).storage_group.circular_logging


# -- 2. reach the host ----------------------------------------------------------------------------


def probe(factory: TransportFactory, host: str) -> None:
    """One harmless command: authentication and reachability fail here, as one error."""
    transport = factory(host)
    try:
        result = transport.run(Command(PROBE), timeout=60.0)
    finally:
        transport.close()
    if not result.ok:
        raise RunError(
            f"host {host} answered the connection probe with exit code {result.exit_code}",
            hint="check that PowerShell runs for this account over WinRM",
        )


# -- 3. run the procedure through the engine ------------------------------------------------------


def execute(ctx: BackupContext, plan: Plan) -> str:
    """Run the plan to its end; the engine run's id, or the failing step as one error."""
    from engine.executor import build_specs
    from engine.runbook import Library
    from engine.runner import Runner, RunOptions, create_run

    options = RunOptions(parallel=2, non_interactive=True, poll_seconds=0.05)
    info = create_run(ctx.journal, plan, Path("backup-plan.json"), ctx.by, options)
    specs = build_specs(plan, Library.load())
    runner = Runner(ctx.journal, info, specs, ctx.transports, environ=ctx.environ, by=ctx.by)
    state = runner.run()
    if state != "succeeded":
        raise _failure(ctx.journal, plan, info.id, state)
    return info.id


def _failure(journal: Journal, plan: Plan, run_id: str, state: str) -> Exception:
    records = journal.last_step_records(run_id)
    failed = [
        (sid, r.body) for sid, r in records.items() if r.body.get("state") not in ("succeeded",)
    ]
    if not failed:
        return RunError(f"backup run {run_id} stopped in state {state}")
    sid, body = failed[0]
    detail = _first_line(stderr_of(journal, run_id, sid))
    message = f"backup run {run_id}: step {sid} on {plan.step(sid).host}: {body.get('message')}"
    if sid.startswith("check-circular-logging.") and body.get("message") == "exit code 4":
        return CircularLoggingViolation(
            message + (f": {detail}" if detail else ""),
            hint="the host has circular logging on although the inventory says off: turn it "
            "off, restart the information store, take a full backup; then fix the inventory",
        )
    return RunError(
        message + (f": {detail}" if detail else ""),
        hint=f"`{suggest('dr', 'run', 'log', run_id, sid)}` shows what it printed",
    )


def output_of(journal: Journal, run_id: str, step_id: str, stream: str = "stdout") -> str:
    """What a step's last attempt printed on ``stream`` (its command, not its checks)."""
    found = [
        o for o in journal.outputs(run_id, step_id) if o.purpose == "command" and o.stream == stream
    ]
    return found[-1].data.decode("utf-8", "replace") if found else ""


def stderr_of(journal: Journal, run_id: str, step_id: str) -> str:
    return output_of(journal, run_id, step_id, "stderr")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# -- 4. fetch ------------------------------------------------------------------------------------


@contextmanager
def _staging(base: Path | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dr-backup-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fetch_all(
    ctx: BackupContext, plan: Plan, run_id: str, staging: Path, progress: Progress | None
) -> list[Fetched]:
    """Every file each part's ``collect-backup-files`` listed, checked by SHA-256."""
    transport = ctx.transports(plan.facts["host"])
    fetched: list[Fetched] = []
    try:
        for part in plan.facts["parts"]:
            for row in _listing(ctx.journal, run_id, part):
                fetched.append(_fetch_one(transport, part, row, staging))
                if progress:
                    progress(int(row["size"]))
    finally:
        transport.close()
    return fetched


def _listing(journal: Journal, run_id: str, part: dict[str, Any]) -> list[dict[str, Any]]:
    step = part["steps"]["collect"]
    text = output_of(journal, run_id, step).strip()
    try:
        rows = json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise ToolOutputError(f"step {step}: the file list is not JSON ({exc.msg})") from exc
    rows = rows if isinstance(rows, list) else [rows]
    for row in rows:
        if not {"path", "size", "sha256"} <= set(row):
            raise ToolOutputError(f"step {step}: a file entry lacks path, size or sha256")
    return rows


def _fetch_one(
    transport: Transport, part: dict[str, Any], row: dict[str, Any], staging: Path
) -> Fetched:
    remote = str(row["path"])
    inner = remote[len(part["dest"]) :].strip("\\") if remote.startswith(part["dest"]) else None
    if not inner or ".." in inner.split("\\"):
        raise ToolOutputError(f"host listed {remote!r}, which is outside {part['dest']}")
    rel = f"{part['name']}/{inner.replace(chr(92), '/')}"
    local = staging / rel
    transport.fetch(remote, local)
    digest = _sha256(local)
    if digest != str(row["sha256"]).lower():
        raise IntegrityError(
            f"{remote}: fetched file's SHA-256 differs from the host's ({digest[:12]}…)",
            hint="the file changed after the backup step, or was damaged in transit; run again",
        )
    return Fetched(part, rel, local, local.stat().st_size, digest)


def _sha256(path: Path) -> str:
    import hashlib

    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


# -- 5. what the catalog records -----------------------------------------------------------------


@dataclass(frozen=True)
class StreamFacts:
    """What the host said about one log stream during the run."""

    circular_logging: bool
    mounted: bool
    current_gen: int | None
    first_gen: int | None
    log_signature: str | None
    header: Any = None


_GEN = re.compile(r"^\s*lGeneration:\s*(\d+)", re.MULTILINE)
_SIG = re.compile(r"^\s*Signature:\s*(.+?)\s*$", re.MULTILINE)
_LISTED = re.compile(r"Log file:\s*\S.*?\\?(E[0-9A-F]{2}[0-9A-F]{5,8})\.log - OK", re.IGNORECASE)


def stream_facts(journal: Journal, run_id: str, part: dict[str, Any]) -> StreamFacts:
    """Circular logging (the check), generations and signature (``eseutil /ml``), and the
    copied database's header (``eseutil /mh``) when the step ran."""
    from dr.exchange.eseutil import parse_mh

    steps = part["steps"]
    check = _json(output_of(journal, run_id, steps["check"]), steps["check"])
    listing = output_of(journal, run_id, steps["list"])
    gens = [int(name[3:], 16) for name in _LISTED.findall(listing)]
    current = _GEN.search(listing)
    signature = _SIG.search(listing)
    header = None
    if steps.get("header"):
        header = parse_mh(output_of(journal, run_id, steps["header"]))
    return StreamFacts(
        circular_logging=bool(check.get("CircularLoggingEnabled")),
        mounted=bool(check.get("Mounted", True)),
        current_gen=int(current.group(1)) if current else None,
        first_gen=min(gens) if gens else None,
        log_signature=signature.group(1) if signature else None,
        header=header,
    )


def _json(text: str, step: str) -> dict[str, Any]:
    line = _first_line(text)
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ToolOutputError(f"step {step}: expected one JSON object, got {line[:60]!r}") from exc
    if not isinstance(value, dict):
        raise ToolOutputError(f"step {step}: expected one JSON object")
    return value


def build_artifacts(
    ctx: BackupContext, plan: Plan, run_id: str, fetched: list[Fetched]
) -> list[NewArtifact]:
    facts = {p["name"]: stream_facts(ctx.journal, run_id, p) for p in _exchange_parts(plan)}
    backup_type = plan.facts["backup_type"]
    files = [_artifact(f, facts.get(f.part["name"]), backup_type) for f in fetched]
    files = _with_wbadmin_version(files, fetched)
    counts = [a for p in _exchange_parts(plan) for a in mailbox_counts(ctx.journal, run_id, p)]
    return files + counts


WBADMIN_LISTING = "wbadmin-versions.txt"


def _with_wbadmin_version(files: list[NewArtifact], fetched: list[Fetched]) -> list[NewArtifact]:
    """A system state backup's files carry wbadmin's own version identifier, read from the
    ``wbadmin get versions`` listing the backup step saved beside them (the newest version):
    ``wbadmin start systemstaterecovery -version:`` takes that, not dr's artifact id. It is
    kept in the artifact's ``state`` (the store gives ``location`` the repository's address),
    worded as the catalog's wbadmin importer words a location."""
    from dr.exchange.wbadmin import parse_versions

    listing = next((f for f in fetched if f.rel.rsplit("/", 1)[-1] == WBADMIN_LISTING), None)
    if listing is None:
        return files
    versions = parse_versions(listing.path.read_text(encoding="utf-8", errors="replace"))
    if not versions:
        raise ToolOutputError(f"{listing.rel}: the wbadmin listing names no backup version")
    newest = max(versions, key=lambda v: v.identifier_time)
    where = f"wbadmin version {newest.version_identifier}"
    if newest.backup_target:
        where += f" on {newest.backup_target}"
    kind = listing.part["kind"]
    return [replace(a, state=where) if a.kind == kind else a for a in files]


def mailbox_counts(journal: Journal, run_id: str, part: dict[str, Any]) -> list[NewArtifact]:
    """One ``mailbox-counts`` record per mailbox of each database the part counted (the
    ``mailbox-counts`` step's JSON lines): the mailbox GUID as the name, the display name,
    the item count. Facts, not files: nothing of theirs is in the repository."""
    from dr.catalog import NewArtifact

    found: list[NewArtifact] = []
    for key, step in (part["steps"].get("counts") or {}).items():
        for line in output_of(journal, run_id, step).splitlines():
            if not line.startswith("{"):
                continue
            row = _json(line, step)
            guid, items = str(row.get("guid") or "").strip(), row.get("items")
            if not guid or not isinstance(items, int):
                raise ToolOutputError(f"step {step}: a mailbox line without guid or items: "
                                      f"{line[:80]!r}")  # fmt: skip
            found.append(NewArtifact(
                kind="mailbox-counts", name=guid.strip("{}").lower(), size=0, storage_group=None,
                database=key, mailbox=str(row.get("name") or guid), item_count=items,
            ))  # fmt: skip
    return found


def _artifact(f: Fetched, facts: StreamFacts | None, backup_type: str) -> NewArtifact:
    from dr.catalog import NewArtifact

    base = NewArtifact(kind=f.part["kind"], name=f.rel, size=f.size, sha256=f.sha256)
    if facts is None:
        return base
    stream = replace(
        base,
        storage_group=f.part["storage_group"],
        log_prefix=f.part["prefix"],
        circular_logging=facts.circular_logging,
        database_mounted=facts.mounted,
    )
    return _exchange_artifact(stream, f, facts, backup_type)


def _exchange_artifact(
    art: NewArtifact, f: Fetched, facts: StreamFacts, backup_type: str
) -> NewArtifact:
    from dr.exchange.logs import parse_log_file_name

    name = f.rel.rsplit("/", 1)[-1]
    lower = name.lower()
    if lower.endswith(".bkf"):  # NTBackup: the whole stream in one media file
        kind = "database" if backup_type in ("full", "copy") else "logs"
        last = facts.current_gen
        first = facts.first_gen if facts.first_gen is not None else last
        return replace(art, kind=kind, first_gen=first, last_gen=last,
                       log_signature=facts.log_signature)  # fmt: skip
    if lower.endswith(".log"):
        _, gen, _ = parse_log_file_name(name)
        return replace(art, kind="logs", first_gen=gen, last_gen=gen,
                       log_signature=facts.log_signature)  # fmt: skip
    if lower.endswith(".chk"):
        return replace(art, kind="checkpoint")
    if lower.endswith((".edb", ".stm")):
        return _database_artifact(art, f, facts, "database" if lower.endswith(".edb") else "stm")
    return replace(art, kind="files", storage_group=None, log_prefix=None)


def _database_artifact(art: NewArtifact, f: Fetched, facts: StreamFacts, kind: str) -> NewArtifact:
    name = f.rel.rsplit("/", 1)[-1].lower()
    owner = next((d for d in f.part["databases"] if name in [x.lower() for x in d["files"]]), None)
    art = replace(art, kind=kind, database=owner["key"] if owner else None)
    header = facts.header
    if kind != "database" or header is None:
        return art
    return replace(
        art,
        state=header.state_text,
        log_required_first=header.log_required[0],
        log_required_last=header.log_required[1],
        db_signature=header.db_signature,
        log_signature=header.log_signature,
    )


def _new_run(
    bset: BackupSet,
    plan: Plan,
    started: datetime,
    ended: datetime,
    artifacts: list[NewArtifact],
    compression: str | None,
) -> NewRun:
    from dr.catalog import NewRun

    return NewRun(
        set_name=bset.name, host=plan.facts["host"], backup_type=plan.facts["backup_type"],
        started=started, ended=ended, source="dr", compression=compression,
        artifacts=tuple(artifacts),
    )  # fmt: skip


def _admit(catalog: Catalog, run: NewRun) -> None:
    from dr.store.catalog_link import admit

    admit(catalog, run)


# -- store and record ----------------------------------------------------------------------------

STORE_TYPES = {"full": "full", "copy": "full", "incremental": "incremental",
               "differential": "differential"}  # fmt: skip


def store(
    ctx: BackupContext,
    bset: BackupSet,
    plan: Plan,
    staging: Path,
    started: datetime,
    progress: Progress | None,
    run: NewRun | None = None,
) -> dict[str, Any]:
    """Hand the staged files to the store's "back up from a local path" code.

    ``run`` (header facts, log ranges, signatures) goes into the manifest, so
    ``dr store rebuild-catalog`` recreates exactly the row recorded here.
    """
    from dr.store.backup import BackupOptions, run_backup
    from dr.store.catalog_link import run_records

    opts = BackupOptions(
        set_name=bset.name,
        source=staging,
        host=plan.facts["host"],
        backup_type=STORE_TYPES[plan.facts["backup_type"]],  # type: ignore[arg-type]
        compression=ctx.compression or bset.compression,  # type: ignore[arg-type]
        encryption=json.dumps(bset.encryption.model_dump(mode="json"), sort_keys=True),
        block_size=bset.delta.block_size,
        max_deltas=bset.delta.max_deltas,
        max_changed_percent=bset.delta.max_changed_percent,
        at=started,
        set_definition=bset.model_dump(mode="json"),
        catalog_run=run_records(run) if run is not None else None,
    )
    return run_backup(ctx.repo, opts, progress)


def _with_locations(run: NewRun, manifest: dict[str, Any]) -> NewRun:
    """The run as the manifest carries it: ``run`` completed with the stored sizes and
    locations, and the manifest's times, so a rebuild from the repository is the same row."""
    from dr.store.catalog_link import new_run

    return new_run(manifest["catalog"])
