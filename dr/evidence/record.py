"""The evidence record of one run: what an auditor asks for, built from a plan and its journal.

Pure: :func:`predicate` reads a :class:`RunFacts` (the run's journal records, its plan,
the step-library digests and the backups looked up in the catalog) and returns the
``https://dr.dev/evidence/restore-run/v1`` predicate; nothing here reads a file or a clock.
Only what the journal holds goes in — step messages are redacted when they are journalled
and outputs appear as sizes and SHA-256 digests — and a step's secrets appear by name and
location, never by value.

Drills fill ``sampling`` and ``verification`` (the sample's method, seed and items; the
checks on the restored data and against the lab's ground truth); an incident run leaves
them null and empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.journal import ChainReport, Record, RunInfo
from engine.plan import Plan

SCHEMA_VERSION = 1
TERMINAL = ("succeeded", "failed", "aborted")
_STEP_END = ("succeeded", "failed", "timed_out", "skipped", "acked")
_EXIT = re.compile(r"exit code (-?\d+)")


@dataclass(frozen=True)
class RunFacts:
    """Everything a record is made from (gathered by :mod:`dr.evidence.make`)."""

    info: RunInfo
    records: Sequence[Record]
    chain: ChainReport
    plan: Plan
    dr_version: str
    record_id: str
    library: dict[str, str] = field(default_factory=dict)  # step kind -> digest
    library_digest: str | None = None
    backups: list[dict[str, Any]] = field(default_factory=list)
    corrective_actions: list[str] = field(default_factory=list)
    sampling: dict[str, Any] | None = None
    verification: list[dict[str, Any]] = field(default_factory=list)


def journal_export(info: RunInfo, records: Sequence[Record]) -> bytes:
    """The run journal as a file: the run row (without the plan copy) and every record."""
    doc = {
        "format": "dr-journal-export/1",
        "run": {
            "id": info.id,
            "created": info.created,
            "plan_digest": info.plan_digest,
            "plan_path": info.plan_path,
            "started_by": info.started_by,
            "options": info.options,
        },
        "records": [_record_dict(r) for r in records],
    }
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _record_dict(rec: Record) -> dict[str, Any]:
    return {"n": rec.n, "at": rec.at, "kind": rec.kind, "step": rec.step_id,
            "body": rec.body, "prev": rec.prev, "hash": rec.hash}  # fmt: skip


def run_state(records: Sequence[Record]) -> str:
    runs = [r for r in records if r.kind == "run"]
    return str(runs[-1].body["state"]) if runs else "created"


def kind_of(plan: Plan) -> str:
    return "drill" if plan.scenario == "drill" else "incident"


def predicate(facts: RunFacts) -> dict[str, Any]:
    """The record's predicate (see docs/evidence.md for every field)."""
    steps = [_step(facts, s.id) for s in facts.plan.steps]
    results = _results(facts)
    return {
        "schema_version": SCHEMA_VERSION,
        "record_id": facts.record_id,
        "kind": kind_of(facts.plan),
        "identity": _identity(facts),
        "success_criteria": _criteria(facts.plan),
        "backups": facts.backups,
        "backup_chains": list(facts.plan.facts.get("chains", [])),
        "sampling": facts.sampling,
        "run": _run(facts),
        "steps": steps,
        "participants": _participants(facts),
        "approvals": [a for s in steps for a in s["approvals"]],
        "results": results,
        "verification": facts.verification,
        "integrity": _integrity(facts),
        "deviations": _deviations(facts, steps),
        "corrective_actions": list(facts.corrective_actions),
    }


# -- identity and scope -------------------------------------------------------------------


def _identity(facts: RunFacts) -> dict[str, Any]:
    plan, first = facts.plan, facts.records[0].body if facts.records else {}
    return {
        "run_id": facts.info.id,
        "plan_digest": plan.digest,
        "plan_sha256": first.get("plan_sha256"),
        "plan_path": facts.info.plan_path,
        "scenario": plan.scenario,
        "target": plan.target.model_dump(mode="json"),
        "estate_digest": plan.created_from,
        "dr_version": facts.dr_version,
        "step_library_digest": facts.library_digest,
        "step_library": dict(sorted(facts.library.items())),
    }


