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
* ``abort`` (from any process) stops new steps from starting and stops the commands
  running now (the transport's ``stop``: the local process group, WinRM's terminate signal),
  recording each; a step stopped this way ends failed;
* a step that was running when the engine died is first made sure of as stopped (its
  journalled ``started`` handle), then re-checked, so its command cannot finish behind the
  re-check's back and run twice.
* an interrupt (Ctrl-C, :meth:`Runner.interrupt`) stops this process's part: the commands
  running now are stopped and recorded, nothing else is decided, and the run is left
  ``interrupted`` for ``resume`` to continue as after a crash.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine import filelock
from engine.errors import RunStateError
from engine.executor import Executor, Outcome, StepSpec, TransportPool
from engine.failures import Failure
from engine.journal import Entry, Journal, JournalView, Output, RunInfo
from engine.plan import Plan
from engine.redact import Redactor
from engine.scheduler import BROKEN, NEEDS_OPERATOR, Frontier, Node, run_state
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
    journal_sync: str = "full"  # or "normal": durable against a crash, not a power cut
    #: steps that wait for a person's go-ahead (`dr run ack`) before they run, e.g. a
    #: drill's clean-up held so the restored copy can be inspected first
    hold: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunOptions:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("library_dirs", "hold"):
            if name in known:
                known[name] = tuple(known[name])
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

    def attempt_failed(self, failure: Failure) -> None:
        """An attempt failed (its records are committed): why, and whether another follows.
        Called from the thread that ran it while a retry waits for its backoff."""

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
    """Record a person's decision for a waiting or paused step; return the step's new state.

    The step's state is read inside the transaction that writes the decision, so two
    acknowledgements of one step at the same moment cannot both take effect."""
    info = journal.run(run_ref)
    if step_id not in plan_step_ids(info):
        raise RunStateError(f"run {info.id} has no step {step_id!r}", hint="`dr run status RUN`")
    new: list[str] = []

    def build(view: JournalView) -> list[Entry]:
        _require_open_state(info.id, view.run_state())
        last = view.last_step(step_id)
        state = str(last.body["state"]) if last else "pending"
        body = last.body if last else {}
        target = _ack_target(step_id, state, decision.decision, gate=bool(body.get("gate")))
        if body.get("second_person") and _two_person(journal, info):
            _require_second_person(info, step_id, decision.by)
        new.append(target)
        return _ack_entries(step_id, state, target, body, decision)

    journal.append_checked(info.id, build)
    return new[0]


def _ack_entries(
    step_id: str, state: str, new: str, body: Mapping[str, Any], decision: Decision
) -> list[Entry]:
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
    return [Entry("ack", entry, step_id), Entry("step", step_body, step_id)]


def abort(journal: Journal, run_ref: str, by: str, note: str = "") -> RunInfo:
    """Stop a run: nothing new starts; the runner executing it stops the commands it has
    running (and records that it did); `stop_orphans` covers a runner that is gone."""
    info = journal.run(run_ref)

    def build(view: JournalView) -> list[Entry]:
        _require_open_state(info.id, view.run_state())
        return [Entry("run", {"state": "aborted", "by": by, "note": note})]

    journal.append_checked(info.id, build)
    return info


def stop_orphans(
    journal: Journal, info: RunInfo, transport_factory: Callable[[str], Transport], by: str
) -> list[str]:
    """Stop commands of steps left ``running`` by a runner that is gone (killed, crashed).

    Does nothing while a runner holds the run (it stops its own commands on abort).
    Returns one line per step: what was done, or why it could not be."""
    flights = in_flight_handles(journal, info.id)
    if not flights or _run_lock_held(journal.path, info.id):
        return []
    hosts = {s["id"]: s["host"] for s in json.loads(info.plan_json)["steps"]}
    pool = TransportPool(transport_factory)
    executor = Executor(journal, info.id, pool)
    lines = []
    try:
        for sid, (attempt, handle) in flights.items():
            spec = StepSpec(id=sid, host=hosts.get(sid, "?"), action="check")
            why = executor.make_sure_stopped(spec, attempt, handle, by)
            lines.append(f"{sid}: {why or 'made sure its command is stopped'}")
    finally:
        pool.close()
    return lines


def in_flight_handles(journal: Journal, run_id: str) -> dict[str, tuple[int, dict[str, Any]]]:
    """For each step whose last state is ``running``: its attempt and what that attempt
    started (the ``started`` records of that attempt, merged)."""
    last = journal.last_step_records(run_id)
    running = {sid: int(r.body.get("attempt", 0)) for sid, r in last.items()}
    running = {sid: a for sid, a in running.items() if last[sid].body["state"] == "running"}
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    for rec in journal.records(run_id, kinds=["started"]):
        sid = rec.step_id or ""
        if sid in running and rec.body.get("attempt") == running[sid]:
            known = out.get(sid, (running[sid], {}))[1]
            out[sid] = (running[sid], {**known, **rec.body.get("handle", {})})
    return out


