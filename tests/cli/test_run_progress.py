"""A run's overall progress: steps done, and the time left along the longest unfinished chain."""

from __future__ import annotations

from dr.cli.runview import overall
from engine.executor import StepSpec


def _spec(sid: str, estimate: float, *needs: str) -> StepSpec:
    return StepSpec(id=sid, host="h", action="powershell", needs=needs, estimate=estimate)


def test_time_left_is_the_longest_unfinished_chain_not_the_sum() -> None:
    specs = {s.id: s for s in (_spec("fetch", 600), _spec("copy", 1200, "fetch"),
                               _spec("replay", 300, "copy"), _spec("other", 1800))}  # fmt: skip
    states = dict.fromkeys(specs, "pending")
    assert overall(specs, states) == "0 of 4 steps done · about 35 min left by the plan's estimates"
    states.update(fetch="succeeded", copy="running")
    assert overall(specs, states) == (
        "1 of 4 steps done (1 running) · about 30 min left by the plan's estimates"
    )
    states.update(copy="succeeded", replay="waiting", other="succeeded")
    assert overall(specs, states) == (
        "3 of 4 steps done (1 waiting for a person) · about 5 min left by the plan's estimates"
    )
    states.update(replay="succeeded")
    assert overall(specs, states) == "4 of 4 steps done"
