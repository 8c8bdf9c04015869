"""The predicate from journal records: deviations, participants, results (pure)."""

from __future__ import annotations

from typing import Any

from dr.evidence.record import RunFacts, predicate
from engine.journal import ChainReport, Record, RunInfo
from engine.plan import Plan, Sla, Step, Target

PLAN = Plan(
    scenario="server", target=Target(what="server EX1"), created_from="c" * 64,
    data_loss_window_seconds=600.0, sla=Sla(rpo_seconds=300.0, rto_seconds=3600.0),
    steps=[Step(id="a", kind="k", host="EX1"), Step(id="b", kind="k", host="EX1", needs=["a"]),
           Step(id="c", kind="k", host="EX1", needs=["b"], destructive=True)],
).sealed()  # fmt: skip


def facts(rows: list[tuple[str, str | None, dict[str, Any]]], **options: Any) -> RunFacts:
    records = [
        Record("r1", n, f"2026-01-01T00:{n:02d}:00+00:00", kind, step, body, "p", f"h{n}")
        for n, (kind, step, body) in enumerate(rows, 1)
    ]
    info = RunInfo("r1", records[0].at, PLAN.digest, "/p.json", PLAN.canonical_json(), "alice",
                   {"dry_run": False, **options})  # fmt: skip
    return RunFacts(info, records, ChainReport("r1", len(records)), PLAN, "0.1.0", "id")


ROWS: list[tuple[str, str | None, dict[str, Any]]] = [
    ("run", None, {"state": "created", "plan_sha256": "x"}),
    ("option", None, {"two_person": False, "by": "alice", "note": "off"}),
    ("run", None, {"state": "running", "by": "alice"}),
    ("step", "a", {"state": "running", "attempt": 1}),
    ("step", "a", {"state": "failed", "attempt": 1, "message": "exit code 5"}),
    ("step", "a", {"state": "running", "attempt": 2}),
    ("step", "a", {"state": "paused", "attempt": 2, "message": "in doubt"}),
    ("ack", "a", {"by": "carol", "decision": "done", "from_state": "paused", "state": "acked"}),
    ("step", "a", {"state": "acked", "attempt": 2, "by": "carol"}),
    ("ack", "b", {"by": "carol", "decision": "skip", "from_state": "waiting", "state": "skipped"}),
    ("step", "b", {"state": "skipped", "attempt": 0}),
    ("run", None, {"state": "running", "by": "dave"}),
    ("step", "c", {"state": "running", "attempt": 1}),
    ("step", "c", {"state": "succeeded", "attempt": 1}),
    ("run", None, {"state": "succeeded", "by": "dave"}),
]


def test_deviations_name_every_departure_from_the_plan() -> None:
    pred = predicate(facts(ROWS))
    found = {(d["kind"], d["step"]) for d in pred["deviations"]}
    assert found == {
        ("manual_override", None),  # the two-person rule turned off
        ("failed", "a"),
        ("retried", "a"),
        ("manual_override", "a"),  # carol decided on a paused step
        ("skipped", "b"),
        ("unapproved_destructive", "c"),
    }
    steps = {s["id"]: s for s in pred["steps"]}
    assert steps["a"]["exit_code"] == 5 and steps["a"]["attempts"] == 2
    assert steps["c"]["exit_code"] == 0 and steps["b"]["exit_code"] is None


def test_participants_and_results() -> None:
    pred = predicate(facts(ROWS))
    people = {p["name"]: p["roles"] for p in pred["participants"] if p["kind"] == "person"}
    assert people == {
        "alice": ["changed a run option", "started the run"],
        "carol": ["acknowledged"],
        "dave": ["resumed the run"],
    }
    res = pred["results"]
    assert res["measured_rto_seconds"] == 12 * 60.0  # first running (00:03) to end (00:15)
    assert res["rto_met"] is True and res["rpo_met"] is False  # 600 s lost > 300 s allowed
    assert res["verdict"] == "FAILED" and res["outcome"] == "succeeded"
    assert pred["sampling"] is None and pred["verification"] == []


def test_an_aborted_run_and_a_dry_run() -> None:
    aborted = [*ROWS[:4], ("run", None, {"state": "aborted", "by": "erin", "note": "wrong DB"})]
    pred = predicate(facts(aborted))
    assert ("aborted", None) in {(d["kind"], d["step"]) for d in pred["deviations"]}
    assert (
        "aborted the run" in next(p for p in pred["participants"] if p["name"] == "erin")["roles"]
    )
    assert pred["results"]["verdict"] == "FAILED"
    assert predicate(facts(ROWS, dry_run=True))["results"]["verdict"] == "DRY_RUN"
