"""Pure scheduling decisions: which steps can start now, which never can, how the run stands.

The scheduler is the dispatcher of the engine: it decides *what* runs next from the steps'
states, their needs, their resource locks and the parallelism allowed; the runner decides
*how* (threads, the journal, the transports). Nothing here does I/O, so every decision is
a function of its arguments and cheap to test exhaustively.

Step states (the journal records each transition)::

    pending -> ready -> running -> succeeded | failed | timed_out
                           ^            (retry: running again, attempt + 1)
                           |
    paused  (waiting for the operator: retry / skip / done)   skipped
    waiting (a manual step or an approval) -> acked
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

StepState = Literal[
    "pending",
    "ready",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "paused",
    "skipped",
    "waiting",
    "acked",
]
RunState = Literal["running", "waiting", "succeeded", "failed", "aborted"]

#: States in which a step's dependents may start.
DONE: frozenset[str] = frozenset({"succeeded", "skipped", "acked"})
#: States a step ends in when it could not be carried out (its dependents never start).
BROKEN: frozenset[str] = frozenset({"failed", "timed_out"})
#: States in which a step needs a person before anything more happens to it.
NEEDS_OPERATOR: frozenset[str] = frozenset({"paused", "waiting"})
#: States from which a step has not yet begun.
NOT_STARTED: frozenset[str] = frozenset({"pending", "ready"})


@dataclass(frozen=True)
class Node:
    """What the scheduler needs to know about one step."""

    id: str
    needs: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    manual: bool = False  # done by a person: takes no worker and holds no lock


def ready(nodes: Sequence[Node], states: Mapping[str, str]) -> list[str]:
    """Steps not yet started whose needs are all done, in plan order."""
    return [
        n.id
        for n in nodes
        if states.get(n.id, "pending") in NOT_STARTED
        and all(states.get(need) in DONE for need in n.needs)
    ]


def held_resources(nodes: Sequence[Node], states: Mapping[str, str]) -> set[str]:
    """Locks held by running steps."""
    held: set[str] = set()
    for n in nodes:
        if states.get(n.id) == "running":
            held.update(n.resources)
    return held


def startable(nodes: Sequence[Node], states: Mapping[str, str], parallel: int) -> list[str]:
    """Ready steps that can start now without breaking a lock or the parallelism limit.

    Manual steps always "start" (they only wait for a person). Automated steps start in plan
    order while a worker is free and none of their resources is held by a running step or by
    a step picked earlier in this same decision.
    """
    running = sum(1 for n in nodes if states.get(n.id) == "running" and not n.manual)
    free = max(parallel, 1) - running
    held = held_resources(nodes, states)
    by_id = {n.id: n for n in nodes}
    picked: list[str] = []
    for sid in ready(nodes, states):
        node = by_id[sid]
        if node.manual:
            picked.append(sid)
            continue
        if free <= 0 or held.intersection(node.resources):
            continue
        picked.append(sid)
        held.update(node.resources)
        free -= 1
    return picked


def blocked(nodes: Sequence[Node], states: Mapping[str, str]) -> set[str]:
    """Steps that can never start in this run: a need (directly or not) is broken.

    Repeats until nothing changes, so it is right whatever order the steps are listed in;
    for a plan in topological order (what the planner writes) the second pass confirms.
    """
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for n in nodes:
            if n.id in out or states.get(n.id, "pending") not in NOT_STARTED:
                continue
            if any(states.get(need) in BROKEN or need in out for need in n.needs):
                out.add(n.id)
                changed = True
    return out


def run_state(nodes: Sequence[Node], states: Mapping[str, str], *, aborted: bool) -> RunState:
    """How the run stands once nothing more can start by itself.

    ``running`` while a step runs or could start; ``waiting`` when only a person can move it
    on; ``failed`` when a step broke and nothing else can run; ``succeeded`` when every step is
    done.
    """
    values = [states.get(n.id, "pending") for n in nodes]
    if aborted:
        return "running" if "running" in values else "aborted"
    if "running" in values or ready(nodes, states):
        return "running"
    if any(v in NEEDS_OPERATOR for v in values):
        return "waiting"
    if all(v in DONE for v in values):
        return "succeeded"
    return "failed"


def dependents(nodes: Iterable[Node], step_id: str) -> list[str]:
    """Steps that directly need ``step_id``."""
    return [n.id for n in nodes if step_id in n.needs]


class Frontier:
    """The same decisions as :func:`startable`, kept up to date step by step.

    :func:`startable` looks at every step each time it is asked; a run of thousands of steps
    would re-scan the plan on every completion. A frontier keeps, per step, how many of its
    needs are not done (a counter its needs decrement as they finish), a heap of automated
    steps that could start (plan order), the steps parked behind a held lock (woken when the
    lock is released), and the locks and workers in use. ``set`` costs O(dependents + locks);
    ``startable`` costs O(steps it looks at). Any state change is allowed, in any order
    (acknowledgements move steps back and forth), and the answers stay those of
    :func:`startable` on the same states: a property test holds the two side by side.
    """

    def __init__(self, nodes: Sequence[Node], states: Mapping[str, str] | None = None) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.order = {n.id: i for i, n in enumerate(nodes)}
        self.states: dict[str, str] = {n.id: "pending" for n in nodes}
        self.states.update(states or {})
        self.dependents: dict[str, list[str]] = {n.id: [] for n in nodes}
        for n in nodes:
            for need in n.needs:
                self.dependents.setdefault(need, []).append(n.id)
        self.unmet = {n.id: sum(self._state(x) not in DONE for x in n.needs) for n in nodes}
        self.running = 0
        self.held: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._queued: set[str] = set()
        self._manual: dict[str, None] = {}
        self._parked: dict[str, list[str]] = {}
        self._fresh: dict[str, None] = {}
        for n in nodes:
            self._enter(n.id, self._state(n.id))

    def _state(self, sid: str) -> str:
        return self.states.get(sid, "pending")

    def eligible(self, sid: str) -> bool:
        """Not started, and every need done: what :func:`ready` lists."""
        return self._state(sid) in NOT_STARTED and self.unmet.get(sid, 0) == 0

    def set(self, sid: str, state: str) -> None:
        """Record a step's new state and update everything that depends on it."""
        old = self._state(sid)
        if old == state:
            return
        self._leave(sid, old)
        self.states[sid] = state
        if (old in DONE) != (state in DONE):
            delta = -1 if state in DONE else 1
            for dep in self.dependents.get(sid, ()):
                self.unmet[dep] += delta
                self._offer(dep)
        self._enter(sid, state)

    def _leave(self, sid: str, old: str) -> None:
        node = self.nodes.get(sid)
        if node is None or old != "running":
            return
        if not node.manual:
            self.running -= 1
        for lock in node.resources:
            self.held[lock] -= 1
            if self.held[lock] == 0:
                del self.held[lock]
                for waiter in self._parked.pop(lock, []):
                    self._offer(waiter)

    def _enter(self, sid: str, state: str) -> None:
        node = self.nodes.get(sid)
        if node is None:
            return
        if state == "running":
            if not node.manual:
                self.running += 1
            for lock in node.resources:
                self.held[lock] = self.held.get(lock, 0) + 1
        self._offer(sid)

    def _offer(self, sid: str) -> None:
        """Queue a step that has become eligible (stale entries are dropped when taken)."""
        if sid not in self.nodes or not self.eligible(sid):
            return
        if self._state(sid) == "pending":
            self._fresh[sid] = None
        if self.nodes[sid].manual:
            self._manual[sid] = None
        elif sid not in self._queued:
            self._queued.add(sid)
            heapq.heappush(self._heap, (self.order[sid], sid))

    def take_fresh(self) -> list[str]:
        """Steps that became eligible while still ``pending`` (to be recorded ``ready``)."""
        fresh = [sid for sid in self._fresh if self._state(sid) == "pending" and self.eligible(sid)]
        self._fresh.clear()
        return sorted(fresh, key=self.order.__getitem__)

    def startable(self, parallel: int) -> list[str]:
        """What :func:`startable` answers. The caller moves every step returned out of
        ``pending``/``ready`` with :meth:`set` (a step left there is offered again)."""
        manual = [sid for sid in self._manual if self.eligible(sid)]
        self._manual.clear()
        free = max(parallel, 1) - self.running
        picked: list[str] = []
        taken: set[str] = set()
        again: list[str] = []
        while free > 0 and self._heap:
            _, sid = heapq.heappop(self._heap)
            self._queued.discard(sid)
            if not self.eligible(sid):
                continue
            locks = self.nodes[sid].resources
            held = [lock for lock in locks if lock in self.held]
            if held:
                self._parked.setdefault(held[0], []).append(sid)
            elif taken.intersection(locks):
                again.append(sid)
            else:
                picked.append(sid)
                taken.update(locks)
                free -= 1
        for sid in again + picked:
            self._offer(sid)
        order = self.order.__getitem__
        return sorted(manual + picked, key=order)
