"""Run one step: secrets from the environment, attempts with retries and backoff, timeouts,
verification, the wait for a rebooted host, and the idempotency re-check on resume.

The executor is the runner's "how" for a single step. Every transition is durable before
it is acted on: the runner commits ``running`` attempt n before the step is handed here;
what a transport started (a pid and its start time, a WinRM shell and command id) is
committed as a ``started`` record before the command may do anything (the local transport
holds it at a gate until then); a retry's ``running`` is committed before its command is
sent. The transition that ends the step comes back inside the :class:`Outcome` (with what
the attempt printed: redacted, capped, compressed, digested), and the runner commits it in
the same transaction as the steps it lets start: one commit where there would be two.
A command that ran and failed is an :class:`Outcome`, not an exception. Each failed
attempt carries what its command said last and :func:`engine.failures.classify`'s verdict:
a failure no retry can fix ends the step at that attempt; a retried one is told to the
``report`` hook (the responder's screen) once its records are committed.

On resume, an attempt that was in flight is first made sure of as stopped
(:meth:`Executor.make_sure_stopped`: the transport's ``stop`` with the journalled handle),
and only then re-checked with the step's idempotency check.

What a step does comes from the step library: :func:`build_specs` turns a plan's steps into
:class:`StepSpec` s through ``engine.runbook`` (the variant for the step's platform) and
``engine.render`` (the quoted commands), so the rest of the engine sees plain data.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from engine.errors import TransportError
from engine.failures import Failure, Verdict, classify, reason_lines
from engine.journal import Entry, Journal, Output
from engine.redact import Redactor
from engine.render import quote_posix, quote_powershell
from engine.transports.base import Command, Handle, Result, Transport

if TYPE_CHECKING:
    from engine.plan import Plan

AUTOMATED = frozenset({"powershell", "cmd", "check", "posix"})
MANUAL = frozenset({"manual", "approval"})


@dataclass(frozen=True)
class Check:
    """A verification or idempotency command and how to judge its answer: an
    ``engine.runbook.Verify`` (exit code, regex or JSON), or exit code 0 when ``rule`` is None."""

    command: Command
    rule: Any = None


@dataclass(frozen=True)
class RebootWait:
    """After the command: wait until the host answers again and these services run."""

    services: tuple[str, ...] = ()
    deadline_seconds: float = 1800.0
    poll_seconds: float = 10.0


@dataclass(frozen=True)
class Secret:
    """A secret the step needs: read from ``source`` in our environment, handed to the
    command as ``target`` (what the rendered template refers to); never in the script."""

    name: str
    source: str
    target: str


@dataclass(frozen=True)
class StepSpec:
    """Everything the engine needs to carry out one step, already rendered and quoted."""

    id: str
    host: str
    action: str
    command: Command | None = None
    verify: Check | None = None
    idempotency: Check | None = None
    timeout: float = 3600.0
    retries: int = 0
    backoff: float = 5.0
    resources: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    on_failure: str = "pause"  # abort | pause | continue
    destructive: bool = False
    reboot: RebootWait | None = None
    secrets: tuple[Secret, ...] = ()
    instructions: str = ""
    title: str = ""
    estimate: float = 0.0  # the plan's estimate of the step's duration, in seconds

    @property
    def manual(self) -> bool:
        return self.action in MANUAL


@dataclass(frozen=True)
class Outcome:
    """How a step ended this time: succeeded, failed, timed_out, paused or pending (runs again).

    ``entries`` and ``outputs`` are the records that end the step, not yet committed: the
    runner commits them before it acts on the outcome."""

    step_id: str
    state: str
    attempt: int
    message: str = ""
    entries: tuple[Entry, ...] = ()
    outputs: tuple[Output, ...] = ()
    failure: Failure | None = None  # the last attempt failed: what the responder is told


@dataclass
class _Attempt:
    state: str
    message: str = ""
    outputs: list[Output] = field(default_factory=list)
    lines: tuple[str, ...] = ()  # what the command said last (redacted)
    verdict: Verdict | None = None  # no retry can fix it
    summary: str = ""  # the message without the verdict: "exit code 2"

    def extra(self) -> dict[str, Any]:
        """What the attempt's journal record carries beyond state and message."""
        extra: dict[str, Any] = {"reason": list(self.lines)} if self.lines else {}
        if self.verdict is not None:
            extra["not_retried"] = self.verdict.rule.name
        return extra


