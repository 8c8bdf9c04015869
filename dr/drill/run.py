"""One restore drill, end to end: plan → run → verify → clean up → evidence → history.

``run_database_drill`` plans the drill of one database from the catalog (``plan_drill``: the
alternate restore into the recovery forest, the checks on the restored data, the clean-up),
saves the plan under ``<workspace>/drills/<drill id>/``, runs it with the engine — the same
runner, journal and transports as ``dr run start`` — and turns what the journal recorded into
the drill's verdict. Every check is a step of the plan, so a drill proves on the host what an
auditor reads in the record: the restored database mounts, every mailbox holds the items the
backup counted, the sampled mailboxes are in the store.

The clean-up step is *held* (``RunOptions.hold``) while there is something to look at first:
on the built-in lab the restored database is compared with the lab's ground truth before it
is removed; with ``keep`` a person inspects it and releases the hold with ``dr run ack``.

A drill that fails — it cannot be planned, a step fails, a check finds a difference — is
recorded too, FAILED, with what failed: the evidence of a failed drill is evidence. Its run
is aborted so the record is final; the restored copy stays in the recovery forest for
diagnosis (the clean-up did not run) and the record says so.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dr.drill import history
from dr.drill.history import DrillCheck, DrillRecord, DrillStep
from dr.errors import DrError
from engine.errors import EngineError

if TYPE_CHECKING:
    from dr.lab.estate import Lab
    from dr.model.inventory import Inventory
    from dr.workspace import Workspace
    from engine.journal import Journal, RunInfo
    from engine.plan import Plan
    from engine.runbook import Library
    from engine.runner import Operator, Reporter

#: the first step that removes the restored copy: held while there is something to look at
CLEANUP = ("cleanup-recovery-forest", "remove-recovery-database")
#: the plan's steps whose success is a check on the restored data
CHECK_KINDS = ("verify-database-header", "verify-mount", "verify-item-counts",
               "verify-mailbox-sample")  # fmt: skip


@dataclass
class DrillOutcome:
    """What a drill left: its record (appended to the history), the plan, the run."""

    record: DrillRecord
    plan_path: Path | None = None
    notes: list[str] = field(default_factory=list)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def drill_id_for(key: str, at: datetime) -> str:
    token = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-")
    return f"drill-{at:%Y%m%dT%H%M%SZ}-{token}"


def run_database_drill(
    ws: Workspace,
    db_ref: str,
    *,
    by: str,
    forest: str | None = None,
    at: datetime | None = None,
    keep: bool = False,
    into: str | None = None,
    reporter: Reporter | None = None,
    operator: Operator | None = None,
    say: Callable[[str], None] = lambda _line: None,
) -> DrillOutcome:
    """Drill ``db_ref``; see the module docstring. With an ``operator`` (a person at the
    terminal) the steps that need a person are asked about as ``dr run start`` asks; without
    one, such a step fails the drill."""
    from dr.drill.drift import estate_fingerprint, library_digest
    from dr.model.load import workspace_inventory
    from dr.model.refs import resolve_database
    from engine.runbook import Library

    inv = workspace_inventory(ws)
    ref = resolve_database(inv, db_ref)
    library = Library.load()  # read once: the planner's flags, the record's digest, the run
    started = now_utc()
    drill_id = drill_id_for(ref.key, started)
    base = _Record(drill_id, ref.key, started, forest or inv.drills.forest or "")
    base.estate = estate_fingerprint(inv, ref.key)
    try:
        plan = _plan(ws, inv, library, ref.key, forest or inv.drills.forest, at, into)
    except (DrError, EngineError) as exc:
        return _finish(ws, base.failed(f"could not be planned: {exc.lines()[0]}"), None, say)
    folder = ws.root / "drills" / drill_id
    folder.mkdir(parents=True, exist_ok=True)
    plan_path = folder / "plan.json"
    plan.save(plan_path)
    if plan.facts.get("method") == "recovery-database":
        base.target = f"{plan.facts['recovery_database']} on {plan.facts['recovery_server']}"
    else:
        base.target = f"{plan.facts.get('forest', '')}/{plan.facts.get('recovery_server', '')}"
    base.plan = plan
    base.library = library_digest({s.kind for s in plan.steps}, library)
    lab = _lab_of(ws)
    cleanup = [s.id for s in plan.steps if s.kind in CLEANUP]
    hold = tuple(cleanup) if (lab is not None or keep) else ()
    with _served(lab):
        return _execute(ws, base, plan_path, library, by, hold, lab, keep, reporter, operator,
                        say)  # fmt: skip


# --------------------------------------------------------------------------- the parts


@dataclass
class _Record:
    """The record being assembled while the drill runs."""

    drill_id: str
    database: str
    started: datetime
    target: str
    plan: Plan | None = None
    run_id: str | None = None
    checks: list[DrillCheck] = field(default_factory=list)
    steps: list[DrillStep] = field(default_factory=list)
    evidence: str | None = None
    lab: bool = False
    library: str | None = None
    estate: str | None = None
    rto: float | None = None
    rpo: float | None = None
    scenario: str | None = None  # a scenario drill (dr.drill.scenario): its name

    def make(self, verdict: str, failure: str | None = None) -> DrillRecord:
        plan = self.plan
        facts = plan.facts if plan is not None else {}
        sla = plan.sla if plan is not None else None
        return DrillRecord(
            drill_id=self.drill_id, kind="scenario" if self.scenario else "database",
            database=None if self.scenario else self.database, scenario=self.scenario,
            target=self.target or "-", started_at=self.started, ended_at=now_utc(),
            verdict=verdict,  # type: ignore[arg-type]
            failure=failure, run_id=self.run_id, evidence_record_id=self.evidence,
            plan_digest=plan_shape(plan) if plan is not None else "",
            library_digest=self.library, sample_seed=facts.get("sample", {}).get("seed"),
            estate_digest=self.estate,
            backup_runs=sorted(_runs_of(facts)), rto_seconds=self.rto,
            rto_target_seconds=getattr(sla, "rto_seconds", None), rpo_seconds=self.rpo,
            rpo_target_seconds=getattr(sla, "rpo_seconds", None),
            checks=self.checks, steps=self.steps, lab=self.lab,
        )  # fmt: skip

    def failed(self, why: str) -> DrillRecord:
        return self.make("failed", why)


def plan_shape(plan: Plan) -> str:
    """A digest of what the drill does, not of when: each distinct step kind with its host
    and platform. Two plans of the same database with more or fewer incrementals have the
    same shape; a new server version, a moved database or another kind of step does not."""
    import hashlib
    import json

    shape = sorted({
        (s.kind, s.host, json.dumps(s.platform or {}, sort_keys=True)) for s in plan.steps
    })  # fmt: skip
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()


def _runs_of(facts: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for chain in facts.get("chains") or []:
        found.update(str(v) for v in chain.get("versions") or [])
        if chain.get("base"):
            found.add(str(chain["base"]))
    return found


def _plan(
    ws: Workspace,
    inv: Inventory,
    library: Library,
    key: str,
    forest: str | None,
    at: datetime | None,
    into: str | None,
) -> Plan:
    from dr.catalog import Catalog
    from dr.planner import plan_drill
    from dr.planner.catalog_facts import CatalogFacts
    from dr.planner.facts import StepFacts

    steps = StepFacts.of_library(library)
    with Catalog.open(ws.catalog_path) as catalog:
        return plan_drill(CatalogFacts(catalog, inv, (), steps), key, forest, at, into=into)


def _lab_of(ws: Workspace) -> Lab | None:
    """The workspace's built-in lab, when it has one."""
    from dr.errors import NotFoundError
    from dr.lab.build import open_lab

    try:
        return open_lab(ws)
    except NotFoundError:
        return None


