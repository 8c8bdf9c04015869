"""The run loop: journal-first transitions, a thread pool, pauses, acknowledgements, abort.

The scheduler decides *what* can start; the executor carries a step out; the runner ties
them together and owns the run's life:

* ``start`` records a new run (the plan's digest, path and a copy of its JSON) and runs it;
* ``resume`` continues a run from its journal after the orchestrator stopped for any reason
  (``kill -9`` included): a step that was running is re-checked with its idempotency check
  (done → succeeded; not done → runs again; no check → paused for the operator), a step that
  succeeded never runs again, a step that failed runs again;
* a manual step, an approval, or a destructive step without its approval waits for a
  person: interactively through an :class:`Operator`, or, non-interactively, the run stops
  in state ``waiting`` until ``dr run ack`` records the decision;
* ``abort`` (from any process) stops new steps from starting; running ones finish.

Only one process executes a run at a time (an exclusive lock file beside the journal).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.errors import RunStateError
from engine.executor import Executor, Outcome, StepSpec, TransportPool
from engine.journal import Entry, Journal, RunInfo
from engine.plan import Plan
from engine.redact import Redactor
from engine.scheduler import BROKEN, Node, ready, run_state, startable
from engine.transports.base import Transport

FINISHED = frozenset({"succeeded", "aborted"})


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; stored with the run so that a resume behaves the same."""

    parallel: int = 4
    dry_run: bool = False
    non_interactive: bool = False
    two_person: bool = True
    poll_seconds: float = 0.2
    library_dirs: tuple[str, ...] = ()
    hosts_file: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunOptions:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "library_dirs" in known:
            known["library_dirs"] = tuple(known["library_dirs"])
        return cls(**known)


@dataclass(frozen=True)
class Decision:
    """A person's answer for a step that waits: done, retry or skip."""

    by: str
    decision: str = "done"
    note: str = ""


class Operator(Protocol):
    """Asks a person about a step that waits; None leaves it waiting."""

    def ask(self, run_id: str, spec: StepSpec, state: str, message: str) -> Decision | None: ...


class Reporter:
    """Observes a run (the live view); every hook is a no-op here."""

    def begin(self, run_id: str, specs: Mapping[str, StepSpec], states: Mapping[str, str]) -> None:
        """The run starts or resumes with these step states."""

    def step(self, step_id: str, state: str, attempt: int, message: str = "") -> None:
        """A step changed state."""

    def end(self, state: str) -> None:
        """The run stopped in ``state``."""


# -- starting, acknowledging, aborting ----------------------------------------------------


def create_run(
    journal: Journal, plan: Plan, plan_path: Path, started_by: str, options: RunOptions
) -> RunInfo:
    """Record a new run of ``plan``; a two-person rule turned off is recorded with who did it."""
    sealed = plan.sealed()
    info = journal.create_run(
        plan_json=sealed.canonical_json(),
        plan_digest=sealed.digest,
        plan_path=str(plan_path),
        started_by=started_by,
        options=asdict(options),
    )
    if not options.two_person:
        body = {"two_person": False, "by": started_by, "note": "turned off with --no-two-person"}
        journal.append(info.id, [Entry("option", body)])
    return info


def ack(journal: Journal, run_ref: str, step_id: str, decision: Decision) -> str:
    """Record a person's decision for a waiting or paused step; return the step's new state."""
    info = journal.run(run_ref)
    _require_open(journal, info)
    last = journal.last_step_records(info.id).get(step_id)
    if step_id not in plan_step_ids(info):
        raise RunStateError(f"run {info.id} has no step {step_id!r}", hint="`dr run status RUN`")
    state = str(last.body["state"]) if last else "pending"
    body = last.body if last else {}
    new = _ack_target(step_id, state, decision.decision, gate=bool(body.get("gate")))
    if body.get("second_person") and _two_person(journal, info):
        _require_second_person(info, step_id, decision.by)
    entry = {
        "by": decision.by,
        "decision": decision.decision,
        "note": decision.note,
        "approval": bool(body.get("approval") or body.get("gate")),
        "from_state": state,
        "state": new,
    }
    step_body = {"state": new, "attempt": body.get("attempt", 0), "by": decision.by}
    step_body["message"] = f"{decision.decision} (by {decision.by})"
    journal.append(info.id, [Entry("ack", entry, step_id), Entry("step", step_body, step_id)])
    return new


def abort(journal: Journal, run_ref: str, by: str, note: str = "") -> RunInfo:
    """Stop a run: nothing new starts; a runner executing it finishes its running steps."""
    info = journal.run(run_ref)
    _require_open(journal, info)
    journal.append(info.id, [Entry("run", {"state": "aborted", "by": by, "note": note})])
    return info


def plan_step_ids(info: RunInfo) -> list[str]:
    return [s["id"] for s in json.loads(info.plan_json)["steps"]]


def run_plan(info: RunInfo) -> Plan:
    """The run's own copy of its plan (what resume executes, whatever happened to the file)."""
    return Plan.model_validate_json(info.plan_json)


