"""How a run looks while it executes: a live table on a terminal, plain lines otherwise;
and the prompt that asks the operator about a step that waits (interactive runs)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.prompt import Prompt
from rich.table import Table

from engine.executor import StepSpec
from engine.failures import Failure
from engine.runner import Decision, Reporter
from engine.units import duration

_STYLE = {
    "succeeded": "green",
    "acked": "green",
    "skipped": "yellow",
    "running": "cyan",
    "waiting": "magenta",
    "paused": "magenta",
    "failed": "red",
    "timed_out": "red",
}


def failure_lines(failure: Failure) -> list[str]:
    """What a responder reads the moment an attempt fails: the step, the attempt, what the
    command said last, and what happens next (a retry, or why there is none)."""
    head = f"{failure.step_id}: attempt {failure.attempt} of {failure.attempts} failed"
    lines = [f"{head} — {failure.summary}", *(f"  | {line}" for line in failure.lines)]
    verdict = failure.verdict
    if verdict is not None:
        if verdict.evidence and not any(verdict.evidence in line for line in failure.lines):
            lines.append(f"  | {verdict.evidence}")
        lines.append(f"  not retried: {verdict.rule.why} — {verdict.rule.todo}")
    elif failure.retry_in is not None:
        nxt = failure.attempt + 1
        lines.append(f"  retrying in {failure.retry_in:g} s (attempt {nxt} of {failure.attempts})")
    elif failure.attempt >= failure.attempts > 1:
        lines.append(f"  no retries left ({failure.attempts} attempts)")
    return lines


DRY_RUN = "DRY RUN — nothing is sent"


def shown_state(state: str, dry_run: bool) -> str:
    """A step's state as shown: in a dry run a step is "recorded", never "succeeded"."""
    return "recorded" if dry_run and state == "succeeded" else state


class PlainReporter(Reporter):
    """One line per transition: for logs, pipes and CI."""

    def __init__(self, console: Console, dry_run: bool = False) -> None:
        self.console = console
        self.dry_run = dry_run
        self._told: set[tuple[str, int]] = set()  # attempts whose failure was just printed
        self._specs: Mapping[str, StepSpec] = {}
        self._states: dict[str, str] = {}

    def begin(self, run_id: str, specs: Mapping[str, StepSpec], states: Mapping[str, str]) -> None:
        dry = f" — {DRY_RUN}" if self.dry_run else ""
        self._specs, self._states = specs, dict(states)
        self.console.print(f"run {run_id}: {len(specs)} steps{dry}", highlight=False)

    def attempt_failed(self, failure: Failure) -> None:
        if failure.retry_in is None:
            self._told.add((failure.step_id, failure.attempt))
        for line in failure_lines(failure):
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def step(self, step_id: str, state: str, attempt: int, message: str = "") -> None:
        if state in ("ready", "pending"):
            return
        if (step_id, attempt) in self._told:  # its reason is on the lines just above
            self._told.discard((step_id, attempt))
            message = "waiting for the operator" if state == "paused" else ""
        tail = f" — {message}" if message else ""
        att = f" (attempt {attempt})" if attempt > 1 else ""
        self._states[step_id] = state
        if state in _FINISHED and step_id in self._specs and not self.dry_run:
            tail += f" [{overall(self._specs, self._states)}]"
        line = f"{step_id}: {shown_state(state, self.dry_run)}{att}{tail}"
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)


