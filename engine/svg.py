"""The plan's DAG as an inline SVG picture, laid out top to bottom in layers.

The layout is grandalf's Sugiyama layering (a pure-Python library: no Graphviz binary to
install on the orchestrator or in CI): each step sits in a layer below every step it needs,
the order within a layer keeps edges from crossing where it can, and an edge that spans
layers is routed through the layers between. Boxes are narrow enough for four side by side
on A4 portrait (a site plan's widest layer), and every label is printed whole, wrapped onto
as many lines as it needs. The critical path is drawn thicker and in the accent colour,
destructive steps with a dashed red border, steps a person carries out with a pale fill.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from dataclasses import dataclass, replace
from xml.sax.saxutils import escape

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from engine.plan import Plan, validate_dag

BOX_W, PAD, GAP_X, GAP_Y = 160, 6, 12, 30
FITS = 4  # boxes side by side within WIDTH
WIDTH = FITS * BOX_W + (FITS - 1) * GAP_X + 2 * PAD  # 688 px: A4 portrait, 1 cm margins
LINE, IDENT_LINE, TOP = 13, 11, 14  # label and step-id line heights; first baseline
LABEL_CHARS, IDENT_CHARS = 23, 27  # at 11 px and 9.5 px system-ui, within BOX_W - 12
DUMMY_W = 6  # where a long edge passes through a layer
PEOPLE = frozenset({"manual", "approval"})


@dataclass(frozen=True)
class Node:
    step_id: str
    number: int
    label: str
    action: str
    destructive: bool
    critical: bool
    x: float = 0.0  # top-left corner
    y: float = 0.0

    @property
    def label_lines(self) -> list[str]:
        return textwrap.wrap(f"{self.number}. {self.label}", LABEL_CHARS) or [str(self.number)]

    @property
    def ident_lines(self) -> list[str]:
        return wrap_ident(self.step_id, IDENT_CHARS)

    @property
    def height(self) -> int:
        return TOP + LINE * (len(self.label_lines) - 1) + IDENT_LINE * len(self.ident_lines) + 8


def wrap_ident(text: str, width: int) -> list[str]:
    """A step id wrapped after its dots (``restore-log-backup.EX2016.DB01.run-1178``),
    never cut: a part longer than a line is broken at the line's end."""
    lines: list[str] = []
    current = ""
    for part in text.replace(".", ".\0").split("\0"):
        while len(part) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(part[:width])
            part = part[width:]
        if len(current) + len(part) > width and current:
            lines.append(current)
            current = ""
        current += part
    return [*lines, current] if current else lines


class _View:
    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = list(points)


def nodes_of(plan: Plan, actions: dict[str, str] | None = None) -> list[Node]:
    """Every step, numbered in the order the runbook lists them (not yet placed)."""
    by_id = {s.id: s for s in plan.steps}
    critical = set(plan.critical_path)
    found = []
    for number, sid in enumerate(validate_dag(plan.steps), start=1):
        step = by_id[sid]
        label = step.title or step.kind
        action = (actions or {}).get(sid, "")
        found.append(Node(sid, number, label, action, step.destructive, sid in critical))
    return found


def layout(
    plan: Plan, actions: dict[str, str] | None = None
) -> tuple[list[Node], dict[tuple[str, str], list[tuple[float, float]]], float, float]:
    """Place every step (grandalf's Sugiyama layout, top to bottom); return the nodes, each
    edge's route (need → step) and the picture's width and height. Unconnected parts of
    the plan are stacked one below the other, so the picture never grows wider for them."""
    nodes = nodes_of(plan, actions)
    vertex = {n.step_id: Vertex(n.step_id) for n in nodes}
    for n in nodes:
        vertex[n.step_id].view = _View(BOX_W, n.height)
    edges = {}
    for step in plan.steps:
        for need in step.needs:
            edge = Edge(vertex[need], vertex[step.id])
            edge.view = _EdgeView()
            edges[(need, step.id)] = edge
    graph = Graph(list(vertex.values()), list(edges.values()))
    placed: dict[str, tuple[float, float]] = {}
    routes: dict[tuple[str, str], list[tuple[float, float]]] = {}
    top, width = float(PAD), 0.0
    for part in sorted(graph.C, key=lambda c: min(_order(nodes, v.data) for v in c.sV)):
        bottom, right = _place(part, top, placed, routes, edges)
        top, width = bottom + GAP_Y, max(width, right)
    at = {n.step_id: replace(n, x=placed[n.step_id][0], y=placed[n.step_id][1]) for n in nodes}
    return [at[n.step_id] for n in nodes], routes, width + PAD, top - GAP_Y + PAD


