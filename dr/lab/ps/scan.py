"""A static reading of a PowerShell script: every command call, its name and its arguments.

Parses with tree-sitter-pwsh and never runs anything. Values are known where the script
makes them known without running: literals, ``$name = 'literal'`` assignments before the
call (which is how the step library passes every parameter), and ``+`` concatenations of
those (``('-version:' + $version)``). Anything else is :class:`Opaque` — present, value
unknown — which is enough to bind parameters and to resolve parameter sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import tree_sitter as ts
import tree_sitter_pwsh

from dr.lab.ps.binding import SWITCH, Arg

Node = ts.Node

_TOOL_IN_TEXT = re.compile(r"([A-Za-z0-9_.-]+\.(?:exe|com))\b", re.IGNORECASE)


@dataclass(frozen=True)
class Opaque:
    """A value the script computes at run time; ``text`` is the source, ``prefix`` the
    constant start of a concatenation (``('-backupTarget:' + $x)`` → ``-backupTarget:``)."""

    text: str
    prefix: str | None = None

    def __str__(self) -> str:
        return self.prefix + "<value>" if self.prefix is not None else self.text


@dataclass(frozen=True)
class ScriptBlockValue:
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class Call:
    """One command call: how it is named, its arguments, and where it is."""

    name: str  # as written, or the program a ``& <expression>`` resolves to
    line: int
    text: str
    args: list[Arg] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)  # as a native program receives them
    piped: bool = False  # a command before it in the pipeline feeds it objects
    start: int = 0
    dynamic: bool = False  # ``& <expression>``: the name came from resolving an expression


@dataclass
class Script:
    calls: list[Call]
    functions: set[str]
    syntax_errors: list[tuple[int, str]]


@cache
def _parser() -> ts.Parser:
    return ts.Parser(ts.Language(tree_sitter_pwsh.language()))


def scan(script: str) -> Script:
    """Every call in ``script`` (nested blocks included), in source order."""
    source = script.encode("utf-8")
    tree = _parser().parse(source)
    root = tree.root_node
    env = _Env(root)
    calls = [_call(node, env) for node in _walk(root) if node.type == "command"]
    functions = {
        _text(n.child_by_field_name("function_name") or n.named_children[0]).lower()
        for n in _walk(root)
        if n.type == "function_statement" and n.named_children
    }
    return Script([c for c in calls if c is not None], functions, _syntax_errors(root))


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text else ""


def _syntax_errors(root: Node) -> list[tuple[int, str]]:
    """The first parse error on each line that has one."""
    found: list[tuple[int, str]] = []
    for node in _walk(root):
        if found and found[-1][0] == node.start_point[0] + 1:
            continue
        if node.type == "ERROR" or node.is_missing:
            what = "missing " + node.type if node.is_missing else f"unexpected '{_text(node)[:40]}'"
            found.append((node.start_point[0] + 1, what))
    return found


# --- values ------------------------------------------------------------------------------


class _Env:
    """``$name = <foldable expression>`` assignments, by position, for later lookups."""

    def __init__(self, root: Node) -> None:
        self.assignments: list[tuple[int, str, Any, str]] = []
        for node in _walk(root):
            if node.type != "assignment_expression" or len(node.named_children) < 3:
                continue
            left, right = node.named_children[0], node.named_children[-1]
            var = _variable_name(left)
            if var is not None:
                value = self.fold(right, node.start_byte)
                self.assignments.append((node.end_byte, var, value, _text(right)))
        self.assignments.sort(key=lambda a: a[0])

    def lookup(self, name: str, before: int) -> tuple[Any, str] | None:
        found = None
        for end, var, value, text in self.assignments:
            if end <= before and var == name:
                found = (value, text)
        return found

    def prefix(self, node: Node, at: int) -> str | None:
        """The constant left end of a ``+`` concatenation whose rest is run-time."""
        while node.type != "additive_expression":
            named = node.named_children
            if len(named) != 1 or node.type not in _TRANSPARENT:
                return None
            node = named[0]
        left = self.fold(node.named_children[0], at)
        if isinstance(left, str):
            return left
        return self.prefix(node.named_children[0], at)

    def fold(self, node: Node, at: int) -> Any:
        """The constant value of ``node``, or None when it depends on run time."""
        kind = node.type
        if kind == "string_literal":
            return _string_value(node)
        if kind in ("integer_literal", "decimal_integer_literal"):
            return int(re.sub(r"\D", "", _text(node)) or 0)
        if kind == "variable":
            name = _text(node)[1:].lower()
            if name in ("true", "false"):
                return name == "true"
            found = self.lookup(name, at)
            return found[0] if found else None
        if kind == "additive_expression" and len(node.named_children) == 2:
            return _concat(
                self.fold(node.named_children[0], at), self.fold(node.named_children[-1], at)
            )
        named = [c for c in node.named_children if c.type not in ("comment",)]
        if len(named) == 1 and kind in _TRANSPARENT:
            return self.fold(named[0], at)
        return None


_TRANSPARENT = {
    "unary_expression", "parenthesized_expression", "pipeline", "pipeline_chain",
    "logical_expression", "bitwise_expression", "comparison_expression", "format_expression",
    "range_expression", "multiplicative_expression", "assignment_value", "expression",
    "argument_expression", "left_assignment_expression", "array_literal_expression",
}  # fmt: skip


def _concat(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if isinstance(left, str):
        return left + (str(right).lower() if isinstance(right, bool) else str(right))
    if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
        return left + right
    return None


def _variable_name(node: Node) -> str | None:
    for n in _walk(node):
        if n.type == "variable":
            return _text(n)[1:].lower()
    return None


def _string_value(node: Node) -> Any:
    raw = _text(node)
    if raw[:1] in "'\u2018\u2019" and raw[-1:] in "'\u2018\u2019":
        return raw[1:-1].replace("''", "'")
    if raw[:1] == '"' and "$" not in raw and "`" not in raw:
        return raw[1:-1]
    if raw.startswith("@'") or raw.startswith('@"'):
        return None
    return None


# --- calls -------------------------------------------------------------------------------


def _call(node: Node, env: _Env) -> Call | None:
    name, dynamic = _command_name(node, env)
    if name is None:
        return None
    call = Call(
        name,
        node.start_point[0] + 1,
        _text(node),
        piped=_is_piped(node),
        start=node.start_byte,
        dynamic=dynamic,
    )
    _arguments(node, env, call)
    return call


def _command_name(node: Node, env: _Env) -> tuple[str | None, bool]:
    for child in node.children:
        if child.type == "command_name":
            return _text(child), False
        if child.type == "command_name_expr":
            inner = child.named_children[0] if child.named_children else child
            if inner.type == "command_name":
                return _text(inner), False
            return _resolve_dynamic(inner, env), True
    return None, False


def _resolve_dynamic(node: Node, env: _Env) -> str | None:
    """``& (Join-Path $x 'Bin\\eseutil.exe')`` / ``& $setup``: the program it names, if any."""
    while node.type == "path_command_name" and len(node.named_children) == 1:
        node = node.named_children[0]
    value = env.fold(node, node.start_byte)
    text = value if isinstance(value, str) else _text(node)
    if node.type == "variable" and not isinstance(value, str):
        found = env.lookup(_text(node)[1:].lower(), node.start_byte)
        text = found[1] if found else text
    found_tools = _TOOL_IN_TEXT.findall(text)
    return found_tools[-1] if found_tools else None


def _is_piped(node: Node) -> bool:
    parent = node.parent
    if parent is None or parent.type not in ("pipeline_chain", "pipeline"):
        return False
    before = [c for c in parent.children if c.end_byte <= node.start_byte]
    return any(c.type == "|" for c in before)


def _arguments(node: Node, env: _Env, call: Call) -> None:
    elements = next((c for c in node.children if c.type == "command_elements"), None)
    colon = False
    for child in elements.named_children if elements is not None else []:
        if child.type == "command_argument_sep":
            colon = colon or ":" in _text(child)
            continue
        if child.type in (
            "redirection",
            "file_redirection_operator",
            "merging_redirection_operator",
        ):
            colon = False
            continue
        if child.type == "command_parameter":
            raw = _text(child)
            colon = raw.endswith(":")
            call.args.append(Arg(raw[1:].rstrip(":"), SWITCH))
            call.argv.append(raw)
            continue
        value = _value(child, env, call.start)
        if colon and call.args and call.args[-1].value is SWITCH and call.args[-1].name:
            last = call.args.pop()
            call.args.append(Arg(last.name, value, colon=True))
            call.argv[-1] = call.argv[-1].rstrip(":") + ":" + _argv_text(value)
        else:
            call.args.append(Arg(None, value))
            call.argv.extend(_argv_items(value))
        colon = False


_REDIRECTIONS = ("redirection", "file_redirection_operator", "merging_redirection_operator")


def _value(node: Node, env: _Env, at: int) -> Any:
    if node.type == "generic_token":
        return _text(node)
    if node.type == "script_block_expression" or _only_scriptblock(node):
        return ScriptBlockValue(_text(node))
    if node.type == "array_literal_expression":
        items = [env.fold(c, at) for c in node.named_children]
        if all(i is not None for i in items):
            return items
        return Opaque(_text(node))
    folded = env.fold(node, at)
    return folded if folded is not None else Opaque(_text(node), env.prefix(node, at))


def _only_scriptblock(node: Node) -> bool:
    named = node.named_children
    return (
        node.type == "unary_expression"
        and len(named) == 1
        and named[0].type == ("script_block_expression")
    )


def _argv_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _argv_items(value: Any) -> list[str]:
    if isinstance(value, list):
        return [_argv_text(v) for v in value]
    return [_argv_text(value)]
