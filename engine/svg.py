"""The plan's DAG as an inline SVG picture: no graphviz, no JavaScript, no network.

Steps are laid out in columns by topological depth (a step sits one column right of the
deepest step it needs) and in rows by plan order within a column. Edges are drawn as
curves; the critical path is drawn thicker and in the accent colour, destructive steps
with a dashed red border, steps a person carries out with a pale fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from engine.plan import Plan, validate_dag

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 190, 44, 46, 14, 12
PEOPLE = frozenset({"manual", "approval"})


@dataclass(frozen=True)
class Node:
    step_id: str
    number: int
    column: int
    row: int
    label: str
    action: str
    destructive: bool
    critical: bool

    @property
    def x(self) -> int:
        return PAD + self.column * (BOX_W + GAP_X)

    @property
    def y(self) -> int:
        return PAD + self.row * (BOX_H + GAP_Y)


def layout(plan: Plan, actions: dict[str, str] | None = None) -> list[Node]:
    """Place every step: column = topological depth, row = order within that column."""
    order = validate_dag(plan.steps)
    by_id = {s.id: s for s in plan.steps}
    depth: dict[str, int] = {}
    for sid in order:
        needs = by_id[sid].needs
        depth[sid] = 1 + max((depth[n] for n in needs), default=-1)
    rows: dict[int, int] = {}
    nodes: list[Node] = []
    critical = set(plan.critical_path)
    for number, sid in enumerate(order, start=1):
        col = depth[sid]
        row = rows.get(col, 0)
        rows[col] = row + 1
        step = by_id[sid]
        action = (actions or {}).get(sid, "")
        label = step.title or step.kind
        nodes.append(Node(sid, number, col, row, label, action, step.destructive, sid in critical))
    return nodes


def dag_svg(
    plan: Plan, actions: dict[str, str] | None = None, destructive: set[str] | None = None
) -> str:
    """An ``<svg>`` element (no XML prolog) to embed in HTML."""
    nodes = layout(plan, actions)
    if destructive:
        nodes = [_with_destructive(n, n.step_id in destructive) for n in nodes]
    at = {n.step_id: n for n in nodes}
    width = PAD * 2 + (max((n.column for n in nodes), default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + (max((n.row for n in nodes), default=0) + 1) * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg class="dag" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        "<title>Steps of the plan and what each needs</title>",
    ]
    for step in plan.steps:
        for need in step.needs:
            parts.append(_edge(at[need], at[step.id], critical=_on_path(plan, need, step.id)))
    parts.extend(_box(n) for n in nodes)
    parts.append("</svg>")
    return "\n".join(parts)


def _with_destructive(node: Node, flag: bool) -> Node:
    if node.destructive or not flag:
        return node
    return Node(
        node.step_id,
        node.number,
        node.column,
        node.row,
        node.label,
        node.action,
        True,
        node.critical,
    )


def _on_path(plan: Plan, a: str, b: str) -> bool:
    path = plan.critical_path
    return any(path[i] == a and path[i + 1] == b for i in range(len(path) - 1))


def _edge(src: Node, dst: Node, *, critical: bool) -> str:
    x1, y1 = src.x + BOX_W, src.y + BOX_H // 2
    x2, y2 = dst.x, dst.y + BOX_H // 2
    mid = (x1 + x2) // 2
    cls = "edge critical" if critical else "edge"
    return f'<path class="{cls}" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"/>'


def _box(node: Node) -> str:
    classes = ["step"]
    if node.action in PEOPLE:
        classes.append("person")
    if node.destructive:
        classes.append("destructive")
    if node.critical:
        classes.append("critical")
    label = node.label if len(node.label) <= 28 else node.label[:27] + "…"
    ident = node.step_id if len(node.step_id) <= 30 else node.step_id[:29] + "…"
    return (
        f'<g class="{" ".join(classes)}"><title>{escape(node.step_id)}</title>'
        f'<rect x="{node.x}" y="{node.y}" width="{BOX_W}" height="{BOX_H}" rx="5"/>'
        f'<text x="{node.x + 8}" y="{node.y + 18}" class="label">'
        f"{node.number}. {escape(label)}</text>"
        f'<text x="{node.x + 8}" y="{node.y + 35}" class="ident">{escape(ident)}</text></g>'
    )
