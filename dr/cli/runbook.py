"""`dr runbook` commands: the documents a responder follows, and the step library behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dr.cli.common import console, emit_json, err_console, print_table

app = typer.Typer(no_args_is_help=True)

_LIBRARY_HELP = "Extra step-library directory (repeatable); also $DR_RUNBOOKS."


@app.command("render")
def render(
    plan_file: Path = typer.Argument(..., help="A saved plan (`dr plan ... -o plan.json`)."),
    output: str = typer.Option(
        ..., "--output", "-o", help="File to write, or `-` for standard output."
    ),
    fmt: str = typer.Option(
        None,
        "--format",
        "-f",
        help="`md` or `html`; by default taken from the output file's extension.",
    ),
    library: list[Path] = typer.Option([], "--library", "-L", help=_LIBRARY_HELP),
    unsealed: bool = typer.Option(
        False,
        "--unsealed",
        help="Render a plan whose digest is blank, missing or does not match (refused "
        "otherwise); the document then says it is not sealed.",
    ),
) -> None:
    """Write the runbook a responder follows by hand, from a saved plan.

    The document has the scenario, recoverable point, RPO / RTO against the SLA, the critical
    path, then numbered steps with the exact commands, what to expect, what to do on failure,
    where each secret is fetched from (never its value) and sign-off lines. HTML is one
    self-contained file (inline CSS and SVG, nothing fetched from a network) that prints well.

        dr runbook render plan.json -o runbook.html
        dr runbook render plan.json --format md -o -

    Example: dr runbook render plan.json -o runbook.html
    """
    from engine.documents import render as render_document
    from engine.plan import load_plan
    from engine.runbook import Library

    chosen = _format(fmt, output)
    plan = load_plan(plan_file, allow_unsealed=unsealed)
    text = render_document(plan, Library.load(library), chosen)
    if output == "-":
        typer.echo(text, nl=False)
        return
    _write_atomically(Path(output), text)
    err_console.print(f"wrote {output} ({chosen}, {len(plan.steps)} steps)")


def _format(fmt: str | None, output: str) -> Any:
    from dr.errors import ParameterError

    if fmt is None:
        suffix = Path(output).suffix.lower().lstrip(".")
        fmt = {"md": "md", "markdown": "md", "html": "html", "htm": "html"}.get(suffix)
        if fmt is None:
            raise ParameterError(
                f"--output {output}: cannot tell the format from the file name",
                hint="pass --format md or --format html",
            )
    if fmt not in ("md", "html"):
        raise ParameterError(f"--format {fmt}: use md or html")
    return fmt


def _write_atomically(path: Path, text: str) -> None:
    """Write next to the target and rename, so a failure never leaves half a document."""
    from dr.errors import ParameterError

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ParameterError(f"{path}: cannot write ({exc.strerror})") from exc


@app.command("kinds")
def kinds(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    library: list[Path] = typer.Option([], "--library", "-L", help=_LIBRARY_HELP),
) -> None:
    """List the step kinds of the library: what each does and on which platforms.

    Example: dr runbook kinds --json
    """
    from engine.runbook import Library

    lib = Library.load(library)
    rows = [_kind_summary(lib.kind(name)) for name in lib.kinds()]
    if as_json:
        emit_json(rows)
        return
    from rich.table import Table

    table = Table("kind", "title", "variants", "destructive", box=None)
    for row in rows:
        table.add_row(
            row["name"],
            row["title"],
            "; ".join(row["variants"]),
            "yes" if row["destructive"] else "",
        )
    print_table(table)


def _kind_summary(kind: Any) -> dict[str, Any]:
    return {
        "name": kind.name,
        "title": kind.title,
        "params": kind.params,
        "destructive": kind.destructive,
        "source": kind.source,
        "variants": [_when_text(v.when) + f" → {v.action}" for v in kind.variants],
    }


def _when_text(when: dict[str, Any]) -> str:
    if not when:
        return "any platform"
    parts = []
    for key, cond in sorted(when.items()):
        shown = ",".join(cond) if isinstance(cond, list) else cond
        parts.append(f"{key} {shown}")
    return " & ".join(parts)


@app.command("show")
def show(
    kind: str = typer.Argument(..., help="A step kind, e.g. dismount-database."),
    platform: list[str] = typer.Option(
        [], "--platform", "-p", help="Pick the variant, e.g. exchange=2003 (repeatable)."
    ),
    plan_file: Path = typer.Option(
        None,
        "--plan",
        help="A saved plan: show this kind's steps in it, with the plan's parameters "
        "filled in (each step's own platform picks its variant).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    library: list[Path] = typer.Option([], "--library", "-L", help=_LIBRARY_HELP),
) -> None:
    """Show a step kind: its parameters and variants, the variant one platform gets, or the
    kind's steps in a plan as they will run. Without a plan, `{{ name }}` in the templates
    is a parameter; a plan fills it in (quoted for the step's shell).

    dr runbook show soft-recovery
    dr runbook show dismount-database --platform exchange=2003
    dr runbook show dismount-database --plan plan.json

    Example: dr runbook show soft-recovery --platform exchange=2016
    """
    from engine.runbook import Library, select_variant

    lib = Library.load(library)
    found = lib.kind(kind)
    if plan_file is not None:
        _show_in_plan(lib, found, plan_file, bool(platform), as_json)
        return
    if not platform:
        _show_kind(found, as_json)
        return
    variant = select_variant(found, _platform(platform))
    if as_json:
        emit_json({"kind": found.name, "variant": variant.model_dump(mode="json")})
        return
    _print_variant(found, variant)


def _show_in_plan(lib: Any, kind: Any, plan_file: Path, platform: bool, as_json: bool) -> None:
    """Every step of ``kind`` in the plan, rendered as `dr run` and the runbook have it."""
    from dr.errors import NotFoundError, ParameterError
    from engine.plan import load_plan
    from engine.render import render_step

    if platform:
        raise ParameterError(
            "--platform and --plan: a plan's steps pick their own variant", hint="give one"
        )
    plan = load_plan(plan_file)
    steps = [s for s in plan.steps if s.kind == kind.name]
    if not steps:
        present = ", ".join(sorted({s.kind for s in plan.steps})) or "none"
        raise NotFoundError(
            f"{plan_file}: no {kind.name} step in the plan", hint=f"its step kinds: {present}"
        )
    rendered = [render_step(lib.variant(s), s, kind) for s in steps]
    if as_json:
        shown = [_step_dict(r) for r in rendered]
        emit_json({"kind": kind.name, "plan": str(plan_file), "steps": shown})
        return
    console.print(f"[bold]{kind.name}[/] — {kind.title}, in {plan_file}", highlight=False)
    for step in rendered:
        _print_rendered(step)


def _step_dict(step: Any) -> dict[str, Any]:
    return {
        "step": step.step_id,
        "host": step.host,
        "action": step.action,
        "command": step.command.script if step.command else None,
        "instructions": step.instructions,
        "verify": step.verify.script if step.verify else None,
    }


def _print_rendered(step: Any) -> None:
    console.print(f"\n[bold]step {step.step_id}[/] on {step.host} → {step.action}", highlight=False)
    text = step.command.script if step.command else step.instructions
    console.print(text.rstrip(), markup=False, highlight=False)
    if step.verify is not None:
        console.print("verify:", highlight=False)
        console.print(step.verify.script.rstrip(), markup=False, highlight=False)


def _platform(items: list[str]) -> dict[str, str]:
    from dr.errors import ParameterError

    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ParameterError(f"--platform {item}: write it as key=value, e.g. exchange=2003")
        out[key.strip()] = value.strip()
    return out


def _show_kind(kind: Any, as_json: bool) -> None:
    if as_json:
        emit_json(kind.model_dump(mode="json"))
        return
    console.print(f"[bold]{kind.name}[/] — {kind.title}", highlight=False)
    console.print(f"params: {', '.join(kind.params) or 'none'}   source: {kind.source}")
    if kind.params:
        _note_parameters(kind)
    if kind.destructive:
        console.print("[bold red]destructive[/]")
    for variant in kind.variants:
        console.print(
            f"\n[bold]when {_when_text(variant.when)}[/] → {variant.action}", highlight=False
        )
        _print_body(variant)


def _print_variant(kind: Any, variant: Any) -> None:
    console.print(f"[bold]{kind.name}[/] — {kind.title} → {variant.action}", highlight=False)
    if kind.params:
        _note_parameters(kind)
    _print_body(variant)


def _note_parameters(kind: Any) -> None:
    """Without a plan the templates are shown as written: say what the braces are."""
    console.print(
        f"{{{{ {kind.params[0]} }}}} and the other {{{{ }}}} are parameters, filled in from a "
        f"plan: `dr runbook show {kind.name} --plan PLAN` shows them as a plan's steps run",
        markup=False,
        highlight=False,
    )


def _print_body(variant: Any) -> None:
    text = variant.command or variant.instructions
    console.print(text.rstrip(), markup=False, highlight=False)
    if variant.verify is not None:
        console.print(f"verify ({variant.verify.parser}):", highlight=False)
        console.print(variant.verify.command.rstrip(), markup=False, highlight=False)
    console.print(
        f"timeout {variant.timeout_seconds:g}s, retries {variant.retries}, "
        f"on failure {variant.on_failure}"
        + (f", secrets {', '.join(variant.secrets)}" if variant.secrets else ""),
        highlight=False,
    )