def _require_open(journal: Journal, info: RunInfo) -> None:
    state = journal.run_state(info.id)
    if state in FINISHED:
        raise RunStateError(f"run {info.id} has {state}; nothing more can happen to it")


def _two_person(journal: Journal, info: RunInfo) -> bool:
    return bool(info.options.get("two_person", True))


def _require_second_person(info: RunInfo, step_id: str, by: str) -> None:
    if by.strip().casefold() == info.started_by.strip().casefold():
        raise RunStateError(
            f"step {step_id} needs a second person's approval: {by} started run {info.id}",
            hint="another person approves with `dr run ack RUN STEP --by THEIR-NAME`",
        )


_ACK_TARGETS = {
    ("waiting", "done"): "acked",
    ("waiting", "skip"): "skipped",
    ("paused", "done"): "succeeded",
    ("paused", "retry"): "pending",
    ("paused", "skip"): "skipped",
}


def _ack_target(step_id: str, state: str, decision: str, *, gate: bool) -> str:
    if state not in ("waiting", "paused"):
        raise RunStateError(
            f"step {step_id} is {state}: only a step waiting for a person can be acknowledged"
        )
    target = _ACK_TARGETS.get((state, decision))
    if target is None:
        allowed = sorted(d for s, d in _ACK_TARGETS if s == state)
        raise RunStateError(
            f"step {step_id} is {state}: the decision is one of {', '.join(allowed)}"
        )
    return "ready" if gate and target == "acked" else target


# -- the loop -----------------------------------------------------------------------------