class TransportPool:
    """Transports per host, one per concurrent user (a transport serves one thread at a time)."""

    def __init__(self, factory: Callable[[str], Transport]) -> None:
        self._factory = factory
        self._idle: dict[str, list[Transport]] = {}
        self._all: list[Transport] = []
        self._lock = threading.Lock()

    @contextmanager
    def host(self, name: str) -> Iterator[Transport]:
        with self._lock:
            idle = self._idle.setdefault(name, [])
            transport = idle.pop() if idle else None
        if transport is None:
            transport = self._factory(name)
            with self._lock:
                self._all.append(transport)
        try:
            yield transport
        finally:
            with self._lock:
                self._idle[name].append(transport)

    def close(self) -> None:
        with self._lock:
            for transport in self._all:
                transport.close()
            self._all.clear()
            self._idle.clear()


class Executor:
    """Carries out steps of one run; shared by the runner's worker threads."""

    def __init__(
        self,
        journal: Journal,
        run_id: str,
        transports: TransportPool,
        *,
        redactor: Redactor | None = None,
        abort: threading.Event | None = None,
        environ: Mapping[str, str] | None = None,
        dry_run: bool = False,
        report: Callable[[Failure], None] | None = None,
    ) -> None:
        self.journal = journal
        # told of each failed attempt that is retried, once its records are committed
        self.report = report or (lambda failure: None)
        # a dry run sends every command to a recording transport: checks are recorded as
        # "would run" but cannot be judged (nothing answered them), and no host reboots
        self.dry_run = dry_run
        self.run_id = run_id
        self.transports = transports
        self.redactor = redactor or Redactor()
        self.abort = abort or threading.Event()
        self.environ = os.environ if environ is None else environ
        # step id -> (spec, attempt, what its transport started): what an abort stops
        self.in_flight: dict[str, tuple[StepSpec, int, dict[str, Any]]] = {}
        self._flight_lock = threading.Lock()

    # -- transitions ----------------------------------------------------------------------

    def record(
        self, spec: StepSpec, state: str, attempt: int, message: str = "", **extra: Any
    ) -> Entry:
        body = {"state": state, "attempt": attempt, "host": spec.host, **extra}
        if message:
            body["message"] = self.redactor.text(message)
        return Entry("step", body, spec.id)

    def _commit(self, entries: list[Entry], outputs: Sequence[Output] = ()) -> None:
        self.journal.append(self.run_id, entries, outputs)

    # -- a step ---------------------------------------------------------------------------

    def execute(self, spec: StepSpec, first_attempt: int = 1) -> Outcome:
        """Attempts until one succeeds, the retries run out, or the run is aborted.

        ``running`` for ``first_attempt`` is already committed (by the runner); the records
        of a failed attempt that is retried, and the next ``running``, are committed here."""
        env, missing = self.secrets(spec)
        if missing and not self.dry_run:  # a dry run sends nothing: no secret is needed
            msg = f"secret {missing} is not set: set it in the environment, then retry the step"
            return self.outcome(spec, "paused", first_attempt, msg)
        attempt, last = first_attempt, first_attempt + spec.retries
        while True:
            result = self._attempt(spec, attempt, env)
            entry = self.record(spec, result.state, attempt, result.message, **result.extra())
            if result.state == "succeeded":
                return Outcome(spec.id, "succeeded", attempt, "", (entry,), tuple(result.outputs))
            summary = result.summary or result.message
            failure = Failure(
                spec.id, attempt, last, summary, result.lines, spec.backoff, result.verdict
            )
            if attempt >= last or self.abort.is_set() or result.verdict is not None:
                return self._give_up(spec, replace(failure, retry_in=None), result, entry)
            self._commit([entry], result.outputs)
            self.report(failure)
            if self._backoff(spec, attempt - first_attempt):
                return Outcome(spec.id, result.state, attempt, result.message)
            attempt += 1
            self._commit([self.record(spec, "running", attempt)])

    def outcome(self, spec: StepSpec, state: str, attempt: int, msg: str, **extra: Any) -> Outcome:
        entry = self.record(spec, state, attempt, msg, **extra)
        return Outcome(spec.id, state, attempt, msg, (entry,))

    def _backoff(self, spec: StepSpec, retry: int) -> bool:
        """Wait the runbook's ``backoff_seconds`` before the next attempt, the same each time,
        so that the policy a runbook shows ("2 retries, 2 min apart") is the one applied;
        True if the run was aborted."""
        return self.abort.wait(spec.backoff) or self.abort.is_set()

    def _give_up(self, spec: StepSpec, failure: Failure, result: _Attempt, entry: Entry) -> Outcome:
        outputs, attempt = tuple(result.outputs), failure.attempt
        if spec.on_failure == "pause" and not self.abort.is_set():
            msg = f"{result.message}; waiting for the operator: retry, skip or mark done"
            paused = self.record(spec, "paused", attempt, msg)
            return Outcome(spec.id, "paused", attempt, msg, (entry, paused), outputs, failure)
        return Outcome(spec.id, result.state, attempt, result.message, (entry,), outputs, failure)

    def secrets(self, spec: StepSpec) -> tuple[dict[str, str], str | None]:
        """The step's secrets from the environment; the name of the first missing one."""
        env: dict[str, str] = {}
        for secret in spec.secrets:
            value = self.environ.get(secret.source)
            if not value:
                return {}, f"{secret.name} (${secret.source})"
            env[secret.target] = value
        if env:
            self.redactor = self.redactor.with_values(env.values())
        return env, None

    def _attempt(self, spec: StepSpec, attempt: int, env: dict[str, str]) -> _Attempt:
        if spec.command is None:
            return _Attempt("succeeded")
        command = replace(spec.command, env={**spec.command.env, **env})
        boot = self._boot_id(spec) if spec.reboot and not self.dry_run else ""
        try:
            result = self._run_command(spec, attempt, command)
        except TransportError as exc:
            return _transport_failure(exc, spec.host)
        outputs = self._outputs(spec.id, attempt, "command", result)
        if result.timed_out:
            return _failed(f"stopped after {spec.timeout:g} s", outputs, "command", "timed_out")
        if result.exit_code != 0:
            return _command_failed(command, result.exit_code, outputs, self.abort.is_set())
        return self._after_command(spec, attempt, boot, outputs)

    def _run_command(self, spec: StepSpec, attempt: int, command: Command) -> Result:
        """The step's command; a transport that reports what it starts has it journalled
        (``started``) before the command may act, and known as in flight until it ends."""
        with self.transports.host(spec.host) as transport:
            if not getattr(transport, "reports_start", False):
                return transport.run(command, spec.timeout)
            try:
                hook = self._start_hook(spec, attempt)
                return transport.run(command, spec.timeout, on_start=hook)  # type: ignore[call-arg]
            finally:
                with self._flight_lock:
                    self.in_flight.pop(spec.id, None)

    def _start_hook(self, spec: StepSpec, attempt: int) -> Callable[[Handle], None]:
        """Journal what the transport started, then let it run — unless the run is stopping.

        Known as in flight before the stop flag is read: :meth:`stop_in_flight` sets the
        flag before it looks, so a command it does not see is one that never starts (the
        transport does not open its gate, or closes its shell, when the hook raises)."""

        def started(handle: Handle) -> None:
            body = {"attempt": attempt, "host": spec.host, "handle": dict(handle)}
            body["message"] = f"attempt {attempt} started: {describe_handle(handle)}"
            self._commit([Entry("started", body, spec.id)])
            with self._flight_lock:
                first = spec.id not in self.in_flight
                known = self.in_flight.get(spec.id, (spec, attempt, {}))[2]
                self.in_flight[spec.id] = (spec, attempt, {**known, **handle})
            if first and self.abort.is_set():
                raise TransportError(f"attempt {attempt} was not let start: the run is stopping")

        return started

    # -- stopping an attempt --------------------------------------------------------------

    def make_sure_stopped(
        self, spec: StepSpec, attempt: int, handle: Handle | None, by: str
    ) -> str | None:
        """Stop what attempt ``attempt`` started (if it still runs) and record it; None when
        it is certainly not running, else why that cannot be known."""
        if not handle:
            return None
        try:
            with self.transports.host(spec.host) as transport:
                stop = getattr(transport, "stop", None)
                if stop is None:
                    raise TransportError(f"the transport for {spec.host} cannot stop commands")
                result = str(stop(handle))
        except TransportError as exc:
            return (
                f"in doubt: cannot make sure attempt {attempt} stopped on {spec.host} "
                f"({exc.ident} {exc.message}); check the host by hand, then acknowledge it "
                "(done, retry or skip)"
            )
        body = {"attempt": attempt, "host": spec.host, "by": by, "result": result}
        self._commit([Entry("stop", body, spec.id)])
        return None

    def stop_in_flight(self, by: str) -> None:
        """Stop every command running now (``dr run abort``, Ctrl-C), each from a fresh
        transport; the abort flag must be set first (see :meth:`_start_hook`)."""
        with self._flight_lock:
            flights = list(self.in_flight.items())
        for _, (spec, attempt, handle) in flights:
            self.make_sure_stopped(spec, attempt, handle, by)

    def _after_command(
        self, spec: StepSpec, attempt: int, boot: str, outputs: list[Output]
    ) -> _Attempt:
        if spec.reboot is not None and not self.dry_run:
            answered, msg = self.wait_for_host(spec, boot)
            if not answered:
                return _Attempt("failed", msg, outputs)
        if spec.verify is not None:
            ok, why = self.check(spec, spec.verify, attempt, "verify", outputs)
            if not ok:
                return _failed(f"verification failed ({why})", outputs, "verify")
        return _Attempt("succeeded", "", outputs)

    def check(
        self, spec: StepSpec, check: Check, attempt: int, purpose: str, outputs: list[Output]
    ) -> tuple[bool, Result | str]:
        """Run a check command: (True, its result) or (False, why: the verdict, or the
        transport error's message prefixed with "unreachable")."""
        env, _missing = self.secrets(spec)  # a check of dr's own store needs its passphrase too
        command = replace(check.command, env={**check.command.env, **env})
        try:
            with self.transports.host(spec.host) as transport:
                result = transport.run(command, min(spec.timeout, 600.0))
        except TransportError as exc:
            return False, f"unreachable: {exc.ident} {exc.message}"
        outputs.extend(self._outputs(spec.id, attempt, purpose, result))
        if self.dry_run:
            return purpose == "verify", result  # recorded; a dry run re-runs in-doubt steps
        ok, reason = judge(check, result)
        return ok, (result if ok else reason)

    def _outputs(self, step_id: str, attempt: int, purpose: str, result: Result) -> list[Output]:
        streams = (("stdout", result.stdout), ("stderr", result.stderr))
        return [
            Output(step_id, attempt, purpose, name, self.redactor.data(data))
            for name, data in streams
            if data
        ]

    # -- resume ---------------------------------------------------------------------------

    def recheck(self, spec: StepSpec, attempt: int) -> Outcome:
        """A step that was running when the engine stopped: did it happen?"""
        if spec.idempotency is None:
            msg = (
                "was running when the run stopped and has no idempotency check: see whether "
                "it happened, then acknowledge it (done, retry or skip)"
            )
            self._commit([self.record(spec, "paused", attempt, msg, in_doubt=True)])
            return Outcome(spec.id, "paused", attempt, msg)
        outputs: list[Output] = []
        ok, result = self.check(spec, spec.idempotency, attempt, "idempotency", outputs)
        if ok:
            msg = "already done: its idempotency check passed after the run stopped"
            self._commit([self.record(spec, "succeeded", attempt, msg, via="idempotency")], outputs)
            return Outcome(spec.id, "succeeded", attempt, msg)
        if isinstance(result, str) and result.startswith("unreachable"):
            msg = f"in doubt and its idempotency check could not run ({result})"
            self._commit([self.record(spec, "paused", attempt, msg, in_doubt=True)], outputs)
            return Outcome(spec.id, "paused", attempt, msg)
        msg = f"not done (its idempotency check says: {result}): runs again"
        self._commit([self.record(spec, "pending", attempt, msg, via="idempotency")], outputs)
        return Outcome(spec.id, "pending", attempt, msg)

    # -- reboots --------------------------------------------------------------------------

    def _boot_id(self, spec: StepSpec) -> str:
        """The host's boot time before a reboot ('' if it cannot say)."""
        assert spec.reboot is not None
        probe = reboot_probe(spec.reboot.services, _shell(spec))
        try:
            with self.transports.host(spec.host) as transport:
                result = transport.run(probe, 60.0)
        except TransportError:
            return ""
        return _first_line(result.stdout)

    def wait_for_host(self, spec: StepSpec, boot_before: str) -> tuple[bool, str]:
        """Poll until the host answers with a new boot time and its services run, or the
        deadline passes. Connection errors while it restarts are expected and ignored."""
        assert spec.reboot is not None
        reboot = spec.reboot
        probe = reboot_probe(reboot.services, _shell(spec))
        deadline = time.monotonic() + reboot.deadline_seconds
        while not self.abort.is_set():
            if self._host_is_back(spec, probe, boot_before):
                return True, ""
            if time.monotonic() >= deadline:
                break
            self.abort.wait(min(reboot.poll_seconds, max(deadline - time.monotonic(), 0.0)))
        names = ", ".join(reboot.services) or "no named services"
        return False, (
            f"{spec.host} did not answer with {names} running within "
            f"{reboot.deadline_seconds:g} s of the restart"
        )

    def _host_is_back(self, spec: StepSpec, probe: Command, boot_before: str) -> bool:
        try:
            with self.transports.host(spec.host) as transport:
                result = transport.run(probe, 60.0)
        except TransportError:
            return False
        booted = _first_line(result.stdout)
        return result.ok and (not boot_before or (booted != "" and booted != boot_before))


