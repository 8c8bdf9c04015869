"""Scheduling decisions: needs, resource locks, parallelism, blocked steps, run outcome."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.scheduler import Frontier, Node, blocked, run_state, startable


def chain() -> list[Node]:
    return [Node("a"), Node("b", ("a",)), Node("c", ("b",))]


def test_only_steps_whose_needs_are_done_start() -> None:
    assert startable(chain(), {}, 4) == ["a"]
    assert startable(chain(), {"a": "succeeded"}, 4) == ["b"]
    assert startable(chain(), {"a": "running"}, 4) == []


def test_skipped_and_acked_needs_count_as_done() -> None:
    assert startable(chain(), {"a": "skipped"}, 4) == ["b"]
    assert startable(chain(), {"a": "succeeded", "b": "acked"}, 4) == ["c"]


def test_parallelism_limits_automated_steps_but_not_manual_ones() -> None:
    nodes = [Node("a"), Node("b"), Node("c"), Node("m", manual=True)]
    assert startable(nodes, {}, 2) == ["a", "b", "m"]
    assert startable(nodes, {"a": "running"}, 2) == ["b", "m"]


def test_a_resource_lock_keeps_steps_serial_while_others_run_in_parallel() -> None:
    nodes = [
        Node("sg1-db1", resources=("sg:EX1/SG1",)),
        Node("sg1-db2", resources=("sg:EX1/SG1",)),
        Node("sg2-db1", resources=("sg:EX1/SG2",)),
    ]
    assert startable(nodes, {}, 8) == ["sg1-db1", "sg2-db1"]
    assert startable(nodes, {"sg1-db1": "running"}, 8) == ["sg2-db1"]
    assert startable(nodes, {"sg1-db1": "succeeded"}, 8) == ["sg1-db2", "sg2-db1"]


def test_a_failed_step_blocks_everything_after_it_but_not_its_siblings() -> None:
    nodes = [*chain(), Node("x")]
    states = {"a": "failed"}
    assert blocked(nodes, states) == {"b", "c"}
    assert startable(nodes, states, 4) == ["x"]


def test_run_state() -> None:
    nodes = chain()
    assert run_state(nodes, {}, aborted=False) == "running"
    done = {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    assert run_state(nodes, done, aborted=False) == "succeeded"
    assert run_state(nodes, {"a": "succeeded", "b": "waiting"}, aborted=False) == "waiting"
    assert run_state(nodes, {"a": "paused"}, aborted=False) == "waiting"
    assert run_state(nodes, {"a": "timed_out"}, aborted=False) == "failed"
    assert run_state(nodes, {"a": "running"}, aborted=True) == "running"
    assert run_state(nodes, {"a": "succeeded"}, aborted=True) == "aborted"


@st.composite
def dags(draw: st.DrawFn) -> list[Node]:
    n = draw(st.integers(1, 12))
    nodes = []
    for i in range(n):
        needs = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        res = draw(st.sets(st.sampled_from(["r1", "r2", "r3"]), max_size=2))
        nodes.append(Node(f"s{i}", tuple(f"s{j}" for j in sorted(needs)), tuple(sorted(res))))
    return nodes


@settings(max_examples=60, deadline=None)
@given(dags(), st.integers(1, 4))
def test_simulated_runs_finish_every_step_respecting_needs_locks_and_limit(
    nodes: list[Node], parallel: int
) -> None:
    """Drive the scheduler to the end, finishing the oldest running step each round."""
    states: dict[str, str] = {}
    order: list[str] = []
    running: list[str] = []
    for _ in range(4 * len(nodes) + 4):
        for sid in startable(nodes, states, parallel):
            states[sid] = "running"
            running.append(sid)
        live = [n for n in nodes if states.get(n.id) == "running"]
        assert len(live) <= parallel
        held = [r for n in live for r in n.resources]
        assert len(held) == len(set(held)), "two running steps hold one lock"
        if not running:
            break
        sid = running.pop(0)
        need_ids = next(n.needs for n in nodes if n.id == sid)
        assert all(need in order for need in need_ids)
        states[sid] = "succeeded"
        order.append(sid)
    assert sorted(order) == sorted(n.id for n in nodes)
    assert run_state(nodes, states, aborted=False) == "succeeded"


STATES = ["pending", "ready", "running", "succeeded", "failed", "paused", "skipped", "waiting"]


@settings(max_examples=80, deadline=None)
@given(dags(), st.integers(1, 4), st.data())
def test_the_frontier_decides_as_startable_does_under_any_transitions(
    nodes: list[Node], parallel: int, data: st.DataObject
) -> None:
    """Incremental readiness against the reference scan: runs where picked steps start and
    others finish, fail, are skipped or move back (acknowledgements), in any order."""
    states: dict[str, str] = {}
    frontier = Frontier(nodes)
    for _ in range(3 * len(nodes) + 3):
        expected = startable(nodes, states, parallel)
        assert frontier.startable(parallel) == expected
        for sid in expected:
            start = data.draw(st.sampled_from(["running", "running", "waiting"]))
            states[sid] = start
            frontier.set(sid, start)
        if data.draw(st.booleans()):
            sid = data.draw(st.sampled_from([n.id for n in nodes]))
            new = data.draw(st.sampled_from(STATES))
            states[sid] = new
            frontier.set(sid, new)
        running = [n.id for n in nodes if states.get(n.id) == "running"]
        if running:
            sid = data.draw(st.sampled_from(running))
            states[sid] = data.draw(st.sampled_from(["succeeded", "failed", "succeeded"]))
            frontier.set(sid, states[sid])


def test_fresh_steps_are_reported_once_in_plan_order() -> None:
    frontier = Frontier([Node("a"), Node("b", ("a",)), Node("c")])
    assert frontier.take_fresh() == ["a", "c"]
    assert frontier.take_fresh() == []
    frontier.set("a", "succeeded")
    assert frontier.take_fresh() == ["b"]


def test_a_step_parked_behind_a_lock_wakes_when_the_lock_is_released() -> None:
    nodes = [Node("x", resources=("sg",)), Node("y", resources=("sg",)), Node("z")]
    frontier = Frontier(nodes)
    assert frontier.startable(4) == ["x", "z"]
    frontier.set("x", "running")
    frontier.set("z", "running")
    assert frontier.startable(4) == []
    frontier.set("x", "succeeded")
    assert frontier.startable(4) == ["y"]