@contextlib.contextmanager
def _served(lab: Lab | None) -> Iterator[None]:
    """The lab's endpoints for the length of the drill — unless `dr lab serve` already
    answers on its ports (then that one is used)."""
    import os

    if lab is None:
        yield
        return
    from dr.lab.build import lab_env

    ports = {name: int(p) for name, p in (lab.state.get("ports") or {}).items()}
    saved = {k: os.environ.get(k) for k in lab_env(lab)}
    os.environ.update(lab_env(lab))
    try:
        if ports and all(_listening(p) for p in ports.values()):
            yield
        else:
            with lab.serving(ports):
                yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _execute(
    ws: Workspace,
    rec: _Record,
    plan_path: Path,
    library: Library,
    by: str,
    hold: tuple[str, ...],
    lab: Lab | None,
    keep: bool,
    reporter: Reporter | None,
    operator: Operator | None,
    say: Callable[[str], None],
    judge: Callable[[Plan], list[DrillCheck]] | None = None,
) -> DrillOutcome:
    """Run the drill's plan to its verdict. ``judge`` (a scenario drill on the lab) compares
    what a run that succeeded restored with the truth; a database drill does that while its
    clean-up is held."""
    from dr.cli.run import _transports
    from engine.executor import build_specs
    from engine.journal import Journal
    from engine.plan import load_plan
    from engine.runner import Decision, Runner, RunOptions, abort, ack, create_run

    plan = load_plan(plan_path)
    options = RunOptions(non_interactive=operator is None, hold=hold)
    person = _NotAboutHeld(operator, hold) if operator is not None else None
    specs = build_specs(plan, library)
    why = missing(plan, library, options, specs)
    if why:  # what `dr run start --check` would say: nothing is started
        return _finish(ws, rec.failed(f"not started: {why}"[:1000]), plan_path, say)
    factory, _ = _transports(options)
    journal = Journal.open(ws.journal_path)
    try:
        info = create_run(journal, plan, plan_path.resolve(), by, options)
        rec.run_id = info.id
        say(f"drill {rec.drill_id}: run {info.id} of {plan_path}")
        state = Runner(journal, info, specs, factory, reporter=reporter, operator=person,
                       by=by).run()  # fmt: skip
        if state == "waiting" and _only_held(journal, info, hold):
            rec.checks = _checks(journal, info, plan, specs)
            if lab is not None:
                rec.lab = True
                rec.checks.append(_truth(lab, plan))
            if keep:
                say(
                    "the restored copy is kept for inspection; release the clean-up with "
                    f"`dr run ack {info.id} {hold[0]} --by NAME`, then `dr run resume {info.id}`"
                )
            if all(c.passed for c in rec.checks) and not keep:
                for sid in hold:
                    if specs[sid].manual:  # a person's step (2000/2003): now they are asked
                        if person is not None:
                            person.release(sid)
                    else:
                        ack(journal, info.id, sid, Decision(by=by, note="drill checks passed"))
                state = Runner(journal, info, specs, factory, reporter=reporter,
                               operator=person, by=by).run()  # fmt: skip
        else:
            rec.checks = _checks(journal, info, plan, specs)
            if judge is not None and state == "succeeded":
                rec.lab = True
                rec.checks += judge(plan)
        rec.steps = _steps(journal, info, plan)
        failure = _failure(journal, info, state, rec.checks, keep)
        if failure is not None and state not in ("succeeded", "failed", "aborted") and not keep:
            abort(journal, info.id, by, note=f"drill failed: {failure}")
            state = "aborted"
        rec.rto = _elapsed(journal, info)
        rec.rpo = _achieved_rpo(plan, lab, rec.started)
        verdict = "passed" if failure is None else "failed"
        rec.evidence = _evidence(ws, journal, info, plan, rec, say)
    finally:
        journal.close()
    return _finish(ws, rec.make(verdict, failure), plan_path, say)