class LiveReporter(Reporter):
    """A rich Live table of every step: state, host, attempt, elapsed."""

    def __init__(
        self, console: Console, specs: Mapping[str, StepSpec], dry_run: bool = False
    ) -> None:
        self.console = console
        self.specs = specs
        self.dry_run = dry_run
        self.rows: dict[str, dict[str, Any]] = {
            sid: {"state": "pending", "attempt": 0, "since": None, "took": None, "msg": ""}
            for sid in specs
        }
        self.live: Live | None = None

    def begin(self, run_id: str, specs: Mapping[str, StepSpec], states: Mapping[str, str]) -> None:
        for sid, state in states.items():
            if sid in self.rows:
                self.rows[sid]["state"] = state
        self.live = Live(self._table(), console=self.console, refresh_per_second=4)
        self.live.start()

    def attempt_failed(self, failure: Failure) -> None:
        """Printed above the live table, so it stays on the screen when the table moves on."""
        for line in failure_lines(failure):
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def step(self, step_id: str, state: str, attempt: int, message: str = "") -> None:
        row = self.rows.setdefault(step_id, {"since": None, "took": None})
        if state == "running":
            row["since"], row["took"] = time.monotonic(), None
        elif row.get("since") is not None and row.get("took") is None:
            row["took"] = time.monotonic() - row["since"]
        row.update(state=state, attempt=attempt, msg=message)
        if self.live is not None:
            self.live.update(self._table())

    def end(self, state: str) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.stop()
            self.live = None

    def pause(self) -> None:
        if self.live is not None:
            self.live.stop()

    def unpause(self) -> None:
        if self.live is not None:
            self.live.start()

    def _table(self) -> Table:
        title = DRY_RUN if self.dry_run else None
        states = {k: r.get("state", "pending") for k, r in self.rows.items()}
        table = Table(
            "step", "state", "host", "attempt", "elapsed", "message", expand=False, title=title,
            caption=overall(self.specs, states),
        )  # fmt: skip
        now = time.monotonic()
        for sid, row in self.rows.items():
            took = row.get("took")
            if took is None and row.get("since") is not None:
                took = now - row["since"]
            elapsed = duration(took) if took is not None else ""
            state = row.get("state", "pending")
            style = _STYLE.get(state, "")
            state = shown_state(state, self.dry_run)
            host = self.specs[sid].host if sid in self.specs else ""
            attempt = str(row.get("attempt") or "")
            msg = str(row.get("msg", ""))[:60]
            table.add_row(
                sid, f"[{style}]{state}[/]" if style else state, host, attempt, elapsed, msg
            )
        return table


def live_reporter(
    console: Console, specs: Mapping[str, StepSpec], dry_run: bool = False
) -> LiveReporter:
    return LiveReporter(console, specs, dry_run)


class PromptOperator:
    """Asks at the terminal: instructions, then done / retry / skip / later, and who you are."""

    def __init__(self, console: Console, reporter: Reporter) -> None:
        self.console = console
        self.reporter = reporter

    def ask(self, run_id: str, spec: StepSpec, state: str, message: str) -> Decision | None:
        pause = getattr(self.reporter, "pause", None)
        if pause:
            pause()
        try:
            return self._ask(spec, state, message)
        finally:
            unpause = getattr(self.reporter, "unpause", None)
            if unpause:
                unpause()

    def _ask(self, spec: StepSpec, state: str, message: str) -> Decision | None:
        self.console.rule(f"{spec.id} ({state})")
        if spec.instructions:
            self.console.print(spec.instructions, highlight=False)
        if message:
            self.console.print(message, style="bold", highlight=False)
        choices = (
            ["done", "skip", "later"] if state == "waiting" else ["retry", "done", "skip", "later"]
        )
        answer = Prompt.ask("decision", choices=choices, default="later", console=self.console)
        if answer == "later":
            return None
        by = Prompt.ask("your name", console=self.console)
        note = Prompt.ask("note (what you did or saw)", default="", console=self.console)
        return Decision(by=by, decision=answer, note=note)


_FINISHED = frozenset({"succeeded", "skipped"})


def overall(specs: Mapping[str, StepSpec], states: Mapping[str, str]) -> str:
    """The run as a whole: ``12 of 33 steps done (2 running) · about 1 h 10 min left``.

    What is left is the longest chain of steps not yet finished, by the plan's estimates
    (what runs at once counts once): the critical path of the rest, not the sum of it."""
    done = sum(states.get(s) in _FINISHED for s in specs)
    running = sum(states.get(s) == "running" for s in specs)
    waiting = sum(states.get(s) in ("waiting", "paused") for s in specs)
    left: dict[str, float] = {}

    def rest(sid: str) -> float:  # the longest unfinished chain ending at sid
        if sid not in left:
            spec = specs[sid]
            own = 0.0 if states.get(sid) in _FINISHED else spec.estimate
            left[sid] = own + max((rest(n) for n in spec.needs if n in specs), default=0.0)
        return left[sid]

    remaining = max((rest(s) for s in specs), default=0.0)
    parts = [f"{done} of {len(specs)} steps done"]
    extra = [f"{running} running"] * bool(running) + [f"{waiting} waiting for a person"] * bool(
        waiting
    )
    if extra:
        parts[0] += f" ({', '.join(extra)})"
    if done < len(specs):
        parts.append(f"about {duration(remaining)} left by the plan's estimates")
    return " · ".join(parts)
