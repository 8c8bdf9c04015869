"""When a run and its steps started and ended, and how long they took, read from the journal.

A step started at its first ``running`` record and ended at its last record once that is a
final state; a run ended at its last ``run`` record once that is final. A run or step that
has not ended has no end and no duration (nothing here reads the clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from engine.journal import Record

STEP_FINAL = frozenset({"succeeded", "failed", "skipped", "acked", "aborted", "cancelled"})
RUN_FINAL = frozenset({"succeeded", "failed", "aborted"})
STAMP = "%Y-%m-%d %H:%M:%SZ"


def _span(started: str | None, ended: str | None) -> dict[str, Any]:
    took = None
    if started and ended:
        took = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    return {"started": started, "ended": ended, "duration_seconds": took}


def step_times(records: Iterable[Record]) -> dict[str, dict[str, Any]]:
    """Per step id: started, ended (ISO, UTC) and duration_seconds (None while unknown)."""
    first: dict[str, str] = {}
    last: dict[str, Record] = {}
    for rec in records:
        if rec.kind != "step" or rec.step_id is None:
            continue
        if rec.body.get("state") == "running":
            first.setdefault(rec.step_id, rec.at)
        last[rec.step_id] = rec
    return {
        sid: _span(first.get(sid), rec.at if rec.body.get("state") in STEP_FINAL else None)
        for sid, rec in last.items()
    }


def run_times(records: Iterable[Record]) -> dict[str, Any]:
    """The run's started (its first ``running``), ended and duration_seconds."""
    runs = [r for r in records if r.kind == "run"]
    started = next((r.at for r in runs if r.body.get("state") == "running"), None)
    ended = runs[-1].at if runs and runs[-1].body.get("state") in RUN_FINAL else None
    return _span(started, ended)


def shown(at: str | None) -> str:
    """``2026-12-04T00:45:17.3+00:00`` → ``2026-12-04 00:45:17Z``; not yet → ``—``."""
    if not at:
        return "—"
    from datetime import UTC

    return datetime.fromisoformat(at).astimezone(UTC).strftime(STAMP)