def plan_step_ids(info: RunInfo) -> list[str]:
    return [s["id"] for s in json.loads(info.plan_json)["steps"]]


def run_plan(info: RunInfo) -> Plan:
    """The run's own copy of its plan (what resume executes, whatever happened to the file)."""
    return Plan.model_validate_json(info.plan_json)


def _require_open(journal: Journal, info: RunInfo) -> None:
    _require_open_state(info.id, journal.run_state(info.id))


def _require_open_state(run_id: str, state: str) -> None:
    if state in FINISHED:
        raise RunStateError(f"run {run_id} has {state}; nothing more can happen to it")


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


@dataclass
class _Batch:
    """Records to commit in one transaction before acting on any of them."""

    entries: list[Entry] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    starts: list[tuple[StepSpec, int]] = field(default_factory=list)


@dataclass
class _Prompt:
    """A question to the operator, asked on its own thread so automated steps go on."""

    step_id: str
    state: str
    future: Future[Decision | None]


class Runner:
    """Executes one run until it succeeds, fails, is aborted or waits for a person.

    One loop on one thread decides; a pool of ``parallel`` threads carries steps out. Each
    turn of the loop commits, in one transaction, the outcomes of the steps that finished
    and the ``ready``/``running``/``waiting`` records of the steps it lets start, then hands
    those to the pool: a step's end and its dependents' start cost one commit, not two.
    Readiness is kept incrementally (:class:`engine.scheduler.Frontier`), so a turn costs
    what changed, not the size of the plan.
    """

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
        self.abort_event = threading.Event()  # the executor stops: an abort, or an interrupt
        self.interrupted = threading.Event()
        self.transports = TransportPool(transport_factory)
        self.executor = Executor(
            journal, info.id, self.transports, redactor=Redactor(), abort=self.abort_event,
            environ=environ, dry_run=self.options.dry_run, report=self.reporter.attempt_failed,
        )  # fmt: skip
        self.states: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.approved: set[str] = set()
        self.halted = False
        self.frontier = Frontier(self.nodes)
        self._guards = {need for s in self.specs.values() if s.destructive for need in s.needs}
        self._order = {sid: i for i, sid in enumerate(self.specs)}
        self._needs_person: set[str] = set()
        self._later: set[str] = set()  # answered "later" in this process
        self._notes: list[tuple[str, str, int, str]] = []
        self._failures: list[Failure] = []  # last attempts that failed, told with the notes
        self._prompt: _Prompt | None = None
        self._finished: list[Outcome] = []
        self._stopped_in_flight = False
        self._seen = 0
        self._polled = 0.0

    def interrupt(self) -> None:
        """Stop executing in this process (Ctrl-C), safe to call from a signal handler: nothing
        new starts, the commands running now are stopped (recorded, by ``interrupt``), and
        nothing more is decided — a step that was running stays ``running`` in the journal,
        so ``resume`` re-checks it as after a crash. The run ends ``interrupted``."""
        self.interrupted.set()
        self.abort_event.set()

    def run(self) -> str:
        """Run (or resume) to a stop; return the run's state."""
        with _run_lock(self.journal.path, self.info.id):
            if self.journal.run_state(self.info.id) == "succeeded":
                return "succeeded"  # nothing left to do; resuming it again is harmless
            _require_open(self.journal, self.info)
            self.journal.set_sync(self.options.journal_sync)
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
        self._seen = self.journal.count(self.info.id)
        for sid, rec in self.journal.last_step_records(self.info.id).items():
            self.states[sid] = str(rec.body["state"])
            self.attempts[sid] = int(rec.body.get("attempt", 0))
        for rec in self.journal.records(self.info.id, kinds=["ack"]):
            if rec.body.get("approval") and rec.step_id:
                self.approved.add(rec.step_id)
        self.frontier = Frontier(self.nodes, self.states)
        self._needs_person = {s for s, st in self.states.items() if st in NEEDS_OPERATOR}

    def _record_run(self, state: str) -> None:
        body = {"state": state, "by": self.by}
        self.journal.append(self.info.id, [Entry("run", body)])

    def _recover(self) -> None:
        """After a stop: make sure attempts in flight are stopped, then re-check them; let
        broken steps run again."""
        handles = in_flight_handles(self.journal, self.info.id)
        for sid in [s for s, st in self.states.items() if st == "running" and s in self.specs]:
            spec, attempt = self.specs[sid], self.attempts.get(sid, 1)
            why = self.executor.make_sure_stopped(
                spec, attempt, handles.get(sid, (0, {}))[1], "resume"
            )
            if why is not None:
                self._commit_now(self.executor.outcome(spec, "paused", attempt, why, in_doubt=True))
                continue
            self._apply(self.executor.recheck(spec, attempt), _Batch())
        broken = [sid for sid, st in self.states.items() if st in BROKEN]
        if broken:
            entries = [self._entry(sid, "pending", "runs again on resume") for sid in broken]
            self.journal.append(self.info.id, entries)
            for sid in broken:
                self._set(sid, "pending")
        self._flush_notes()

    def _commit_now(self, outcome: Outcome) -> None:
        batch = _Batch()
        self._apply(outcome, batch)
        self._commit(batch)

    def _poll(self, force: bool = False) -> None:
        """Pick up what other processes recorded: acknowledgements and aborts (at most every
        ``poll_seconds`` while steps run; always when the loop is about to wait for nothing)."""
        now = time.monotonic()
        if not force and now - self._polled < self.options.poll_seconds:
            return
        self._polled = now
        last = self.journal.count(self.info.id)
        if last == self._seen:
            return
        for rec in self.journal.records(self.info.id, after=self._seen, kinds=["ack", "run"]):
            if rec.n > last:
                break
            if rec.kind == "run" and rec.body.get("state") == "aborted":
                self.abort_event.set()
            elif rec.kind == "ack" and rec.step_id in self.specs:
                self._take_ack(rec.step_id, rec.body)
        self._seen = last

    def _take_ack(self, sid: str, body: Mapping[str, Any]) -> None:
        if body.get("approval"):
            self.approved.add(sid)
        self._set(sid, str(body["state"]))

    # -- the loop -------------------------------------------------------------------------

    def _loop(self) -> None:
        futures: dict[Future[Outcome], str] = {}
        with ThreadPoolExecutor(max_workers=max(self.options.parallel, 1)) as pool:
            while True:
                self._turn(pool, futures, force_poll=not futures)
                self._offer_prompt()
                prompt = None if self.abort_event.is_set() else self._prompt
                if not futures and prompt is None:
                    return
                waitables: list[Future[Any]] = [*futures, *([prompt.future] if prompt else [])]
                done, _ = wait(
                    waitables, timeout=self.options.poll_seconds, return_when=FIRST_COMPLETED
                )
                for future in done:
                    if prompt is not None and future is prompt.future:
                        self._take_answer(prompt)
                    else:
                        futures.pop(future)  # type: ignore[call-overload]
                        self._finished.append(future.result())

    def _turn(
        self, pool: ThreadPoolExecutor, futures: dict[Future[Outcome], str], force_poll: bool
    ) -> None:
        """Apply what finished, decide what starts, commit both at once, then start."""
        self._poll(force=force_poll)
        if self.abort_event.is_set() and not self._stopped_in_flight:
            self._stopped_in_flight = True
            self.executor.stop_in_flight("interrupt" if self.interrupted.is_set() else "abort")
        if self.interrupted.is_set():
            self._finished.clear()  # left running in the journal: resume re-checks them
            return
        batch = _Batch()
        for outcome in self._finished:
            self._apply(outcome, batch)
        self._finished.clear()
        if not self.abort_event.is_set() and not self.halted:
            self._schedule(batch)
        self._commit(batch)
        for spec, attempt in batch.starts:
            futures[pool.submit(self.executor.execute, spec, attempt)] = spec.id
        self._flush_notes()

    def _schedule(self, batch: _Batch) -> None:
        for sid in self.frontier.take_fresh():
            batch.entries.append(self._entry(sid, "ready"))
            self._set(sid, "ready")
        for sid in self.frontier.startable(self.options.parallel):
            self._start(self.specs[sid], batch)

    def _start(self, spec: StepSpec, batch: _Batch) -> None:
        gated = spec.destructive or spec.id in self.options.hold
        if spec.manual or (gated and spec.id not in self.approved):
            self._wait_for_person(spec, batch)
            return
        _, missing = self.executor.secrets(spec)
        attempt = self.attempts.get(spec.id, 0) + 1
        if missing and not self.options.dry_run:  # a dry run sends nothing: needs no secret
            msg = f"secret {missing} is not set: set it in the environment, then retry the step"
            self._apply(self.executor.outcome(spec, "paused", attempt, msg), batch)
            return
        batch.entries.append(self.executor.record(spec, "running", attempt))
        self._set(spec.id, "running", attempt)
        batch.starts.append((spec, attempt))

    def _commit(self, batch: _Batch) -> None:
        if batch.entries or batch.outputs:
            self.journal.append(self.info.id, batch.entries, batch.outputs)

    def _wait_for_person(self, spec: StepSpec, batch: _Batch) -> None:
        gate = not spec.manual
        held = gate and not spec.destructive  # only a hold (RunOptions.hold) stops it
        approval = gate or spec.action == "approval"
        second = (
            approval
            and self.options.two_person
            and ((gate and not held) or spec.id in self._guards)
        )
        if held:
            message = f"held: runs when acknowledged ({spec.title or spec.id})"
        elif gate:
            message = f"destructive: needs an approval before it runs ({spec.title or spec.id})"
            if second:
                message += f"; from someone other than {self.info.started_by}"
        else:
            message = (
                spec.instructions.strip().splitlines()[0] if spec.instructions else spec.action
            )
        extra = {"gate": gate, "approval": approval, "second_person": second}
        batch.entries.append(self._entry(spec.id, "waiting", message, **extra))
        self._set(spec.id, "waiting", message=message)

    # -- the operator ---------------------------------------------------------------------

    def _offer_prompt(self) -> None:
        """Interactive runs: ask about the first step that waits, on a thread of its own, so
        that automated steps keep running (and finishing) while the question is open."""
        if self.operator is None or self.options.non_interactive or self.abort_event.is_set():
            return
        if self._prompt is not None:
            return
        waiting = sorted(self._needs_person - self._later, key=self._order.__getitem__)
        if not waiting:
            return
        sid = waiting[0]
        state = self.states[sid]
        last = self.journal.last_step_record(self.info.id, sid)
        message = str(last.body.get("message", "")) if last else ""
        future: Future[Decision | None] = Future()
        self._prompt = _Prompt(sid, state, future)
        operator, spec, run_id = self.operator, self.specs[sid], self.info.id

        def ask() -> None:
            try:
                future.set_result(operator.ask(run_id, spec, state, message))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=ask, name=f"dr-prompt-{sid}", daemon=True).start()

    def _take_answer(self, prompt: _Prompt) -> None:
        self._prompt = None
        answer = prompt.future.result()
        if answer is None:
            self._later.add(prompt.step_id)
            return
        try:
            ack(self.journal, self.info.id, prompt.step_id, answer)
        except RunStateError as exc:
            self._later.add(prompt.step_id)
            self.reporter.step(
                prompt.step_id, prompt.state, self.attempts.get(prompt.step_id, 0), exc.message
            )
            return
        self._poll(force=True)

    # -- bookkeeping ----------------------------------------------------------------------

    def _apply(self, outcome: Outcome, batch: _Batch) -> None:
        batch.entries.extend(outcome.entries)
        batch.outputs.extend(outcome.outputs)
        if outcome.failure is not None:
            self._failures.append(outcome.failure)
        self._set(outcome.step_id, outcome.state, outcome.attempt, outcome.message)
        spec = self.specs[outcome.step_id]
        if outcome.state in BROKEN and spec.on_failure == "abort":
            self.halted = True

    def _set(self, sid: str, state: str, attempt: int | None = None, message: str = "") -> None:
        if self.states.get(sid) != state:
            self._later.discard(sid)
        self.states[sid] = state
        self.frontier.set(sid, state)
        if state in NEEDS_OPERATOR:
            self._needs_person.add(sid)
        else:
            self._needs_person.discard(sid)
        if attempt is not None:
            self.attempts[sid] = attempt
        self._notes.append((sid, state, self.attempts.get(sid, 0), message))

    def _flush_notes(self) -> None:
        """Tell the reporter, once what it is told is durable."""
        failures, self._failures = self._failures, []
        for failure in failures:
            self.reporter.attempt_failed(failure)
        notes, self._notes = self._notes, []
        for sid, state, attempt, message in notes:
            self.reporter.step(sid, state, attempt, message)

    def _entry(self, sid: str, state: str, message: str = "", **extra: Any) -> Entry:
        spec = self.specs[sid]
        return self.executor.record(spec, state, self.attempts.get(sid, 0), message, **extra)

    def _final_state(self) -> str:
        if self.interrupted.is_set():
            return "interrupted"
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
    with open(path, "a+") as fh:
        _lock_or_fail(fh.fileno(), run_id)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            filelock.unlock(fh.fileno())


def _run_lock_held(journal_path: Path, run_id: str) -> bool:
    """Whether a process executes the run now (holds its lock)."""
    path = journal_path.parent / "runs" / f"{run_id}.lock"
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        if not filelock.try_lock(fh.fileno()):
            return True
        filelock.unlock(fh.fileno())
    return False


def _lock_or_fail(fd: int, run_id: str, patience: float = 5.0) -> None:
    """Take the run's lock, waiting a little: a command the killed engine was starting may
    hold a copy of the descriptor for a moment, between its fork and its exec."""
    deadline = time.monotonic() + patience
    while not filelock.try_lock(fd):
        if time.monotonic() >= deadline:
            raise RunStateError(
                f"run {run_id} is being executed by another dr process",
                hint="wait for it, or `dr run abort RUN` to stop it",
            )
        time.sleep(0.05)