# -- pure helpers -------------------------------------------------------------------------


def _failed(
    message: str,
    outputs: list[Output],
    purpose: str,
    state: str = "failed",
    verdict: Verdict | None = None,
) -> _Attempt:
    """A failed attempt, with what its ``purpose`` command said last as the reason."""
    streams = {o.stream: o.data for o in outputs if o.purpose == purpose}
    lines = tuple(reason_lines(streams.get("stderr", b""), streams.get("stdout", b"")))
    full = f"{message}; {verdict.text()}" if verdict is not None else message
    return _Attempt(state, full, outputs, lines, verdict, message)


def _command_failed(
    command: Command, exit_code: int, outputs: list[Output], aborted: bool
) -> _Attempt:
    """The command ran and failed: its exit code, and the rule no retry can fix, if one
    matches (a command an abort stopped failed because of the abort)."""
    if aborted:
        return _failed(f"stopped by abort: exit code {exit_code}", outputs, "command")
    data = [o.data for o in outputs if o.purpose == "command"]
    verdict = classify(exit_code=exit_code, output=data, shell=command.shell, script=command.script)
    return _failed(f"exit code {exit_code}", outputs, "command", verdict=verdict)


def _transport_failure(exc: TransportError, host: str = "") -> _Attempt:
    """The command could not be sent or did not come back: the error, its hint, the rule —
    said of the plan's host (a transport names the address it dialled)."""
    verdict = classify(error=exc)
    summary = f"{exc.ident} {exc.message}"
    if host and host.lower() not in exc.message.lower():
        summary = f"{host}: {summary}"
    message = f"{summary}; not retried — {verdict.rule.todo}" if verdict else summary
    hint = (exc.hint,) if exc.hint else ()
    return _Attempt("failed", message, lines=hint, verdict=verdict, summary=summary)