def missing(
    plan: Plan, library: Library, options: Any = None, specs: dict[str, Any] | None = None
) -> str | None:
    """What `dr run start --check` finds missing for ``plan`` (hosts' transports and
    credentials, staging, the repository and its key, secrets), in one line; None if nothing.
    ``specs``: the plan's rendered steps, when the caller has them already."""
    from dr.cli.run import _findings, _passphrase_for_steps
    from engine.executor import build_specs
    from engine.runner import RunOptions

    _passphrase_for_steps(plan)  # the store steps' repository passphrase, as `dr run` gives it
    specs = specs if specs is not None else build_specs(plan, library)
    found = [f for f in _findings(plan, specs, options or RunOptions()) if not f.ok]
    return "; ".join(f"{f.subject}: {f.detail}" for f in found) or None


class _NotAboutHeld:
    """The person at the terminal, not asked about a held step until the drill releases it
    (once the restored copy has been looked at)."""

    def __init__(self, person: Operator, hold: tuple[str, ...]) -> None:
        self.person, self.hold = person, set(hold)

    def release(self, step_id: str) -> None:
        self.hold.discard(step_id)

    def ask(self, run_id: str, spec: Any, state: str, message: str) -> Any:
        if spec.id in self.hold:
            return None  # stays waiting: "later"
        return self.person.ask(run_id, spec, state, message)


