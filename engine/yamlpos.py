"""YAML loading that remembers the line and column of every value.

A library author who mistypes a field needs ``file:line:column`` to fix it, so the loader
composes the node tree once and records the 1-based position of each mapping value and
sequence item by its path (``("kinds", "mount-database", "variants", 0, "action")``).

Every YAML input is bounded before it is built into Python values (:func:`check_text`,
:func:`check_expansion`): its size, its nesting depth and the number of values it expands
to through anchors and aliases. A 300-byte "billion laughs" document, an anchor that refers
to itself and 20 000 nested brackets are one clear error, not minutes, gigabytes or a
RecursionError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

PathPart = str | int
Position = tuple[int, int]

#: libyaml's safe loader when PyYAML was built with it (about ten times faster: the inventory
#: and the step library are read by every command); the pure-Python one otherwise. Both give
#: the same nodes with the same line and column marks.
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 100
MAX_VALUES = 1_000_000
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


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


def check_text(text: str) -> None:
    """Refuse a document larger than MAX_BYTES or nested deeper than MAX_DEPTH.

    The nesting is measured on the parser's events, which come without recursion, before
    the (recursive) composer runs.
    """
    if len(text) > MAX_BYTES:
        raise YamlSyntaxError(
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB", None, None
        )
    depth = 0
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise YamlSyntaxError(
                    f"mappings and lists nested more than {MAX_DEPTH} deep",
                    mark.line + 1,
                    mark.column + 1,
                )
        elif isinstance(event, _CLOSE):
            depth -= 1


def check_expansion(node: yaml.Node) -> None:
    """Refuse an anchor that contains itself, or aliases that expand past MAX_VALUES."""
    sizes: dict[int, int] = {}
    _expanded(node, sizes, set())


def _expanded(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        raise YamlSyntaxError("an anchor refers to itself (through an alias)", line, column)
    open_.add(key)
    total = 1
    for child in _children(node):
        total += _expanded(child, sizes, open_)
        if total > MAX_VALUES:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
            raise YamlSyntaxError(
                f"the aliases here expand to more than {MAX_VALUES} values", line, column
            )
    open_.discard(key)
    sizes[key] = total
    return total


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_located(text: str) -> Located:
    """Parse one YAML document (bounded: :func:`check_text`) and record where each value sits."""
    loader: Any = None
    try:
        check_text(text)
        loader = LOADER(text)
        node = loader.get_single_node()
        if node is None:
            return Located(data=None)
        check_expansion(node)
        positions: dict[tuple[PathPart, ...], Position] = {}
        _walk(node, (), positions)  # before construction, which rewrites merge keys
        return Located(data=loader.construct_document(node), positions=positions)
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise YamlSyntaxError(
            f"character #x{exc.character:04x} is not allowed in a YAML file", line, col
        ) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise YamlSyntaxError(str(exc.problem or exc), line, col) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), None, None) from exc
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date like 2024-99-99
        raise YamlSyntaxError(f"a value cannot be read ({exc})", None, None) from exc
    finally:
        if loader is not None:
            loader.dispose()


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