def _order(nodes: list[Node], sid: str) -> int:
    return next(n.number for n in nodes if n.step_id == sid)


def _place(part, top, placed, routes, edges):  # type: ignore[no-untyped-def]
    """Lay out one connected part below ``top``; record corners and routes."""
    sug = SugiyamaLayout(part)
    sug.xspace, sug.yspace = GAP_X, GAP_Y
    roots = [v for v in part.sV if not v.e_in()]
    sug.init_all(roots=roots, optimize=True)
    for layer in sug.layers:
        for v in layer:
            if not isinstance(v, Vertex):  # a dummy: where a long edge crosses a layer
                v.view.w, v.view.h = DUMMY_W, 1
    sug.draw()
    shift = 0.0
    for layer in sug.layers:
        rows = _rows(list(layer), shift)
        for row in rows:
            _fit(row)
        shift += _extra_height(rows)
    for edge in edges.values():
        if edge.v[0] in part.sV:
            ranks = sug.ctrls.get(edge, {})
            edge.view.setpath([ranks[r].view.xy for r in sorted(ranks)])
    boxes = [v for v in part.sV]
    left = min(v.view.xy[0] - v.view.w / 2 for v in boxes)
    high = min(v.view.xy[1] - v.view.h / 2 for v in boxes)
    dx, dy = PAD - left, top - high
    for v in boxes:
        placed[v.data] = (v.view.xy[0] - v.view.w / 2 + dx, v.view.xy[1] - v.view.h / 2 + dy)
    for key, edge in edges.items():
        if edge.v[0] in part.sV:
            routes[key] = [(x + dx, y + dy) for x, y in edge.view.points]
    right = max(v.view.xy[0] + v.view.w / 2 + dx for v in boxes)
    bottom = max(v.view.xy[1] + v.view.h / 2 + dy for v in boxes)
    return bottom, right


def _rows(layer: list, shift: float) -> list[list]:  # type: ignore[type-arg]
    """A layer moved down by ``shift`` and split into rows of at most FITS boxes, left to
    right (the thin points where long edges pass stay in the first), so a wide plan grows
    down the page, not across it."""
    items = sorted(layer, key=lambda v: v.view.xy[0])
    boxes = [v for v in items if isinstance(v, Vertex)]
    thin = [v for v in items if not isinstance(v, Vertex)]
    first = max(1, FITS - math.ceil(len(thin) * (DUMMY_W + 2) / (BOX_W + GAP_X)))
    rows = [boxes[:first]] + [boxes[i : i + FITS] for i in range(first, len(boxes), FITS)]
    rows[0] = sorted(rows[0] + thin, key=lambda v: v.view.xy[0])
    step = _layer_height(layer) + GAP_Y
    for r, row in enumerate(rows):
        for v in row:
            v.view.xy = (v.view.xy[0], v.view.xy[1] + shift + r * step)
    return [row for row in rows if row]


def _layer_height(layer: list) -> float:  # type: ignore[type-arg]
    return max((v.view.h for v in layer if isinstance(v, Vertex)), default=0.0)


def _extra_height(rows: list[list]) -> float:  # type: ignore[type-arg]
    return (len(rows) - 1) * (_layer_height([v for row in rows for v in row]) + GAP_Y)