def _only_held(journal: Journal, info: RunInfo, hold: tuple[str, ...]) -> bool:
    """Every step that waits is a held one (nothing else needs a person)."""
    waiting = [
        sid
        for sid, rec in journal.last_step_records(info.id).items()
        if rec.body["state"] in ("waiting", "paused")
    ]
    return bool(waiting) and set(waiting) <= set(hold)


def _judged(lines: list[str], spec: Any) -> list[str]:
    """The lines the step's verification reads (its regex patterns), e.g. ``State: Clean
    Shutdown`` out of a whole ``eseutil /mh`` dump; empty when it has none."""
    import re

    rule = getattr(getattr(spec, "verify", None), "rule", None)
    patterns = [re.compile(p, re.MULTILINE) for p in getattr(rule, "patterns", None) or []]
    return [ln for ln in lines if any(p.search(ln) for p in patterns)][:6]


def _checks(
    journal: Journal, info: RunInfo, plan: Plan, specs: dict[str, Any] | None = None
) -> list[DrillCheck]:
    from dr.backup.run import output_of

    states = {sid: rec.body for sid, rec in journal.last_step_records(info.id).items()}
    found = []
    for step in plan.steps:
        if step.kind not in CHECK_KINDS:
            continue
        body = states.get(step.id) or {}
        state = str(body.get("state", "pending"))
        if state in ("pending", "ready"):
            found.append(DrillCheck(name=step.title or step.kind, passed=False,
                                    detail="not run (the drill stopped before it)"))  # fmt: skip
            continue
        lines = [ln for ln in output_of(journal, info.id, step.id).splitlines() if ln.strip()]
        lines = _judged(lines, specs.get(step.id)) or lines[-4:]
        detail = "; ".join(ln.strip() for ln in lines) or str(body.get("message", ""))
        if state == "acked":  # a person's check (2000/2003, no PowerShell): their word
            detail = f"{body.get('message', 'done')}; {_note(journal, info, step.id)}"
        found.append(DrillCheck(name=step.title or step.kind,
                                passed=state in ("succeeded", "acked"),
                                detail=f"{state}: {detail}"[:500]))  # fmt: skip
    return found


def _note(journal: Journal, info: RunInfo, step_id: str) -> str:
    """What the person wrote when they acknowledged the step."""
    notes = [str(r.body.get("note") or "") for r in journal.records(info.id, kinds=["ack"])
             if r.step_id == step_id]  # fmt: skip
    return f"note: {notes[-1]}" if notes and notes[-1] else "no note"


def _truth(lab: Lab, plan: Plan) -> DrillCheck:
    """On the lab: the restored database, message by message, against the ground truth at
    the plan's recoverable point."""
    point = plan.recoverable_point
    if point is None:
        return DrillCheck(name="equal to the lab's ground truth", passed=False,
                          detail="the plan has no recoverable point")  # fmt: skip
    server = str(plan.facts.get("recovery_server"))
    db = str(plan.target.what).removeprefix("drill of database ")
    try:
        verdict = lab.verify(db, point, host=server, restored_as=plan.facts.get("restored_as"))
    except (DrError, OSError) as exc:
        return DrillCheck(name="equal to the lab's ground truth", passed=False, detail=str(exc))
    detail = (f"{verdict.found} of {verdict.expected} messages at {point.isoformat()}; "
              f"{len(verdict.missing)} missing, {len(verdict.extra)} extra, "
              f"{len(verdict.moved)} moved")  # fmt: skip
    return DrillCheck(name="equal to the lab's ground truth", passed=verdict.equal, detail=detail)


def _steps(journal: Journal, info: RunInfo, plan: Plan) -> list[DrillStep]:
    """Each step's state and first start / last end, from the journal (for timelines)."""
    times: dict[str, list[datetime]] = {}
    states: dict[str, str] = {}
    for rec in journal.records(info.id, kinds=["step"]):
        if not rec.step_id:
            continue
        at = _when(rec)
        states[rec.step_id] = str(rec.body.get("state"))
        if rec.body.get("state") in ("running", "succeeded", "failed",
                                                         "paused", "skipped", "acked"):  # fmt: skip
            times.setdefault(rec.step_id, []).append(at)
    found = []
    for s in plan.steps:
        seen = times.get(s.id) or []
        found.append(
            DrillStep(
                id=s.id,
                title=s.title or s.kind,
                state=states.get(s.id, "pending"),
                started=min(seen, default=None),
                ended=max(seen, default=None),
            )
        )
    return found