def _criteria(plan: Plan) -> dict[str, Any]:
    return {
        "rto_seconds": plan.sla.rto_seconds,
        "rpo_seconds": plan.sla.rpo_seconds,
        "steps": "every step succeeded, or was done or skipped by a named person",
        "recoverable_point": _iso(plan.recoverable_point),
        "rto_estimate_seconds": plan.rto_estimate_seconds,
        "warnings": list(plan.warnings),
    }


def _run(facts: RunFacts) -> dict[str, Any]:
    start, end = _run_times(facts.records)
    return {
        "id": facts.info.id,
        "state": run_state(facts.records),
        "started_by": facts.info.started_by,
        "created": facts.info.created,
        "started_at": start,
        "finished_at": end,
        "dry_run": bool(facts.info.options.get("dry_run")),
        "two_person": bool(facts.info.options.get("two_person", True)),
        "journal_records": len(facts.records),
        "journal_head": facts.records[-1].hash if facts.records else None,
    }


def _run_times(records: Sequence[Record]) -> tuple[str | None, str | None]:
    runs = [r for r in records if r.kind == "run"]
    start = next((r.at for r in runs if r.body.get("state") == "running"), None)
    ends = [r.at for r in runs if r.body.get("state") in TERMINAL]
    return start, ends[-1] if ends else None


# -- steps ------------------------------------------------------------------------------


def _step(facts: RunFacts, step_id: str) -> dict[str, Any]:
    spec = facts.plan.step(step_id)
    mine = [r for r in facts.records if r.step_id == step_id]
    states = [r for r in mine if r.kind == "step"]
    last = states[-1].body if states else {}
    return {
        "id": step_id,
        "kind": spec.kind,
        "title": spec.title,
        "host": spec.host,
        "destructive": spec.destructive or any(r.body.get("second_person") for r in states),
        "started_at": next((r.at for r in states if r.body.get("state") == "running"), None),
        "finished_at": next(
            (r.at for r in reversed(states) if r.body.get("state") in _STEP_END), None
        ),
        "attempts": max((int(r.body.get("attempt", 0)) for r in states), default=0),
        "state": last.get("state", "pending"),
        "exit_code": _exit_code(states),
        "message": last.get("message", ""),
        "outputs": [_output(r) for r in mine if r.kind == "output"],
        "secrets": [{"name": s.name, "location": s.location} for s in spec.secrets],
        "approvals": [
            _approval(r, facts.info.started_by)
            for r in mine
            if r.kind == "ack" and r.body.get("approval")
        ],
        "acknowledgements": [_ack(r) for r in mine if r.kind == "ack"],
    }


def _exit_code(states: list[Record]) -> int | None:
    """The last exit code the journal states: named in a failure message, 0 on success of a
    command the host ran; None for steps a person did or that never ran."""
    for rec in reversed(states):
        found = _EXIT.search(str(rec.body.get("message", "")))
        if found:
            return int(found.group(1))
        if rec.body.get("state") == "succeeded" and int(rec.body.get("attempt", 0)) > 0:
            return 0
    return None


def _output(rec: Record) -> dict[str, Any]:
    b = rec.body
    return {"attempt": b.get("attempt"), "purpose": b.get("purpose"), "stream": b.get("stream"),
            "size": b.get("size"), "cut": b.get("cut"), "sha256": b.get("sha256")}  # fmt: skip


def _ack(rec: Record) -> dict[str, Any]:
    b = rec.body
    return {"by": b.get("by"), "at": rec.at, "decision": b.get("decision"),
            "from_state": b.get("from_state"), "note": b.get("note", "")}  # fmt: skip


def _approval(rec: Record, starter: str) -> dict[str, Any]:
    """An approval, and whether a second person gave it (not the one who started the run)."""
    return {"step": rec.step_id, **_ack(rec), "second_person": rec.body.get("by") != starter}


# -- people -----------------------------------------------------------------------------


