"""The audit report (C4): one self-contained HTML file an auditor can read, print and keep.

``audit_report(ws, since, at)`` gathers what the workspace holds — the drill history, the
inventory's drill policy, the evidence log (verified offline here, with the workspace's
public key), the catalog's backup sets — into an :class:`AuditData`; ``render`` lays it out
with ``templates/report.html.j2`` and the charts of :mod:`dr.report.charts`. Nothing is
fetched from the network: the page has no script and no external reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dr.drill.history import DrillRecord

if TYPE_CHECKING:
    from dr.drill.due import Due
    from dr.workspace import Workspace


@dataclass(frozen=True)
class EvidenceStatus:
    """One evidence record of the log, as the offline verification found it."""

    record: str
    run_id: str
    ok: bool
    failed: tuple[str, ...] = ()


@dataclass
class AuditData:
    title: str
    generated: datetime
    since: datetime
    at: datetime
    records: list[DrillRecord]
    verdicts: list[Due]
    coverage: Any
    evidence: list[EvidenceStatus] = field(default_factory=list)
    evidence_checks: int = 0
    evidence_failed: list[str] = field(default_factory=list)
    never_restored: list[str] = field(default_factory=list)

    @property
    def latest(self) -> DrillRecord | None:
        return self.records[-1] if self.records else None


def audit_report(ws: Workspace, since: datetime | None, at: datetime | None) -> AuditData:
    """Everything the report shows, from the workspace (see the module docstring)."""
    from dr.drill import history
    from dr.drill.subjects import verdicts as judge
    from dr.model.load import workspace_inventory
    from engine.runbook import Library

    when = at or datetime.now(UTC).replace(microsecond=0)
    start = since or when - timedelta(days=365)
    inv = workspace_inventory(ws)
    every = history.load(ws.root)
    found, verdicts = judge(inv, every, Library.load(), when)
    shown = [r for r in every if start <= r.ended_at <= when]
    data = AuditData(
        title=f"Restore drills and evidence — {inv.organization.name}",
        generated=datetime.now(UTC).replace(microsecond=0),
        since=start,
        at=when,
        records=shown,
        verdicts=verdicts,
        coverage=coverage(found, every, start, when),
    )
    _evidence(ws, data)
    data.never_restored = never_restored(ws, every)
    return data


def months(start: datetime, end: datetime) -> list[datetime]:
    """The first instant of every month from ``start``'s to ``end``'s."""
    found, cur = [], start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while cur <= end:
        found.append(cur)
        cur = (cur + timedelta(days=32)).replace(day=1)
    return found


def coverage(subjects: Sequence[Any], records: Sequence[DrillRecord], start: datetime,
             end: datetime) -> Any:  # fmt: skip
    """Database × month: passed / failed that month, else missing when the database was
    overdue at the month's end (no passed drill within its period), else nothing due."""
    from dr.report.charts import Coverage

    cols = months(start, end)
    dbs = [s for s in subjects if s.kind == "database"]
    by_db: dict[str, list[DrillRecord]] = {}
    for r in records:
        if r.database:
            by_db.setdefault(r.database.lower(), []).append(r)
    cells = []
    for s in dbs:
        mine = sorted(by_db.get(s.key.lower(), []), key=lambda r: r.ended_at)
        row = []
        for m in cols:
            month_end = min((m + timedelta(days=32)).replace(day=1), end)
            inside = [r for r in mine if m <= r.ended_at < month_end]
            if any(r.verdict == "passed" for r in inside):
                row.append("passed")
                continue
            if inside:
                row.append("failed")
                continue
            passed = [r for r in mine if r.verdict == "passed" and r.ended_at <= month_end]
            late = not passed or (month_end - passed[-1].ended_at).total_seconds() > (
                s.period_seconds
            )
            row.append("missing" if late else "")
        cells.append(row)
    return Coverage([s.key for s in dbs], [f"{m:%Y-%m}" for m in cols], cells)


