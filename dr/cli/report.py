"""`dr report`: the audit report and one drill's report, each one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import typer

from dr.cli.common import console, workspace

app = typer.Typer(no_args_is_help=True)

OUTPUT = typer.Option(..., "-o", "--output", help="The HTML file to write (replaced if it exists).")


@app.command()
def audit(
    output: Path = OUTPUT,
    since: str = typer.Option(
        None,
        "--since",
        help="First day shown, ISO 8601 (UTC unless an offset is given); "
        "default: a year before --at.",
    ),
    at: str = typer.Option(
        None, "--at", help="Judge as of this time, ISO 8601 (without an offset, UTC); default: now."
    ),
) -> None:
    """The audit report: drill coverage, overdue and changed databases, RTO and RPO, evidence.

    One HTML file with no script and no external reference: a coverage matrix (database ×
    month: restored, failed, missing), the overdue and changed-since-last-test databases,
    every drill's verdict with its measured RTO and achieved RPO against the SLA (charts),
    the latest drill's steps as a timeline and its checks, each evidence record's offline
    verification, and the backup sets no drill has restored. Prints on A4.

    Example: dr report audit --since 2026-01-01 -o audit.html
    """
    from dr.cli.plan import parse_at
    from dr.report.audit import audit_report, render, write

    data = audit_report(workspace(), parse_at(since), parse_at(at))
    write(output, render(data))
    console.print(f"wrote {output} ({len(data.records)} drills, {len(data.evidence)} "
                  "evidence records)", highlight=False)  # fmt: skip


@app.command()
def drill(
    drill_id: str = typer.Argument(..., help="A drill id, its run id, or a unique prefix."),
    output: Path = OUTPUT,
) -> None:
    """One drill's report: its verdict, checks, step timeline, RTO and RPO, evidence status.

    Example: dr report drill drill-20261202T093000Z-EX2016-DB02-DB02 -o drill.html
    """
    from dr.errors import NotFoundError
    from dr.report.audit import audit_report, render, write

    data = audit_report(workspace(), None, None)
    from dr.drill import history

    records = history.load(workspace().root)
    found = [r for r in records if r.drill_id.startswith(drill_id) or (r.run_id or "") == drill_id]
    if len(found) != 1:
        raise NotFoundError(
            f"{drill_id!r} names {len(found)} drills",
            hint="`dr drill history` lists them; give the whole drill id",
        )
    write(output, render(data, single=found[0]))
    console.print(f"wrote {output}", highlight=False)
