"""Which steps a run leaves out for ``--limit HOST`` and ``--start-at STEP`` (as an Ansible
user expects them), and which it keeps although they were asked to be left out.

``--start-at STEP`` leaves out the steps numbered before STEP (the runbook's order);
``--limit HOST`` the steps on other hosts. A step left out is recorded ``skipped`` with
why, so everything that needs it may start, and every listing shows it. One rule keeps
this safe: a step that a destructive step needs directly (its approval, the check of the
backup chain, the dismount) is never left out while that destructive step runs; it runs
as usual, and the run says so before it starts. Pure: no journal, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.executor import StepSpec


@dataclass(frozen=True)
class Selection:
    skipped: dict[str, str]  # step id → why it is left out
    kept: dict[str, str]  # step id → why it runs although asked to be left out


def select(
    specs: Mapping[str, StepSpec],
    order: Sequence[str],
    limit: Iterable[str] = (),
    start_at: str | None = None,
) -> Selection:
    """The steps to leave out, and the destructive steps' preconditions kept."""
    hosts = {h.upper() for h in limit}
    asked: dict[str, str] = {}
    if start_at is not None:
        for sid in order[: order.index(start_at)]:
            asked[sid] = f"before --start-at {start_at}"
    for sid in order:
        if hosts and specs[sid].host.upper() not in hosts and sid not in asked:
            asked[sid] = f"not on --limit {', '.join(sorted(limit))}"
    return _keep_preconditions(specs, order, asked)


def _keep_preconditions(
    specs: Mapping[str, StepSpec], order: Sequence[str], asked: dict[str, str]
) -> Selection:
    kept: dict[str, str] = {}
    changed = True
    while changed:  # a kept step may be a destructive one whose own guards must stay too
        changed = False
        for sid in order:
            spec = specs[sid]
            if not spec.destructive or sid in asked:
                continue
            for need in spec.needs:
                if need in asked:
                    del asked[need]
                    kept[need] = f"destructive step {sid} needs it: it runs"
                    changed = True
    return Selection(asked, kept)


def problem(
    specs: Mapping[str, StepSpec],
    order: Sequence[str],
    limit: Iterable[str] = (),
    start_at: str | None = None,
) -> tuple[str, str] | None:
    """What is wrong with --limit / --start-at for this plan (message, hint), or None."""
    if start_at is not None and start_at not in specs:
        near = [s for s in order if start_at.lower() in s.lower()][:5]
        hint = ("did you mean " + ", ".join(near)) if near else "`dr run status RUN` lists them"
        return f"--start-at {start_at!r}: the plan has no such step", hint
    known = {s.host.upper() for s in specs.values()}
    unknown = sorted({h.upper() for h in limit} - known)
    if unknown:
        return (
            f"--limit {', '.join(unknown)}: no step of the plan runs there",
            "the plan's hosts: " + ", ".join(sorted(known)),
        )
    return None
