"""The runbook's picture of the largest example plan (site), in headless Chromium: laid out
top to bottom within A4 portrait, no label cut, and its printed text readable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli._dr import ROOT, dr, init
from tests.report.browser import _run, chromium, print_pdf

A4_CSS_PX = 794  # 210 mm at 96 px per inch
PROBE = """<script>
window.addEventListener('load', () => {
  const svg = document.querySelector('svg.dag');
  const box = svg.getBoundingClientRect();
  const cut = [];
  for (const g of svg.querySelectorAll('g.step')) {
    const r = g.querySelector('rect').getBBox();
    for (const t of g.querySelectorAll('text')) {
      const b = t.getBBox();
      const right = b.x + b.width > r.x + r.width, below = b.y + b.height > r.y + r.height;
      if (b.x < r.x || right || b.y < r.y || below)
        cut.push([t.textContent, Math.round(b.x + b.width - r.x - r.width)]);
    }
  }
  const xs = [...svg.querySelectorAll('g.step rect')].map(r => r.getBBox().y);
  document.body.setAttribute('data-probe', JSON.stringify(
    {width: box.width, height: box.height, cut: cut, rows: new Set(xs).size,
     boxes: xs.length, text: [...svg.querySelectorAll('text')].map(t => t.textContent)}));
});
</script>"""


@pytest.fixture(scope="module")
def site_runbook(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    tmp = tmp_path_factory.mktemp("site")
    ws = tmp / "ws"
    init(ws)
    assert dr(ws, "catalog", "import", str(ROOT / "examples" / "history.json")).returncode == 0
    plan = tmp / "site.json"
    made = dr(ws, "plan", "site", "-o", str(plan))
    assert made.returncode == 0, made.stderr
    page = tmp / "site.html"
    rendered = dr(ws, "runbook", "render", str(plan), "-o", str(page))
    assert rendered.returncode == 0, rendered.stderr
    return page, json.loads(plan.read_text())


def test_the_picture_is_layered_with_every_label_whole(site_runbook: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    page, plan = site_runbook
    svg = re.search(r"<svg class=\"dag\".*?</svg>", page.read_text(), re.S)
    assert svg is not None
    text = re.sub(r"<[^>]+>", "\n", svg.group(0))
    words = " ".join(text.split())
    for step in plan["steps"]:  # every title and step id is there whole (wrapped, not cut)
        assert " ".join((step.get("title") or step["kind"]).split()) in words.replace("- ", "-")
        assert step["id"] in words.replace(". ", ".").replace(" ", "")
    assert "…" not in text
    width = int(re.search(r'width="(\d+)"', svg.group(0)).group(1))  # type: ignore[union-attr]
    assert width <= 700  # fits A4 portrait at 1 cm margins without shrinking
    html = page.read_text()
    assert html.count("Done by <span>&nbsp;</span> Started <span>") == len(plan["steps"])
    expected = re.findall(r"<strong>Expected:</strong>(.*?)</p>", html)
    assert expected and not any("(?P<" in e or "\\s" in e for e in expected)  # words, no regex


@pytest.mark.skipif(
    chromium() is None, reason="headless Chromium is not installed (.ci/run installs it)"
)
def test_in_chromium_it_fits_a4_cuts_no_label_and_prints_readable(
    site_runbook: tuple[Path, dict],  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    page, plan = site_runbook
    probed = tmp_path / "probe.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    out = _run("--virtual-time-budget=5000", "--window-size=794,1123", "--dump-dom",
               probed.as_uri())  # fmt: skip
    match = re.search(r'data-probe="([^"]*)"', out.stdout)
    assert match, out.stderr[-2000:]
    probe = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["width"] <= A4_CSS_PX - 2 * 38  # within the page's printable width
    assert probe["cut"] == []  # every line of every box lies inside its box
    assert probe["boxes"] == len(plan["steps"])
    assert probe["rows"] >= len(plan["steps"]) // 4  # layered top to bottom, not one row
    pdf = print_pdf(page, tmp_path / "site.pdf")
    sizes = _font_sizes(pdf)
    assert sizes and min(sizes) >= 7.0, sorted(sizes)[:10]


WORDS = """<script>
window.addEventListener('load', () => {
  const broken = []; let words = 0;
  const ctx = document.createElement('canvas').getContext('2d');
  for (const pre of document.querySelectorAll('pre')) {
    const style = getComputedStyle(pre);
    const room = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    ctx.font = style.font;
    const walk = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    for (let text = walk.nextNode(); text; text = walk.nextNode()) {
      for (const m of text.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(text, m.index); range.setEnd(text, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        words += 1;
        // a word split over lines although one line could have held it whole
        if (tops.size > 1 && ctx.measureText(m[0]).width < room) broken.push(m[0]);
      }
    }
  }
  document.body.setAttribute('data-words', JSON.stringify({words: words, broken: broken}));
});
</script>"""


def _printed_words(page: Path, tmp_path: Path, extra_css: str = "") -> dict:  # type: ignore[type-arg]
    """Each command's words as the page lays them out in print: its own ``@media print``
    rules applied on screen at A4's printable width (Chromium prints with the same engine)."""
    html = page.read_text()
    rules = re.search(r"@media print \{(.*?)\n  \}", html, re.S)
    assert rules, "the runbook has print rules"
    style = f"<style>{rules.group(1)}{extra_css}</style>"
    probed = tmp_path / "words.html"
    probed.write_text(
        html.replace("</head>", style + "</head>").replace("</body>", WORDS + "</body>")
    )
    out = _run("--virtual-time-budget=5000", f"--window-size={A4_CSS_PX - 2 * 38},1123",
               "--dump-dom", probed.as_uri())  # fmt: skip
    match = re.search(r'data-words="([^"]*)"', out.stdout)
    assert match, out.stderr[-2000:]
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))  # type: ignore[no-any-return]


