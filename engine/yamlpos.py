"""YAML loading that remembers the line and column of every value.

A library author who mistypes a field needs ``file:line:column`` to fix it, so the loader
composes the node tree once and records the 1-based position of each mapping value and
sequence item by its path (``("kinds", "mount-database", "variants", 0, "action")``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

PathPart = str | int
Position = tuple[int, int]


class YamlSyntaxError(Exception):
    """The text is not one valid YAML document; ``line``/``column`` locate the problem."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Located:
    data: Any
    positions: dict[tuple[PathPart, ...], Position] = field(default_factory=dict)

    def position(self, path: Sequence[PathPart]) -> Position | None:
        """Where ``path`` was written, or its nearest written ancestor (a missing key)."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get(())


def load_located(text: str) -> Located:
    """Parse one YAML document and record where each value sits."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise YamlSyntaxError(str(exc.problem or exc), line, col) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), None, None) from exc
    if node is None:
        return Located(data=None)
    positions: dict[tuple[PathPart, ...], Position] = {}
    _walk(node, (), positions)
    data = yaml.safe_load(text)
    return Located(data=data, positions=positions)


def _walk(
    node: yaml.Node, path: tuple[PathPart, ...], out: dict[tuple[PathPart, ...], Position]
) -> None:
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                mark = key_node.start_mark
                raise YamlSyntaxError(f"duplicate key {key!r}", mark.line + 1, mark.column + 1)
            seen.add(key)
            _walk(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), out)
