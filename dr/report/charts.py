"""The report's charts, drawn by matplotlib and embedded as SVG (text kept as text).

Each function takes plain data and returns one ``<svg>`` element as a string. The figures are
sized for an A4 page (17 cm of text width) and scale to the screen; colours carry meaning
only together with a legend and a label, so a chart printed in black and white still reads.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WIDTH_IN = 6.7  # 17 cm: A4 minus margins
MARKED_ROWS = 60  # above this many databases the coverage cells carry colour only
BARS = 25  # above this many drills, RTO and RPO are drawn over time instead of as bars
PASSED, FAILED, MISSING, NOT_DUE = "#2e7d32", "#c62828", "#f9a825", "#e0e0e0"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    matplotlib.rcParams.update({
        "svg.fonttype": "none",  # text stays text: selectable, searchable, sharp in print
        "font.family": "sans-serif",
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.hashsalt": "dr-report",  # the same data gives the same file
    })  # fmt: skip
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Any) -> str:
    plt = _plt()
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg") :]


@dataclass(frozen=True)
class Coverage:
    """Database × month: 'passed', 'failed', 'missing' (a month the period required one and
    none passed) or '' (nothing required that month)."""

    databases: Sequence[str]
    months: Sequence[str]
    cells: Sequence[Sequence[str]]


def coverage_chart(cov: Coverage) -> str:
    """The coverage matrix as a heat map: one row per database, one column per month."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    plt = _plt()
    codes = {"": 0, "passed": 1, "failed": 2, "missing": 3}
    grid = [[codes[c] for c in row] for row in cov.cells] or [[0]]
    many = len(cov.databases) > MARKED_ROWS
    height = max(1.6, (0.16 if many else 0.28) * len(cov.databases) + 1.2)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    cmap = ListedColormap([NOT_DUE, PASSED, FAILED, MISSING])
    ax.imshow(grid, cmap=cmap, vmin=0, vmax=3, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(cov.months)), labels=list(cov.months), rotation=90)
    ax.set_yticks(range(len(cov.databases)), labels=list(cov.databases))
    ax.tick_params(length=0)
    for i, row in enumerate([] if many else cov.cells):  # marks only where they stay legible
        for j, cell in enumerate(row):
            mark = {"passed": "✓", "failed": "✗", "missing": "!"}.get(cell, "")
            if mark:
                ax.text(j, i, mark, ha="center", va="center", fontsize=7, color="white")
    ax.legend(
        handles=[
            Patch(color=PASSED, label="restored (passed)"),
            Patch(color=FAILED, label="failed"),
            Patch(color=MISSING, label="missing: due, none passed"),
            Patch(color=NOT_DUE, label="nothing due"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.35 if len(cov.months) > 6 else -0.2),
        ncol=4,
        frameon=False,
    )
    ax.set_title("Drill coverage: database × month")
    return _svg(fig)


@dataclass(frozen=True)
class Measured:
    """One drill's measured value against its target, in seconds."""

    label: str
    value: float | None
    target: float | None
    passed: bool
    when: datetime | None = None


def against_target_chart(rows: Sequence[Measured], what: str) -> str:
    """Horizontal bars of a measured value per drill, each with its SLA target marked; over
    time (one point per drill) when there are more drills than bars would keep readable."""
    if len(rows) > BARS:
        return over_time_chart(rows, what)
    plt = _plt()
    height = max(1.4, 0.3 * len(rows) + 0.9)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    labels = [r.label for r in rows]
    values = [(r.value or 0) / 60 for r in rows]
    colours = [PASSED if r.passed else FAILED for r in rows]
    ax.barh(range(len(rows)), values, color=colours, height=0.6)
    for i, r in enumerate(rows):
        if r.target is not None:
            ax.plot([r.target / 60] * 2, [i - 0.4, i + 0.4], color="black", linewidth=1.5)
        shown = "not measured" if r.value is None else f"{r.value / 60:.0f} min"
        ax.text(values[i], i, f"  {shown}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), labels=labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"{what}, minutes (black mark: the SLA target)")
    ax.set_title(f"{what} per drill against the SLA")
    return _svg(fig)


def over_time_chart(rows: Sequence[Measured], what: str) -> str:
    """One point per drill at its date (green within the SLA, red not), its target a dash."""
    import matplotlib.dates as mdates

    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.6))
    dated = [r for r in rows if r.when is not None and r.value is not None]
    for ok, colour, label in ((True, PASSED, "within the SLA"), (False, FAILED, "not")):
        mine = [r for r in dated if r.passed is ok]
        ax.scatter([r.when for r in mine], [(r.value or 0) / 60 for r in mine], s=6,
                   color=colour, label=f"{label} ({len(mine)})")  # fmt: skip
    targets = [r for r in dated if r.target is not None]
    ax.scatter([r.when for r in targets], [(r.target or 0) / 60 for r in targets], marker="_",
               s=30, color="black", linewidths=0.8, label="SLA target")  # fmt: skip
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.set_ylabel(f"{what}, minutes")
    ax.legend(loc="upper left", frameon=False, ncol=3)
    ax.set_title(f"{what} of each of {len(rows)} drills against the SLA")
    return _svg(fig)


@dataclass(frozen=True)
class Span:
    """One step on the timeline."""

    label: str
    start: datetime
    end: datetime
    state: str


def timeline_chart(spans: Sequence[Span], title: str) -> str:
    """A Gantt chart of a run's steps, in seconds from the run's first step."""
    plt = _plt()
    if not spans:
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 1.0))
        ax.text(0.5, 0.5, "no step ran", ha="center", va="center")
        ax.axis("off")
        return _svg(fig)
    origin = min(s.start for s in spans)
    height = max(1.6, 0.24 * len(spans) + 0.9)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    for i, s in enumerate(spans):
        left = (s.start - origin).total_seconds()
        width = max((s.end - s.start).total_seconds(), 0.05)
        colour = PASSED if s.state == "succeeded" else FAILED if s.state in (
            "failed", "paused", "aborted") else MISSING  # fmt: skip
        ax.broken_barh([(left, width)], (i - 0.35, 0.7), facecolors=colour)
    ax.set_yticks(range(len(spans)), labels=[s.label for s in spans])
    ax.invert_yaxis()
    ax.set_xlabel("seconds from the run's first step")
    ax.set_title(title)
    return _svg(fig)
