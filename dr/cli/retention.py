"""`dr retention` commands: which versions a policy expires, and why the others stay."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from dr.cli.common import console, emit_json, workspace

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
    as_json: bool = typer.Option(False, "--json", help="Print every decision as JSON."),
) -> None:
    """Show which versions each set's retention policy expires, and for every kept one why.

    Nothing changes; `dr retention apply` does the expiring. A version a kept version needs
    (its full, the incrementals before it) is always kept, whatever its age.
    """
    from dr.catalog import Catalog, expiry

    with Catalog.open(workspace().catalog_path) as catalog:
        plans = expiry.plan(catalog, _at(at), set_name)
    if as_json:
        emit_json([_plan_dict(p) for p in plans])
        return
    _render(plans)


def _plan_dict(p: object) -> dict[str, object]:
    decisions = getattr(p, "decisions", [])
    return {
        "set": getattr(p, "set_name", ""),
        "expire": sum(1 for d in decisions if not d.keep),
        "keep": sum(1 for d in decisions if d.keep),
        "decisions": [{"id": d.id, "keep": d.keep, "reasons": list(d.reasons)} for d in decisions],
    }


def _render(plans: list) -> None:  # type: ignore[type-arg]
    from rich.markup import escape

    for p in plans:
        expiring = p.expiring()
        console.print(
            f"[bold]{escape(p.set_name)}[/]: keep {len(p.decisions) - len(expiring)}, "
            f"expire {len(expiring)}"
        )
        for d in p.decisions:
            verdict = "keep  " if d.keep else "expire"
            console.print(f"  {verdict} {escape(d.id)}: {escape('; '.join(d.reasons))}")


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
