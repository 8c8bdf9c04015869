"""`dr retention` commands: which versions a policy expires, and why the others stay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from dr.cli.common import console, emit_json, workspace

if TYPE_CHECKING:
    from dr.catalog.expiry import SetPlan
    from dr.retention import Decision

app = typer.Typer(
    no_args_is_help=True,
    help="Retention: which versions a policy expires, and why others stay.",
)


def _at(value: str | None) -> datetime:
    from dr.cli.common import parse_instant

    return parse_instant(value) or datetime.now(UTC)


@app.command("plan")
def plan(
    set_name: str = typer.Option(None, "--set", "-s", help="Only this set (default: all)."),
    at: str = typer.Option(
        None,
        "--at",
        help="Evaluate the policy as of this time (ISO 8601; without an offset, UTC). "
        "Default: now.",
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also list every kept version with why it is kept."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print every decision as JSON."),
) -> None:
    """Show which versions each set's retention policy would expire, and why the rest stay.

    Per set: how many versions are kept and how many expire, what keeps the kept ones
    (inside the window, weekly and monthly points, needed by a kept version, minimum
    fulls), then each version that would expire with its date, type, item, run and reason.
    --verbose lists the kept versions too. Nothing changes; `dr retention apply` does the
    expiring. A version a kept version needs (its full, the incrementals before it) is
    always kept, whatever its age.
    """
    from dr.catalog import Catalog, expiry

    with Catalog.open(workspace().catalog_path) as catalog:
        plans = expiry.plan(catalog, _at(at), set_name)
    if as_json:
        emit_json([_plan_dict(p) for p in plans])
        return
    for p in plans:
        _render(p, verbose)


_REASON_NAMES = {
    "window": "inside the window",
    "weekly": "weekly points",
    "monthly": "monthly points",
    "needed": "needed by kept versions",
    "min_fulls": "minimum fulls",
}


def _plan_dict(p: SetPlan) -> dict[str, object]:
    expiring = len(p.expiring())
    return {
        "set": p.set_name,
        "expire": expiring,
        "keep": len(p.decisions) - expiring,
        "kept_because": p.kept_because(),
        "decisions": [_decision_dict(p, d) for d in p.decisions],
    }


def _decision_dict(p: SetPlan, d: Decision) -> dict[str, object]:
    ref = p.refs[d.id]
    return {
        "id": d.id,
        "run_id": ref.run_id,
        "item": ref.item,
        "backup_type": ref.backup_type,
        "at": datetime.fromtimestamp(ref.at, UTC).isoformat(),
        "keep": d.keep,
        "reasons": list(d.reasons),
    }


def _render(p: SetPlan, verbose: bool) -> None:
    from rich.markup import escape

    expiring = p.expiring()
    console.print(
        f"[bold]{escape(p.set_name)}[/]: keep {len(p.decisions) - len(expiring)}, "
        f"expire {len(expiring)}"
    )
    counts = p.kept_because()
    why = ", ".join(f"{text} {counts[name]}" for name, text in _REASON_NAMES.items())
    console.print(f"  kept because: {why}", highlight=False, soft_wrap=True)
    shown = p.decisions if verbose else expiring
    for d in shown:
        console.print(_line(p, d), highlight=False, soft_wrap=True)


def _line(p: SetPlan, d: Decision) -> str:
    """``expire 2024/05/05 22:02 incremental EX2003/SG (run 17): why`` — one line each."""
    from rich.markup import escape

    ref = p.refs[d.id]
    when = datetime.fromtimestamp(ref.at, UTC).strftime("%Y/%m/%d %H:%M")
    verdict = "keep  " if d.keep else "[bold]expire[/]"
    what = escape(f"{ref.backup_type:<12} {ref.item} (run {ref.run_id}): {'; '.join(d.reasons)}")
    return f"  {verdict} {when} {what}"


@app.command("apply")
def apply(
    set_name: str = typer.Option(None, "--set", "-s", help="Only this set (default: all)."),
    at: str = typer.Option(
        None,
        "--at",
        help="Evaluate the policy as of this time (ISO 8601; without an offset, UTC). "
        "Default: now.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would be expired, per set; change nothing."
    ),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Do not ask (needed without a terminal, e.g. from cron)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Mark the versions the policy expires as expired in the catalog (one transaction).

    Never an artifact a kept version needs. Expired versions leave `dr catalog list` and
    the planner; the repository reclaims their space on the next prune. It says how many
    versions of which sets it will expire, judged as of when, and asks first — at a
    terminal — unless `--yes`; without a terminal it needs `--yes`. `--dry-run` only says.

    Example: dr retention apply --at 2024-05-15T00:00Z --dry-run
    """
    from dr.catalog import Catalog, expiry
    from dr.errors import ParameterError

    when = _at(at)
    with Catalog.open(workspace().catalog_path) as catalog:
        plans = expiry.plan(catalog, when, set_name)
        per_set = {p.set_name: len(p.expiring()) for p in plans if p.expiring()}
        versions = sum(per_set.values())
        summary = {"at": when.isoformat(), "dry_run": dry_run, "versions": versions,
                   "sets": per_set}  # fmt: skip
        what = (f"{versions} versions of {len(per_set)} sets, judged as of "
                f"{when:%Y-%m-%d %H:%M} UTC")  # fmt: skip
        if dry_run or not versions:
            _said(summary, f"would expire {what}" if versions else "nothing to expire", as_json)
            return
        if not yes:
            import sys

            if as_json or not sys.stdin.isatty():
                raise ParameterError(
                    f"retention apply would expire {what}: nothing done",
                    hint="pass --yes to confirm (--dry-run lists them per set)",
                )
            _said(summary, f"about to expire {what}", False)
            if not typer.confirm("expire them?", default=False):
                raise typer.Exit(1)
        changed = expiry.apply(catalog, plans, when)
    summary["artifacts"] = changed
    _said(summary, f"expired {versions} versions ({changed} artifacts)", as_json)


def _said(summary: dict[str, object], line: str, as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    console.print(line, highlight=False)
    for name, count in sorted(summary["sets"].items()):  # type: ignore[attr-defined]
        console.print(f"  {name}: {count}", highlight=False)