def _fit(layer: list) -> None:  # type: ignore[type-arg]
    """Keep one layer's order but close it up within WIDTH (wider only when a layer holds
    more boxes than fit): no box overlaps another, none lies beyond the right edge."""
    items = sorted(layer, key=lambda v: v.view.xy[0])
    real = sum(1 for v in items if isinstance(v, Vertex))
    limit = max(WIDTH, real * (BOX_W + GAP_X) + (len(items) - real) * (DUMMY_W + 2) + 2 * PAD)
    lefts = [v.view.xy[0] - v.view.w / 2 for v in items]
    edge = float(PAD)
    for i, v in enumerate(items):  # left to right: no overlap, nothing left of PAD
        lefts[i] = max(lefts[i], edge)
        edge = lefts[i] + v.view.w + _gap(v)
    edge = float(limit - PAD)
    for i in range(len(items) - 1, -1, -1):  # right to left: nothing beyond the limit
        v = items[i]
        lefts[i] = min(lefts[i], edge - v.view.w)
        edge = lefts[i] - _gap(v)
    for v, left in zip(items, lefts, strict=True):
        v.view.xy = (left + v.view.w / 2, v.view.xy[1])


def _gap(v: object) -> float:
    return GAP_X if isinstance(v, Vertex) else 2


def dag_svg(
    plan: Plan, actions: dict[str, str] | None = None, destructive: set[str] | None = None
) -> str:
    """An ``<svg>`` element (no XML prolog) to embed in HTML."""
    nodes, routes, width, height = layout(plan, actions)
    if destructive:
        nodes = [replace(n, destructive=n.destructive or n.step_id in destructive) for n in nodes]
    at = {n.step_id: n for n in nodes}
    w, h = round(width), round(height)
    parts = [
        f'<svg class="dag" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}">',
        "<title>Steps of the plan and what each needs</title>",
    ]
    for step in plan.steps:
        for need in step.needs:
            route = routes.get((need, step.id), [])
            critical = _on_path(plan, need, step.id)
            parts.append(_edge(at[need], at[step.id], route, critical=critical))
    parts.extend(_box(n) for n in nodes)
    parts.append("</svg>")
    return "\n".join(parts)


def _on_path(plan: Plan, a: str, b: str) -> bool:
    path = plan.critical_path
    return any(path[i] == a and path[i + 1] == b for i in range(len(path) - 1))


def _edge(src: Node, dst: Node, route: list[tuple[float, float]], *, critical: bool) -> str:
    """From the bottom of the step needed to the top of the step that needs it, through the
    points where the layout routed it across the layers between."""
    start = (src.x + BOX_W / 2, src.y + src.height)
    end = (dst.x + BOX_W / 2, dst.y)
    middle = route[1:-1]
    points = [start, *middle, end]
    d = f"M{points[0][0]:.0f},{points[0][1]:.0f}"
    for (x1, y1), (x2, y2) in itertools.pairwise(points):
        mid = (y1 + y2) / 2
        d += f" C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2:.0f}"
    cls = "edge critical" if critical else "edge"
    return f'<path class="{cls}" d="{d}"/>'


def _box(node: Node) -> str:
    classes = ["step"]
    if node.action in PEOPLE:
        classes.append("person")
    if node.destructive:
        classes.append("destructive")
    if node.critical:
        classes.append("critical")
    x, y = round(node.x), round(node.y)
    texts = []
    baseline = y + TOP
    for line in node.label_lines:
        texts.append(f'<text x="{x + 6}" y="{baseline}" class="label">{escape(line)}</text>')
        baseline += LINE
    baseline += IDENT_LINE - LINE
    for line in node.ident_lines:
        texts.append(f'<text x="{x + 6}" y="{baseline}" class="ident">{escape(line)}</text>')
        baseline += IDENT_LINE
    return (
        f'<g class="{" ".join(classes)}"><title>{escape(node.step_id)}</title>'
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{node.height}" rx="5"/>'
        + "".join(texts)
        + "</g>"
    )