def _when(rec: Any) -> datetime:
    """When the journal recorded ``rec`` (its ``at``, ISO 8601)."""
    at = datetime.fromisoformat(str(rec.at).replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _failure(
    journal: Journal, info: RunInfo, state: str, checks: list[DrillCheck], keep: bool
) -> str | None:
    """What failed, the cause first: where the run stopped, then the checks that ran and
    found a difference (checks that never ran are in the record, not repeated here)."""
    parts = []
    if state != "succeeded":
        stuck = [
            f"{sid} ({rec.body['state']}: {rec.body.get('message', '')})"
            for sid, rec in journal.last_step_records(info.id).items()
            if rec.body["state"] in ("waiting", "paused", "failed")
            and not (keep and str(rec.body.get("message", "")).startswith("held:"))
        ]
        if stuck:
            parts.append("stopped at " + "; ".join(stuck))
    bad = [c for c in checks if not c.passed and not c.detail.startswith("not run")]
    if bad:
        parts.append("; ".join(f"{c.name}: {c.detail}" for c in bad))
    if parts:
        return " — ".join(parts)[:1000]
    if state == "succeeded" or (keep and state == "waiting"):
        return None
    return f"the run ended {state}"


def _elapsed(journal: Journal, info: RunInfo) -> float | None:
    times = [_when(r) for r in journal.records(info.id)]
    return (max(times) - min(times)).total_seconds() if len(times) > 1 else None


def _achieved_rpo(plan: Plan, lab: Lab | None, started: datetime) -> float | None:
    """What a failure at the drill's start would have lost restoring from these backups:
    the time from the recoverable point to then (the lab's clock on the lab)."""
    if plan.recoverable_point is None:
        return None
    now = lab.now() if lab is not None else started
    return max(0.0, (now - plan.recoverable_point).total_seconds())


def _evidence(
    ws: Workspace, journal: Journal, info: RunInfo, plan: Plan, rec: _Record,
    say: Callable[[str], None],
) -> str | None:  # fmt: skip
    """Sign the run's record with the drill's sampling and checks; None without a key."""
    from dr.errors import EvidenceKeyMissing
    from dr.evidence.make import make_record
    from dr.evidence.record import TERMINAL, run_state
    from dr.evidence.signing import FileSigner

    if run_state(journal.records(info.id)) not in TERMINAL:
        say("evidence: the run is not finished (held for inspection); record it with "
            f"`dr evidence record {info.id}` once it is")  # fmt: skip
        return None
    sample = plan.facts.get("sample") or {}
    picked = next((list(s.params.get("mailboxes") or {}) for s in plan.steps
                   if s.kind == "verify-mailbox-sample"), [])  # fmt: skip
    sampling = {"method": sample.get("method", ""), "seed": sample.get("seed", ""),
                "population": sample.get("of", 0), "sample": picked}  # fmt: skip
    verification = [{"what": c.name, "expected": "passes", "found": c.detail,
                     "passed": c.passed} for c in rec.checks]  # fmt: skip
    try:
        made = make_record(ws, journal, info.id, FileSigner.load(), sampling=sampling,
                           verification=verification)  # fmt: skip
    except EvidenceKeyMissing:
        say(f"evidence: no signing key — `dr evidence keygen`, then `dr evidence record {info.id}`")
        return None
    except (DrError, EngineError) as exc:
        say(f"evidence: not recorded: {exc.lines()[0]}")
        return None
    say(f"evidence: record {made.entry['record']} signed and logged")
    return str(made.entry["record"])


def _finish(
    ws: Workspace, record: DrillRecord, plan_path: Path | None, say: Callable[[str], None]
) -> DrillOutcome:
    history.append(ws.root, record)
    say(f"drill {record.drill_id}: {record.verdict.upper()}"
        + (f" — {record.failure}" if record.failure else ""))  # fmt: skip
    return DrillOutcome(record, plan_path)
