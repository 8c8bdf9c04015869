"""Parse PowerShell with tree-sitter-pwsh; refuse a script with a syntax error up front.

PowerShell parses the whole script before it runs any of it, and a parse error stops it
with a ``ParserError`` record naming the line and column. :func:`parse` does the same:
any ``ERROR`` or ``MISSING`` node in the tree raises :class:`ParseError`, whose text is
PowerShell's ``At line:L char:C`` form.
"""

from __future__ import annotations

from functools import cache

import tree_sitter as ts
import tree_sitter_pwsh

__all__ = ["Node", "ParseError", "parse", "text"]

Node = ts.Node


class ParseError(Exception):
    """A syntax error, as PowerShell's parser reports it."""

    def __init__(self, message: str, line: int, column: int, source_line: str, fqid: str):
        self.message, self.line, self.column, self.fqid = message, line, column, fqid
        marker = " " * (column - 1) + "~"
        self.text = (
            f"At line:{line} char:{column}\r\n+ {source_line}\r\n+ {marker}\r\n{message}\r\n"
            "    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException"
            f"\r\n    + FullyQualifiedErrorId : {fqid}\r\n"
        )
        super().__init__(self.text)


@cache
def _parser() -> ts.Parser:
    return ts.Parser(ts.Language(tree_sitter_pwsh.language()))


def parse(script: str) -> Node:
    """The tree of ``script`` (its ``program`` node), or :class:`ParseError`."""
    source = script.encode("utf-8")
    tree = _parser().parse(source)
    bad = _first_error(tree.root_node)
    if bad is not None:
        raise _error(bad, script)
    return tree.root_node


def _first_error(node: Node) -> Node | None:
    if node.is_missing or node.type == "ERROR":
        return node
    if not node.has_error:
        return None
    for child in node.children:
        found = _first_error(child)
        if found is not None:
            return found
    return node


def _error(node: Node, script: str) -> ParseError:
    row, col = node.start_point
    lines = script.splitlines() or [""]
    source_line = lines[row] if row < len(lines) else ""
    column = len(source_line.encode()[:col].decode("utf-8", "replace")) + 1
    if node.is_missing:
        token = node.type
        closing = {"}": "MissingEndCurlyBrace", ")": "MissingEndParenthesisInExpression"}
        messages = {
            "}": "Missing closing '}' in statement block or type definition.",
            ")": "Missing closing ')' in expression.",
        }
        message = messages.get(token, f"Missing '{token}'.")
        return ParseError(message, row + 1, column, source_line, closing.get(token, "MissingToken"))
    token = text(node).strip().splitlines()[0] if text(node).strip() else ""
    message = f"Unexpected token '{token}' in expression or statement."
    return ParseError(message, row + 1, column, source_line, "UnexpectedToken")


def text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogateescape")
