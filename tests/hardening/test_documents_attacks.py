"""Runbook documents from hostile names: no markup in Markdown or Mermaid; templates sandboxed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from engine.documents import render
from engine.errors import RenderError
from engine.plan import Plan, Step, Target
from engine.runbook import Library

LIBRARY = """
kinds:
  note:
    title: Note {{ what }}
    description: |
      Look at {{ what }} on the host; `{{ what }}` is its name.
    params: [what]
    variants:
      - action: check
        shell: posix
        command: "echo {{ what }}"
"""

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "x` <script>alert(2)</script> `y",
    "a | b | <b onmouseover=alert(3)>c</b>",
    '"]; click s1 call alert(4); x["',
    "<a href='javascript:alert(5)'>j</a>",
]
_TAG = re.compile(r"<\s*(script|img|svg|a|b)\b", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[A-Za-z][^>]*>")
_HANDLER = re.compile(r"\son\w+\s*=|javascript:", re.IGNORECASE)


def _plan(value: str) -> Plan:
    steps = [
        Step(id="s1", kind="note", host=value, title=value, params={"what": value}),
        Step(id="s2", kind="note", host="h", params={"what": "ok"}, needs=["s1"]),
    ]
    plan = Plan(
        scenario=value, target=Target(what=value), created_from="0" * 64, steps=steps,
        warnings=[value], facts={"note": value},
    )  # fmt: skip
    return plan.sealed()


def _library(tmp_path: Path, text: str = LIBRARY) -> Library:
    (tmp_path / "lib").mkdir(exist_ok=True)
    (tmp_path / "lib" / "n.yaml").write_text(text)
    return Library.load([tmp_path / "lib"])


def _tags_in_html(html: str) -> list[str]:
    """Markup the HTML a Markdown renderer makes would carry (text inside <code> is data)."""
    outside_code = re.sub(r"<code[^>]*>.*?</code>", "", html, flags=re.DOTALL)
    tags = [m.group(0) for m in _TAG.finditer(outside_code)]
    return tags + [t for t in _ANY_TAG.findall(html) if _HANDLER.search(t)]


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_carries_no_markup_from_names(tmp_path: Path, value: str) -> None:
    md = render(_plan(value), _library(tmp_path), "md")
    html = MarkdownIt("commonmark").render(md)
    assert _tags_in_html(html) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_mermaid_labels_carry_no_markup_or_quote(tmp_path: Path, value: str) -> None:
    md = render(_plan(value), _library(tmp_path), "md")
    block = md.split("```mermaid", 1)[1].split("```", 1)[0]
    for line in block.strip().splitlines()[1:]:
        label = re.fullmatch(r'\s*s\d+\["(.*)"\]\s*', line)
        if label:
            assert not set(label.group(1)) & set('<>"'), line
        else:
            assert re.fullmatch(r"\s*s\d+ --> s\d+\s*", line), line


@pytest.mark.parametrize("value", HOSTILE)
def test_html_stays_clean(tmp_path: Path, value: str) -> None:
    html = render(_plan(value), _library(tmp_path), "html")
    body = re.sub(r"<style>.*?</style>", "", html, flags=re.DOTALL)
    assert not re.search(r"<script|<img", body, re.IGNORECASE)
    assert [t for t in _ANY_TAG.findall(body) if _HANDLER.search(t)] == []


SSTI = [
    "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lipsum.__globals__['os'].system('touch MARKER') }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
]


@pytest.mark.parametrize("payload", SSTI)
@pytest.mark.parametrize("where", ["command", "description"])
def test_library_templates_cannot_reach_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: str, where: str
) -> None:
    monkeypatch.chdir(tmp_path)
    escaped = payload.replace('"', '\\"')
    text = f"""
kinds:
  evil:
    title: Evil
    description: "{escaped if where == "description" else "fine"}"
    variants:
      - action: check
        shell: posix
        command: "{escaped if where == "command" else "true"}"
"""
    library = _library(tmp_path, text)
    plan = Plan(
        scenario="t", target=Target(what="t"), created_from="0" * 64,
        steps=[Step(id="e", kind="evil", host="h")],
    ).sealed()  # fmt: skip
    with pytest.raises(RenderError):
        render(plan, library, "md")
    assert not (tmp_path / "MARKER").exists()
