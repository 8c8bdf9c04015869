"""The drill history: one record per drill run, appended to ``<workspace>/drills/history.jsonl``.

This is the contract between the drill runner (which appends) and everything that reads
drills (``dr drill due``, ``dr drill history``, ``dr report``). A record is written once, when
the drill ends (passed, failed or aborted), and never rewritten; the signed evidence record of
the same run (``evidence_record_id``) is what an auditor trusts — this file is the index.

Lines are appended with one ``write`` and an ``fsync``; a torn last line (a crash mid-append)
is reported by :func:`load` with the file and line, never silently skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dr.errors import DrError

HISTORY_FILE = "drills/history.jsonl"
Verdict = Literal["passed", "failed", "aborted"]


class DrillCheck(BaseModel):
    """One verification of the restored data (mount, Clean Shutdown, item counts, sample, …)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    passed: bool
    detail: str = ""


class DrillStep(BaseModel):
    """One step of the drill's run, as the journal recorded it (for timelines)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    title: str
    state: str
    started: datetime | None = None
    ended: datetime | None = None


class DrillRecord(BaseModel):
    """One drill, from plan to verdict."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    drill_id: str = Field(description="unique, e.g. drill-20261202T093000Z-EX2016-DB01")
    kind: Literal["database", "scenario"]
    database: str | None = Field(default=None, description="SERVER/SG/DB for a database drill")
    scenario: str | None = Field(default=None, description="store-failure, server-loss, ...")
    target: str = Field(description="where it was restored: recovery forest/server or RDB server")
    started_at: datetime
    ended_at: datetime
    verdict: Verdict
    failure: str | None = Field(default=None, description="what failed, for a failed drill")
    run_id: str | None = None
    evidence_record_id: str | None = None
    plan_digest: str = Field(description="the plan's shape: step kinds, hosts, platforms")
    library_digest: str | None = Field(
        default=None, description="the step library's definitions of the kinds it ran"
    )
    estate_digest: str | None = Field(
        default=None, description="the inventory entries it depended on (drift.py)"
    )
    backup_runs: list[str] = Field(default_factory=list, description="catalog run ids restored")
    rto_seconds: float | None = None
    rto_target_seconds: float | None = None
    rpo_seconds: float | None = None
    rpo_target_seconds: float | None = None
    sample_seed: str | None = Field(default=None, description="the mailbox sample's seed")
    checks: list[DrillCheck] = Field(default_factory=list)
    steps: list[DrillStep] = Field(default_factory=list)
    lab: bool = Field(default=False, description="run against the built-in lab")


def history_path(workspace_root: Path) -> Path:
    return workspace_root / HISTORY_FILE


def append(workspace_root: Path, record: DrillRecord) -> None:
    """Append one record durably (one write, then fsync of the file)."""
    path = history_path(workspace_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (record.model_dump_json() + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def load(workspace_root: Path) -> list[DrillRecord]:
    """Every record, oldest first; a line that is not a record is a clear error."""
    path = history_path(workspace_root)
    if not path.is_file():
        return []
    return list(_parse(path, path.read_text(encoding="utf-8").splitlines()))


def _parse(path: Path, lines: Iterable[str]) -> Iterable[DrillRecord]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield DrillRecord.model_validate(json.loads(line))
        except (ValueError, TypeError) as exc:
            first = str(exc).splitlines()[0]
            raise DrError(
                f"{path}:{n}: not a drill record ({first})",
                hint="the line was cut by a crash or edited; the signed evidence records are "
                "the authority — move the line aside and rerun `dr drill history`",
            ) from None