def describe_handle(handle: Handle) -> str:
    """One line for the journal: what was started, where."""
    if handle.get("transport") == "local":
        return f"pid {handle.get('pid')} (process group {handle.get('pgid')})"
    if handle.get("transport") == "winrm":
        command = f", command {handle['command_id']}" if handle.get("command_id") else ""
        return f"{handle.get('endpoint')} shell {handle.get('shell_id')}{command}"
    return ", ".join(f"{k} {v}" for k, v in sorted(handle.items()))


def judge(check: Check, result: Result) -> tuple[bool, str]:
    """Read a check's answer: (passed, why) from its rule, or exit code 0 without one."""
    if result.timed_out:
        return False, "the check timed out"
    if check.rule is None:
        return result.exit_code == 0, f"exit code {result.exit_code}"
    from engine.runbook import check_output

    text = result.stdout.decode("utf-8", errors="replace")
    verdict = check_output(check.rule, result.exit_code, text)
    return verdict.ok, verdict.reason


def reboot_probe(services: tuple[str, ...], shell: str) -> Command:
    """A command that prints the boot time and fails unless every named service runs.

    Windows: ``Get-WmiObject`` (Windows PowerShell 1.0 to 5.1; ``Get-CimInstance`` needs 3.0)
    prints ``LastBootUpTime`` as WMI's DMTF datetime string, which is only compared with the
    one read before the restart."""
    if shell == "posix":
        names = " ".join(quote_posix(s) for s in services)
        script = "cat /proc/sys/kernel/random/boot_id 2>/dev/null || uptime -s\n"
        if services:
            script += f'for s in {names}; do systemctl is-active --quiet "$s" || exit 1; done\n'
        return Command(script, shell="posix")
    names = ",".join(quote_powershell(s) for s in services)
    script = (
        "$ProgressPreference = 'SilentlyContinue'\n"
        "(Get-WmiObject -Class Win32_OperatingSystem).LastBootUpTime\n"
    )
    if services:
        script += (
            f"$down = @(Get-Service -Name {names} -ErrorAction Stop |"
            " Where-Object { $_.Status -ne 'Running' })\n"
            "if ($down.Count -gt 0) { exit 1 }\n"
        )
    return Command(script, shell="powershell")