@pytest.mark.skipif(
    chromium() is None, reason="headless Chromium is not installed (.ci/run installs it)"
)
def test_printed_commands_wrap_between_words_not_inside_them(
    site_runbook: tuple[Path, dict],  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    page, _ = site_runbook
    found = _printed_words(page, tmp_path)
    assert found["words"] > 500  # the site plan's commands were all measured
    assert found["broken"] == [], found["broken"][:20]
    # the measure sees the faults it guards against: words as plain text break at their
    # hyphens; with `word-break: break-all` (the old rule) anywhere
    for undone in ("pre .w { display: inline; }",
                   "pre .w { display: inline; } pre { word-break: break-all; }"):  # fmt: skip
        assert _printed_words(page, tmp_path, undone)["broken"], undone


def _font_sizes(pdf: Path) -> list[float]:
    """Every run of text's printed size in points (font size × text and CTM scale)."""
    from pypdf import PdfReader

    found: list[float] = []

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        if text.strip():
            scale = abs(tm[3] * cm[3]) or abs(tm[0] * cm[0])
            found.append(round(size * scale, 2))

    for sheet in PdfReader(str(pdf)).pages:
        sheet.extract_text(visitor_text=visit)
    return found


def test_the_markdown_picture_runs_top_to_bottom_and_says_expected_in_words(
    site_runbook: tuple[Path, dict],  # type: ignore[type-arg]
) -> None:
    page, plan = site_runbook
    md = page.with_suffix(".md")
    rendered = dr(page.parent / "ws", "runbook", "render", str(page.with_suffix(".json")),
                  "-o", str(md))  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    text = md.read_text()
    assert "```mermaid\nflowchart TD\n" in text
    expected = re.findall(r"\*\*Expected:\*\*(.*)", text)
    assert expected and not any("(?P<" in e or "\\s" in e for e in expected)
    assert text.count("Started: __________") == len(plan["steps"])