def _participants(facts: RunFacts) -> list[dict[str, Any]]:
    roles: dict[str, set[str]] = {facts.info.started_by: {"started the run"}}
    for rec in facts.records:
        who, role = _role(rec, facts.info.started_by)
        if who:
            roles.setdefault(who, set()).add(role)
    people = [{"name": n, "kind": "person", "roles": sorted(r)} for n, r in sorted(roles.items())]
    robot = {"name": f"dr {facts.dr_version}", "kind": "automated", "roles": ["orchestrator"]}
    return [*people, robot]


def _role(rec: Record, starter: str) -> tuple[str | None, str]:
    who = rec.body.get("by")
    if rec.kind == "ack":
        return who, "approved a destructive step" if rec.body.get("approval") else "acknowledged"
    if rec.kind == "option":
        return who, "changed a run option"
    if rec.kind == "run" and rec.body.get("state") == "aborted":
        return who, "aborted the run"
    if rec.kind == "run" and rec.body.get("state") == "running" and who != starter:
        return who, "resumed the run"
    return None, ""


# -- results and deviations -------------------------------------------------------------


def _results(facts: RunFacts) -> dict[str, Any]:
    plan, (start, end) = facts.plan, _run_times(facts.records)
    rto = _seconds(start, end)
    rpo = plan.data_loss_window_seconds
    rto_met = _met(rto, plan.sla.rto_seconds)
    rpo_met = _met(rpo, plan.sla.rpo_seconds)
    state = run_state(facts.records)
    passed = state == "succeeded" and rto_met is not False and rpo_met is not False
    verdict = "PASSED" if passed else "FAILED"
    return {
        "outcome": state,
        "verdict": "DRY_RUN" if facts.info.options.get("dry_run") else verdict,
        "measured_rto_seconds": rto,
        "rto_target_seconds": plan.sla.rto_seconds,
        "rto_met": rto_met,
        "achieved_rpo_seconds": rpo,
        "rpo_target_seconds": plan.sla.rpo_seconds,
        "rpo_met": rpo_met,
        "recoverable_point": _iso(plan.recoverable_point),
    }


def _integrity(facts: RunFacts) -> dict[str, Any]:
    return {
        "journal_chain_ok": facts.chain.ok,
        "journal_records": facts.chain.records,
        "journal_head": facts.chain.head,
        "journal_problems": list(facts.chain.problems),
        "plan_digest_matches": facts.plan.digest == facts.info.plan_digest,
    }


def _deviations(facts: RunFacts, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for step in steps:
        found += _step_deviations(facts, step)
    for rec in facts.records:
        if rec.kind == "option":
            found.append(_dev(None, "manual_override", rec, f"run option changed: {rec.body}"))
        elif rec.kind == "run" and rec.body.get("state") == "aborted":
            found.append(_dev(None, "aborted", rec, rec.body.get("note") or "the run was aborted"))
    return found


def _step_deviations(facts: RunFacts, step: dict[str, Any]) -> list[dict[str, Any]]:
    sid, out = step["id"], []
    for rec in facts.records:
        if rec.step_id != sid:
            continue
        state = rec.body.get("state")
        if rec.kind == "step" and state in ("failed", "timed_out"):
            out.append(_dev(sid, state, rec, rec.body.get("message", "")))
        elif rec.kind == "ack" and rec.body.get("from_state") == "paused":
            what = f"{rec.body.get('decision')} by {rec.body.get('by')} on a paused step"
            out.append(_dev(sid, "manual_override", rec, what))
    if step["attempts"] > 1:
        out.append({"step": sid, "kind": "retried", "at": None,
                    "detail": f"{step['attempts']} attempts"})  # fmt: skip
    if step["state"] == "skipped":
        out.append({"step": sid, "kind": "skipped", "at": step["finished_at"], "detail": ""})
    if step["destructive"] and step["attempts"] > 0 and not step["approvals"]:
        out.append({"step": sid, "kind": "unapproved_destructive", "at": step["started_at"],
                    "detail": "a destructive step ran without a recorded approval"})  # fmt: skip
    return out


def _dev(step: str | None, kind: str, rec: Record, detail: str) -> dict[str, Any]:
    return {"step": step, "kind": kind, "at": rec.at, "detail": str(detail)}


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


def _met(value: float | None, target: float | None) -> bool | None:
    if value is None or target is None:
        return None
    return value <= target


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
