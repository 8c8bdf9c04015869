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
    from dr.errors import ParameterError

    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(
            f"--at {value!r} is not a time", hint="write it like 2024-05-15T00:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("plan")
def plan(
    set_name: str = typer.Option(None, "--set", "-s", help="Only this set (default: all)."),
    at: str = typer.Option(None, "--at", help="Evaluate the policy as of this time (UTC)."),
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
    at: str = typer.Option(None, "--at", help="Evaluate the policy as of this time (UTC)."),
) -> None:
    """Mark the versions the policy expires as expired in the catalog (one transaction).

    Never an artifact a kept version needs. Expired versions leave `dr catalog list` and
    the planner; the repository reclaims their space on the next prune.
    """
    from dr.catalog import Catalog, expiry

    when = _at(at)
    with Catalog.open(workspace().catalog_path) as catalog:
        plans = expiry.plan(catalog, when, set_name)
        changed = expiry.apply(catalog, plans, when)
    versions = sum(len(p.expiring()) for p in plans)
    console.print(f"expired {versions} versions ({changed} artifacts)")
