"""Runbook documents rendered from a saved plan: what a responder follows by hand.

One pure function gathers what a document shows (:func:`build`), with every step rendered
through the step library exactly as the engine would run it; the templates
(``templates/runbook.md.j2``, ``templates/runbook.html.j2``) only lay it out. The HTML is
one self-contained file: inline CSS with print rules, the DAG as inline SVG, no scripts
and no external references. Secrets appear only as where they are fetched from.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from engine.plan import Plan, seal_problem, validate_dag
from engine.render import RenderedStep, render_step
from engine.resources import data_dir
from engine.runbook import Library, Verify
from engine.svg import dag_svg
from engine.units import duration

Format = Literal["md", "html"]

ON_FAILURE = {
    "abort": "If it fails: stop the plan. Do not run later steps; tell the incident owner.",
    "pause": (
        "If it fails: stop and decide — retry (after fixing the cause), skip (write down "
        "why), or abort the plan."
    ),
    "continue": "If it fails: write it down and go on; later steps do not depend on it.",
}
ACTION_LABEL = {
    "powershell": "PowerShell",
    "cmd": "Command prompt (cmd.exe)",
    "check": "Check",
    "manual": "Done by hand",
    "approval": "Approval",
}


@dataclass(frozen=True)
class DocStep:
    number: int
    rendered: RenderedStep
    needs: list[int]
    estimate: str
    expected: str
    already_done: str
    on_failure: str
    critical: bool


@dataclass(frozen=True)
class Document:
    plan: Plan
    steps: list[DocStep]
    rto: str
    rto_sla: str
    rto_ok: bool | None
    loss: str
    rpo_sla: str
    rpo_ok: bool | None
    critical_path: list[DocStep]
    svg: str
    secrets: list[tuple[str, str, str]] = field(default_factory=list)


def build(plan: Plan, library: Library) -> Document:
    """Everything a runbook document shows, in topological order. Pure apart from the library."""
    order = validate_dag(plan.steps)
    numbers = {sid: i for i, sid in enumerate(order, start=1)}
    critical = set(plan.critical_path)
    steps = [_doc_step(plan, library, sid, numbers, critical) for sid in order]
    by_id = {s.rendered.step_id: s for s in steps}
    rpo, rto = plan.sla.rpo_seconds, plan.sla.rto_seconds
    actions = {s.rendered.step_id: s.rendered.action for s in steps}
    destructive = {s.rendered.step_id for s in steps if s.rendered.destructive}
    return Document(
        plan=plan,
        steps=steps,
        rto=duration(plan.rto_estimate_seconds),
        rto_sla=duration(rto) if rto is not None else "not set",
        rto_ok=None if rto is None else plan.rto_estimate_seconds <= rto,
        loss=duration(plan.data_loss_window_seconds)
        if plan.data_loss_window_seconds is not None
        else "unknown",
        rpo_sla=duration(rpo) if rpo is not None else "not set",
        rpo_ok=None
        if rpo is None or plan.data_loss_window_seconds is None
        else plan.data_loss_window_seconds <= rpo,
        critical_path=[by_id[sid] for sid in plan.critical_path if sid in by_id],
        svg=dag_svg(plan, actions, destructive),
        secrets=_secrets(steps),
    )


def _doc_step(
    plan: Plan, library: Library, sid: str, numbers: dict[str, int], critical: set[str]
) -> DocStep:
    step = plan.step(sid)
    kind = library.kind(step.kind)
    rendered = render_step(library.variant(step), step, kind)
    return DocStep(
        number=numbers[sid],
        rendered=rendered,
        needs=sorted(numbers[n] for n in set(step.needs)),
        estimate=duration(step.estimate_seconds),
        expected=describe_check(rendered.verify_check) if rendered.verify_check else "",
        already_done=describe_check(rendered.idempotency_check)
        if rendered.idempotency_check
        else "",
        on_failure=ON_FAILURE[rendered.on_failure],
        critical=sid in critical,
    )


def _secrets(steps: list[DocStep]) -> list[tuple[str, str, str]]:
    """(secret, where it is fetched from, steps that use it): one row per secret."""
    rows: dict[str, tuple[str, list[str]]] = {}
    for doc_step in steps:
        r = doc_step.rendered
        for ref in r.secrets:
            rows.setdefault(ref.name, (ref.location, []))[1].append(str(doc_step.number))
        for name in r.missing_secrets:
            rows.setdefault(name, ("NOT GIVEN in the plan — find it before you start", []))[
                1
            ].append(str(doc_step.number))
    return [(name, loc, ", ".join(nums)) for name, (loc, nums) in sorted(rows.items())]


def describe_check(check: Verify) -> str:
    """A verification in words: what output means success (and, if the check says so, what
    its failure means)."""
    text = _success(check)
    return f"{text}. If not: {check.failure.rstrip('.')}" if check.failure else text


def _success(check: Verify) -> str:
    if check.parser == "exit-code":
        codes = check.expect if check.expect is not None else 0
        return f"exit code {codes}" if not isinstance(codes, list) else f"exit code one of {codes}"
    if check.parser == "json":
        pairs = ", ".join(f"`{k}` = `{_json_word(v)}`" for k, v in check.expect.items())
        return f"JSON output with {pairs}"
    expect = dict(check.expect or {})
    parts = [pattern_words(p, expect) for p in check.patterns]
    used = {k for p in check.patterns for k in re.findall(r"\(\?P<(\w+)>", p)}
    text = "the output has " + " and ".join(parts) if parts else ""
    left = {k: v for k, v in expect.items() if k not in used}
    if left:
        text += " with " + ", ".join(f"{k} = `{v}`" for k, v in left.items())
    if check.absent:
        absent = " or ".join(_quoted_words(p) for p in check.absent)
        text += f"; no line with {absent}" if text else f"the output has no line with {absent}"
    return text


_GROUP = re.compile(r"\(\?P<(\w+)>([^()]*)\)")
_CLASS_WORDS = {r"\d+": "a number", r"\w+": "a word", ".*?": "some text", ".*": "some text",
                ".+": "some text", r"\S+": "a word"}  # fmt: skip
_SPACES = re.compile(r"\\s[*+]")


def pattern_words(pattern: str, expect: dict[str, Any] | None = None) -> str:
    """A line pattern in words: ``^Missing:\\s*(?P<missing>\\d+)`` with ``missing = 0`` →
    a line that starts with “Missing: 0”. A pattern too intricate to say in words is shown
    as it is, named as a pattern."""
    expect = expect or {}
    starts = pattern.startswith("^")
    body = pattern[1:] if starts else pattern
    body = body[:-1] if body.endswith("$") and not body.endswith("\\$") else body

    def group(match: re.Match[str]) -> str:
        name, inner = match.group(1), match.group(2)
        if name in expect:
            return str(expect[name])
        return "\0" + _CLASS_WORDS.get(inner, "something") + "\0"

    text = _SPACES.sub(" ", _GROUP.sub(group, body))
    text = re.sub(r"\\(.)", r"\1", text)
    if re.search(r"[\[\](){}|*+?]", text.replace("\0", "")) or "\\" in text:
        return f"a line matching the pattern `{pattern}`"
    shown = _phrase(text)
    return f"a line that starts with {shown}" if starts else f"a line with {shown}"


def _phrase(text: str) -> str:
    """“Missing: ”a number → quoted literal parts, placeholders in words."""
    pieces = [p for p in text.split("\0")]
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:
            out.append(piece)
        elif piece.strip():
            out.append(f"“{piece.strip()}”")
    return " ".join(out)


def _quoted_words(pattern: str) -> str:
    words = pattern_words(pattern)
    return words.removeprefix("a line with ").removeprefix("a line that starts with ")


def _json_word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else "not stated"


# --- Markdown text in HTML ----------------------------------------------------------------

_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+\.\s+(.*)$")


def markdown_html(text: str) -> str:
    """The small Markdown the library uses (paragraphs, lists, `code`, **bold**) as HTML.

    Everything is escaped first, so text from a plan or a library can never add markup.
    """
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if block.strip():
            blocks.append(_block(block))
    return "\n".join(blocks)


def _block(block: str) -> str:
    lines = block.splitlines()
    for pattern, tag in ((_BULLET, "ul"), (_NUMBERED, "ol")):
        if pattern.match(lines[0]):
            items: list[str] = []
            for line in lines:
                match = pattern.match(line)
                if match:
                    items.append(match.group(1))
                elif items:
                    items[-1] += " " + line.strip()
            return f"<{tag}>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + f"</{tag}>"
    return "<p>" + _inline(" ".join(line.strip() for line in lines)) + "</p>"


def _inline(text: str) -> str:
    out = html.escape(text, quote=True)
    out = _INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", out)
    return _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", out)


def fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


# --- rendering ----------------------------------------------------------------------------


def render(plan: Plan, library: Library, fmt: Format) -> str:
    """The runbook document of ``plan`` as Markdown or self-contained HTML."""
    doc = build(plan, library)
    env = _environment(fmt)
    template = env.get_template(f"runbook.{fmt}.j2")
    seal = seal_problem(plan)
    return template.render(doc=doc, plan=plan, when=when, duration=duration, seal=seal)


class Verbatim(str):
    """Markdown text that is already safe where it stands (a code span, a fenced block)."""


_MD_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|"}
_MD_ACTIVE = re.compile(r"[&<>|]")


def markdown_text(value: Any) -> str:
    """A value placed in Markdown prose or a table cell: no HTML, no cell break.

    ``<`` ``>`` ``&`` become character references (a Markdown renderer shows them as the
    characters, and passes raw HTML through otherwise); ``|`` is escaped for tables.
    """
    if isinstance(value, Verbatim):
        return str(value)
    text = "" if value is None else str(value)
    return _MD_ACTIVE.sub(lambda m: _MD_ESCAPES[m.group(0)], text)


def command_words(value: Any) -> Markup:
    """A command for a ``<pre>``, each word in its own box: a printed line then breaks between
    words, never inside one at a hyphen (``run-1825``, ``-AsPlainText``); a word longer than
    the line still wraps inside (CSS ``pre .w``). The text, copied, is the command as it is."""
    escaped = html.escape(str(value), quote=False)
    return Markup(re.sub(r"\S+", lambda m: f'<span class="w">{m.group(0)}</span>', escaped))


def code_span(value: Any) -> Verbatim:
    """An inline code span that no backtick in ``value`` can close early."""
    text = str(value).replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return Verbatim(f"{ticks}{pad}{text}{pad}{ticks}")


# Mermaid's entity codes (#quot;, #60; ...: mermaid.js.org/syntax/flowchart, "Entity codes
# to escape characters"); a label is inside double quotes, so only these can break out.
_MERMAID = {'"': "#quot;", "<": "#60;", ">": "#62;", "&": "#38;", "\n": " ", "\r": " "}


def mermaid_label(value: Any) -> Verbatim:
    """Text for a quoted Mermaid label: quotes and markup as Mermaid entity codes."""
    return Verbatim("".join(_MERMAID.get(ch, ch) for ch in str(value)))


def fact_lines(value: Any) -> list[str]:
    """A plan fact as lines a person reads: one line per record, ``key: value`` pairs."""
    if isinstance(value, dict):
        return ["; ".join(f"{k}: {_fact_word(v)}" for k, v in sorted(value.items()))]
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return [line for item in value for line in fact_lines(item)]
    return [_fact_word(value)]


def _fact_word(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_fact_word(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_fact_word(v)}" for k, v in sorted(value.items()))
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _environment(fmt: Format) -> jinja2.Environment:
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        autoescape=fmt == "html",
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=markdown_text if fmt == "md" else None,
    )
    env.filters["markdown"] = lambda t: Markup(markdown_html(t or ""))
    env.filters["inline"] = lambda t: Markup(_inline(t or ""))
    env.filters["fence"] = fence
    env.filters["fact_lines"] = fact_lines
    env.filters["mermaid"] = mermaid_label
    env.filters["code"] = code_span
    env.filters["words"] = command_words
    env.filters["verbatim"] = Verbatim
    env.globals["action_label"] = ACTION_LABEL
    return env