def _evidence(ws: Workspace, data: AuditData) -> None:
    """Verify the workspace's evidence log offline and attribute each check to its record."""
    import json

    from dr.errors import DrError
    from dr.evidence.verify import verify_path

    root = ws.root / "evidence"
    if not (root / "log.jsonl").exists():
        return
    try:
        report = verify_path(root)
    except DrError as exc:
        data.evidence_failed = [exc.lines()[0]]
        return
    data.evidence_checks = len(report.checks)
    data.evidence_failed = [f"{c.category}: {c.what}" for c in report.checks if not c.ok]
    for n, line in enumerate((root / "log.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        entry = json.loads(line)
        record = str(entry.get("record"))
        mine = [c for c in report.checks
                if record in c.what or c.what.startswith(f"log entry {n}:")]  # fmt: skip
        bad = tuple(f"{c.category}: {c.what}" for c in mine if not c.ok)
        chain_ok = not [c for c in report.checks if c.category in ("chain", "checkpoint")
                        and not c.ok]  # fmt: skip
        data.evidence.append(EvidenceStatus(record, str(entry.get("run", "")),
                                            bool(mine) and not bad and chain_ok, bad))  # fmt: skip


def never_restored(ws: Workspace, records: Sequence[DrillRecord]) -> list[str]:
    """Exchange backup sets none of whose runs a drill restored."""
    from dr.catalog import Catalog

    restored = {r for rec in records for r in rec.backup_runs}
    found = []
    with Catalog.open(ws.catalog_path) as catalog:
        runs: dict[str, list[int]] = {}
        for run in catalog.runs():
            runs.setdefault(run.set_name, []).append(run.id)
        for bset in catalog.sets():
            if bset.definition.type != "exchange":
                continue
            if not any(f"run-{i}" in restored for i in runs.get(bset.name, [])):
                found.append(bset.name)
    return sorted(found)


# --------------------------------------------------------------------------- rendering


def render(data: AuditData, single: DrillRecord | None = None) -> str:
    """The HTML page: the audit report, or one drill's report (``single``)."""
    import jinja2

    from dr.report import charts
    from engine.resources import data_dir

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip
    shown = [single] if single is not None else data.records
    latest = single or data.latest
    page = {
        "coverage": _markup(charts.coverage_chart(data.coverage)) if single is None else None,
        "rto": _markup(charts.against_target_chart(_measured(shown, "rto"), "RTO"))
        if shown else None,
        "rpo": _markup(charts.against_target_chart(_measured(shown, "rpo"), "RPO achieved"))
        if shown else None,
        "timeline": _markup(charts.timeline_chart(_spans(latest), f"Steps of {latest.drill_id}"))
        if latest is not None else None,
    }  # fmt: skip
    template = env.get_template("report.html.j2")
    return template.render(
        data=data, single=single, records=shown, latest=latest, page=page,
        overdue=[v for v in data.verdicts if v.overdue],
        changed=[v for v in data.verdicts if v.changed_since_last_test],
        evidence={e.run_id: e for e in data.evidence}, when=_when, duration=_duration,
    )  # fmt: skip


def _markup(svg: str) -> Any:
    import markupsafe

    return markupsafe.Markup(svg)


def _measured(records: Sequence[DrillRecord], which: str) -> list[Any]:
    from dr.report.charts import Measured

    rows = []
    for r in records:
        value = r.rto_seconds if which == "rto" else r.rpo_seconds
        target = r.rto_target_seconds if which == "rto" else r.rpo_target_seconds
        ok = value is not None and (target is None or value <= target)
        rows.append(Measured(f"{r.ended_at:%Y-%m-%d} {r.database or r.scenario}", value,
                             target, ok, r.ended_at))  # fmt: skip
    return rows


def _spans(record: DrillRecord) -> list[Any]:
    from dr.report.charts import Span

    return [
        Span(s.title[:48], s.started, s.ended, s.state)
        for s in record.steps
        if s.started is not None and s.ended is not None
    ]


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float | None) -> str:
    from engine.units import duration

    return duration(seconds, "not measured")


def write(path: Path, html: str) -> Path:
    """Write atomically: a half-written report is never left under ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