def _shell(spec: StepSpec) -> str:
    return spec.command.shell if spec.command is not None else "powershell"


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0].strip() if text else ""


# -- from the step library ----------------------------------------------------------------


def build_specs(plan: Plan, library: Any) -> dict[str, StepSpec]:
    """Render every step of a plan through its library variant (``engine.runbook.Library``)."""
    from engine.render import render_step

    specs: dict[str, StepSpec] = {}
    for step in plan.steps:
        kind = library.kind(step.kind)
        rendered = render_step(library.variant(step), step, kind)
        specs[step.id] = spec_from_rendered(step, rendered)
    return specs


def spec_from_rendered(step: Any, rendered: Any) -> StepSpec:
    """A plan step and its ``engine.render.RenderedStep`` as a :class:`StepSpec`."""
    refs = {ref.name: ref for ref in step.secrets}
    secrets = tuple(
        Secret(name, refs[name].env if name in refs and refs[name].env else target, target)
        for name, target in rendered.secret_env.items()
    )
    reboot = None
    if rendered.reboot is not None:
        deadline = float(rendered.reboot.deadline_seconds)
        poll = max(0.05, min(10.0, deadline / 30))
        reboot = RebootWait(tuple(rendered.reboot.services), deadline, poll)
    return StepSpec(
        id=step.id,
        host=step.host,
        action=rendered.action,
        command=rendered.command,
        verify=_check(rendered.verify, rendered.verify_check),
        idempotency=_check(rendered.idempotency, rendered.idempotency_check),
        timeout=float(rendered.timeout_seconds),
        retries=int(rendered.retries),
        backoff=float(rendered.backoff_seconds),
        resources=tuple(rendered.resources),
        needs=tuple(step.needs),
        on_failure=rendered.on_failure,
        destructive=bool(rendered.destructive),
        reboot=reboot,
        secrets=secrets,
        instructions=rendered.instructions,
        title=rendered.title,
        estimate=float(getattr(step, "estimate_seconds", 0) or 0),
    )


def _check(command: Command | None, rule: Any) -> Check | None:
    return None if command is None else Check(command, rule)
