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
