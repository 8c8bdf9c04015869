"""YAML loading that remembers where every value was written.

Validation errors are only useful to a responder if they point at the line to fix, so the
loader composes the YAML node tree once and records the line and column (1-based) of every
mapping value and sequence item, keyed by its path (``("servers", 1, "log_prefix")``).
Syntax errors and duplicate keys become :class:`~dr.errors.Problem` values naming the file,
line and column. The document is bounded first (size, nesting, what its aliases expand to;
:mod:`engine.yamlpos`), so a hostile estate file is one clear error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from dr.errors import Problem
from engine.yamlpos import LOADER, YamlSyntaxError, check_expansion, check_text

PathPart = str | int
Path_ = tuple[PathPart, ...]
Position = tuple[int, int]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_path(path: Sequence[PathPart]) -> str:
    """``("servers", 1, "storage_groups", 0, "log_prefix")`` → ``servers[1].storage_groups[0]...``.

    Mapping keys that are not plain identifiers (``DB01/DB01``) are written ``["DB01/DB01"]``.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENT.match(part):
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text


@dataclass
class Located:
    """A parsed YAML document and the position of every node in it."""

    file: str
    data: Any
    positions: dict[Path_, Position] = field(default_factory=dict)

    def position(self, path: Sequence[PathPart]) -> Position | None:
        """The position of ``path``, or of its nearest written ancestor (for a missing key)."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get(())

    def problem(self, path: Sequence[PathPart], message: str) -> Problem:
        """A problem located at ``path``: file, line, column and the readable field path."""
        pos = self.position(path)
        line, column = pos if pos else (None, None)
        return Problem(
            message=message,
            file=self.file,
            line=line,
            column=column,
            field=format_path(path) or None,
        )


class YamlProblems(Exception):
    """Raised by :func:`load_located` when the text is not a single valid YAML document."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def load_located(text: str, file: str) -> Located:
    """Parse ``text`` (safe loader) and map every node's path to its line and column."""
    loader: Any = None
    try:
        check_text(text)
        loader = LOADER(text)
        node = loader.get_single_node()
        located = Located(file=file, data=None)
        if node is not None:
            check_expansion(node)
            _check_keys(node, located)  # before construction, which rewrites merge keys
            located.data = loader.construct_document(node)
    except YamlSyntaxError as exc:
        problem = Problem(exc.message, file=file, line=exc.line, column=exc.column)
        raise YamlProblems([problem]) from exc
    except yaml.reader.ReaderError as exc:
        raise YamlProblems([_reader_problem(exc, text, file)]) from exc
    except yaml.MarkedYAMLError as exc:
        raise YamlProblems([_syntax_problem(exc, file)]) from exc
    except yaml.YAMLError as exc:
        raise YamlProblems([Problem(f"not valid YAML: {exc}", file=file)]) from exc
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date like 2024-99-99
        raise YamlProblems([Problem(f"a value cannot be read ({exc})", file=file)]) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return located


def _check_keys(node: yaml.Node, located: Located) -> None:
    duplicates: list[Problem] = []
    _walk(node, (), located, duplicates)
    if duplicates:
        raise YamlProblems(duplicates)


def _reader_problem(exc: yaml.reader.ReaderError, text: str, file: str) -> Problem:
    """A character YAML does not allow (NUL, other control characters), at its line."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    return Problem(
        message=f"character #x{exc.character:04x} is not allowed in a YAML file — remove it",
        file=file,
        line=line,
        column=column,
    )


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    what = " ".join(p for p in (exc.context, exc.problem) if p) or "not valid YAML"
    return Problem(
        message=f"YAML syntax: {what} — fix the indentation or quoting here",
        file=file,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
    )


def _mark(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(node: yaml.Node, path: Path_, located: Located, duplicates: list[Problem]) -> None:
    located.positions[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in seen:
                line, column = _mark(key_node)
                duplicates.append(
                    Problem(
                        message=f"key {key!r} is written twice in this mapping — keep one",
                        file=located.file,
                        line=line,
                        column=column,
                        field=format_path((*path, key)),
                    )
                )
            seen.add(key)
            _walk(value_node, (*path, key), located, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), located, duplicates)