class Runner:
    """Executes one run until it succeeds, fails, is aborted or waits for a person."""

    def __init__(
        self,
        journal: Journal,
        info: RunInfo,
        specs: Mapping[str, StepSpec],
        transport_factory: Callable[[str], Transport],
        *,
        operator: Operator | None = None,
        reporter: Reporter | None = None,
        environ: Mapping[str, str] | None = None,
        by: str | None = None,
    ) -> None:
        self.journal, self.info = journal, info
        self.specs = dict(specs)
        self.options = RunOptions.from_dict(info.options)
        self.nodes = [Node(s.id, s.needs, s.resources, s.manual) for s in self.specs.values()]
        self.operator, self.reporter = operator, reporter or Reporter()
        self.by = by or info.started_by
        self.abort_event = threading.Event()
        self.transports = TransportPool(transport_factory)
        self.executor = Executor(
            journal, info.id, self.transports, redactor=Redactor(), abort=self.abort_event,
            environ=environ,
        )  # fmt: skip
        self.states: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.approved: set[str] = set()
        self.halted = False
        self._seen = 0

    def run(self) -> str:
        """Run (or resume) to a stop; return the run's state."""
        with _run_lock(self.journal.path, self.info.id):
            if self.journal.run_state(self.info.id) == "succeeded":
                return "succeeded"  # nothing left to do; resuming it again is harmless
            _require_open(self.journal, self.info)
            self._load()
            self._record_run("running")
            self.reporter.begin(self.info.id, self.specs, self.states)
            try:
                self._recover()
                self._loop()
            finally:
                self.transports.close()
            final = self._final_state()
            if self.journal.run_state(self.info.id) != final:
                self._record_run(final)
            self.reporter.end(final)
            return final

    # -- state from the journal -----------------------------------------------------------

    def _load(self) -> None:
        for sid, rec in self.journal.last_step_records(self.info.id).items():
            self.states[sid] = str(rec.body["state"])
            self.attempts[sid] = int(rec.body.get("attempt", 0))
        for rec in self.journal.records(self.info.id, kinds=["ack"]):
            if rec.body.get("approval") and rec.step_id:
                self.approved.add(rec.step_id)
        self._seen = self.journal.count(self.info.id)

    def _record_run(self, state: str) -> None:
        body = {"state": state, "by": self.by}
        self.journal.append(self.info.id, [Entry("run", body)])
        self._seen += 1

    def _recover(self) -> None:
        """After a stop: re-check steps in doubt; let broken steps run again."""
        for sid in [s for s, st in self.states.items() if st == "running"]:
            self._apply(self.executor.recheck(self.specs[sid], self.attempts.get(sid, 1)))
        broken = [sid for sid, st in self.states.items() if st in BROKEN]
        if broken:
            entries = [self._entry(sid, "pending", "runs again on resume") for sid in broken]
            self.journal.append(self.info.id, entries)
            for sid in broken:
                self._set(sid, "pending")

    def _poll(self) -> None:
        """Pick up what other processes recorded: acknowledgements and aborts."""
        for rec in self.journal.records(self.info.id, after=self._seen, kinds=["ack", "run"]):
            if rec.kind == "run" and rec.body.get("state") == "aborted":
                self.abort_event.set()
            elif rec.kind == "ack" and rec.step_id in self.specs:
                self._take_ack(rec.step_id, rec.body)
        self._seen = self.journal.count(self.info.id)

    def _take_ack(self, sid: str, body: Mapping[str, Any]) -> None:
        if body.get("approval"):
            self.approved.add(sid)
        self._set(sid, str(body["state"]))

    # -- the loop -------------------------------------------------------------------------

    def _loop(self) -> None:
        futures: dict[Future[Outcome], str] = {}
        with ThreadPoolExecutor(max_workers=max(self.options.parallel, 1)) as pool:
            while True:
                self._poll()
                if not self.abort_event.is_set() and not self.halted:
                    self._mark_ready()
                    for sid in startable(self.nodes, self.states, self.options.parallel):
                        self._start(sid, pool, futures)
                if not futures:
                    if self._ask_operator():
                        continue
                    return
                done, _ = wait(
                    futures, timeout=self.options.poll_seconds, return_when=FIRST_COMPLETED
                )
                for future in done:
                    futures.pop(future)
                    self._apply(future.result())

    def _mark_ready(self) -> None:
        fresh = [sid for sid in ready(self.nodes, self.states) if self._state(sid) == "pending"]
        if fresh:
            self.journal.append(self.info.id, [self._entry(sid, "ready") for sid in fresh])
            for sid in fresh:
                self._set(sid, "ready")

    def _start(
        self, sid: str, pool: ThreadPoolExecutor, futures: dict[Future[Outcome], str]
    ) -> None:
        spec = self.specs[sid]
        if spec.manual or (spec.destructive and sid not in self.approved):
            self._wait_for_person(spec)
            return
        self._set(sid, "running", self.attempts.get(sid, 0) + 1)
        futures[pool.submit(self.executor.execute, spec, self.attempts[sid])] = sid

    def _wait_for_person(self, spec: StepSpec) -> None:
        gate = not spec.manual
        approval = gate or spec.action == "approval"
        second = approval and self.options.two_person and (gate or self._guards_destructive(spec))
        if gate:
            message = f"destructive: needs an approval before it runs ({spec.title or spec.id})"
            if second:
                message += f"; from someone other than {self.info.started_by}"
        else:
            message = (
                spec.instructions.strip().splitlines()[0] if spec.instructions else spec.action
            )
        extra = {"gate": gate, "approval": approval, "second_person": second}
        entry = self._entry(spec.id, "waiting", message, **extra)
        self.journal.append(self.info.id, [entry])
        self._set(spec.id, "waiting", message=message)

    def _guards_destructive(self, spec: StepSpec) -> bool:
        return any(spec.id in other.needs and other.destructive for other in self.specs.values())

    def _ask_operator(self) -> bool:
        """Interactive runs: ask about each step that waits. True if anything changed."""
        if self.operator is None or self.options.non_interactive or self.abort_event.is_set():
            return False
        changed = False
        for sid, state in list(self.states.items()):
            if state in ("waiting", "paused"):
                changed |= self._ask_one(sid, state)
        return changed

    def _ask_one(self, sid: str, state: str) -> bool:
        assert self.operator is not None
        last = self.journal.last_step_records(self.info.id)[sid]
        answer = self.operator.ask(
            self.info.id, self.specs[sid], state, last.body.get("message", "")
        )
        if answer is None:
            return False
        try:
            ack(self.journal, self.info.id, sid, answer)
        except RunStateError as exc:
            self.reporter.step(sid, state, self.attempts.get(sid, 0), exc.message)
            return False
        self._poll()
        return True

    # -- bookkeeping ----------------------------------------------------------------------

    def _apply(self, outcome: Outcome) -> None:
        self._set(outcome.step_id, outcome.state, outcome.attempt, outcome.message)
        spec = self.specs[outcome.step_id]
        if outcome.state in BROKEN and spec.on_failure == "abort":
            self.halted = True

    def _set(self, sid: str, state: str, attempt: int | None = None, message: str = "") -> None:
        self.states[sid] = state
        if attempt is not None:
            self.attempts[sid] = attempt
        self.reporter.step(sid, state, self.attempts.get(sid, 0), message)

    def _state(self, sid: str) -> str:
        return self.states.get(sid, "pending")

    def _entry(self, sid: str, state: str, message: str = "", **extra: Any) -> Entry:
        spec = self.specs[sid]
        return self.executor.record(spec, state, self.attempts.get(sid, 0), message, **extra)

    def _final_state(self) -> str:
        if self.abort_event.is_set():
            return "aborted"
        state = run_state(self.nodes, self.states, aborted=False)
        if self.halted and state == "running":
            return "failed"
        return state


@contextmanager
def _run_lock(journal_path: Path, run_id: str) -> Iterator[None]:
    """One executing process per run; the lock dies with its process (kill -9 included)."""
    lock_dir = journal_path.parent / "runs"
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{run_id}.lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the journal's own locking remains
        yield
        return
    with open(path, "a+") as fh:
        _lock_or_fail(fh.fileno(), run_id, fcntl)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _lock_or_fail(fd: int, run_id: str, fcntl: Any, patience: float = 5.0) -> None:
    """Take the run's lock, waiting a little: a command the killed engine was starting may
    hold a copy of the descriptor for a moment, between its fork and its exec."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise RunStateError(
                    f"run {run_id} is being executed by another dr process",
                    hint="wait for it, or `dr run abort RUN` to stop it",
                ) from exc
        time.sleep(0.05)
