"""Lexers for the interpreters a rendered step reaches, reduced to a comparable *shape*.

A hostile value is inert when it changes no shape: the token structure of the PowerShell
script (from tree-sitter's PowerShell grammar), of each generated ``.cmd`` line and of each
diskshadow script line is the same as with a benign value; only the contents of quoted
literals differ. A value that ends a quote, starts a command, expands a variable or adds a
line changes the shape.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import tree_sitter_pwsh
from tree_sitter import Language, Node, Parser

_PS = Parser(Language(tree_sitter_pwsh.language()))
_OPAQUE = {"verbatim_string_characters", "verbatim_here_string_characters"}
_PS_QUOTES = "'\u2018\u2019\u201a\u201b"
# The variables whose values the VSS steps write into files, and who reads each file.
GENERATED = {"$copy": "cmd", "$script": "diskshadow"}


def powershell_tree(script: str) -> Node:
    return _PS.parse(script.encode("utf-8")).root_node


def powershell_shape(script: str) -> list[str]:
    """Node types in document order; single-quoted literals count as one opaque node.

    Where the grammar cannot parse a script PowerShell accepts (``1..'16'``), the shape is
    PowerShell's own tokenizer rule instead: the text with every single-quoted literal
    (any of the five quote characters, a doubled one is data) replaced by one mark.
    """
    root = powershell_tree(script)
    if root.has_error:
        return ["residual", powershell_residual(script)]
    return list(_shape(root))


def powershell_residual(script: str) -> str:
    out: list[str] = []
    i, double = 0, False
    while i < len(script):
        ch = script[i]
        if ch == '"':
            double = not double
        elif ch == "`" and double:
            out.append(script[i : i + 2])
            i += 2
            continue
        elif ch in _PS_QUOTES and not double:
            i = _literal_end(script, i + 1)
            out.append("'LITERAL'")
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _literal_end(script: str, i: int) -> int:
    while i < len(script):
        if script[i] in _PS_QUOTES:
            if i + 1 < len(script) and script[i + 1] in _PS_QUOTES:
                i += 2
                continue
            return i + 1
        i += 1
    raise AssertionError("unterminated single-quoted literal")


def _shape(node: Node) -> Iterator[str]:
    if node.is_missing:
        yield "MISSING"
    yield node.type
    if node.type in _OPAQUE:
        return
    for child in node.children:
        yield from _shape(child)


def powershell_errors(script: str) -> bool:
    return powershell_tree(script).has_error


def unquote_verbatim(text: str) -> str:
    body = text[1:-1]
    return re.sub(f"([{_PS_QUOTES}])[{_PS_QUOTES}]", r"\1", body)


def generated_files(script: str) -> dict[str, list[str]]:
    """``$copy`` / ``$script`` assignments: the lines of the file each one becomes."""
    found: dict[str, list[str]] = {}
    for node in _walk(powershell_tree(script)):
        if node.type != "assignment_expression":
            continue
        name = _text(node.children[0]).strip()
        if name not in GENERATED:
            continue
        value = node.children[-1]
        found[name] = [unquote_verbatim(_text(n)) for n in _walk(value) if n.type in _OPAQUE]
    return found


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8")


def cmd_shape(line: str) -> list[str]:
    """cmd.exe's reading of one line: expansions first, then quotes and operators.

    ``%NAME%`` and ``!NAME!`` expand even inside double quotes; outside them ``& | < > ( )
    ^`` are operators and spaces separate words. A line break ends the command.
    """
    tokens: list[str] = []
    quoted = False
    word = False
    for ch in line:
        if ch in "%!\r\n":
            tokens.append(f"expand{ch!r}")
            word = False
        elif ch == '"':
            quoted = not quoted
            tokens.append("quote")
            word = False
        elif quoted:
            if not word:
                tokens.append("text")
                word = True
        elif ch in "&|<>()^":
            tokens.append(ch)
            word = False
        elif ch in " \t":
            word = False
        elif not word:
            tokens.append("word")
            word = True
    return tokens + (["unterminated"] if quoted else [])


def diskshadow_shape(line: str) -> list[str]:
    """A diskshadow script line: words and quoted arguments; ``%NAME%`` expands anywhere."""
    tokens: list[str] = []
    quoted = False
    word = False
    for ch in line:
        if ch in "%\r\n\x00":
            tokens.append(f"expand{ch!r}")
            word = False
        elif ch == '"':
            quoted = not quoted
            tokens.append("quote")
            word = False
        elif ch in " \t" and not quoted:
            word = False
        elif not word:
            tokens.append("text" if quoted else "word")
            word = True
    return tokens + (["unterminated"] if quoted else [])


def posix_shape(script: str) -> list[str]:
    """sh's reading: words and operators, plus every ``$`` / backquote outside '...'."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    shape = [token if set(token) <= set("();<>|&\n") else "word" for token in lexer]
    single = double = False
    for ch in script:
        if ch == "'" and not double:
            single = not single
        elif ch == '"' and not single:
            double = not double
        elif ch in "$`\n" and not single:
            shape.append(f"expand{ch!r}")
    return shape


def shape_of(script: str, shell: str) -> list[str]:
    if shell == "powershell":
        return powershell_shape(script)
    if shell == "cmd":
        return [t for line in script.split("\n") for t in [*cmd_shape(line), "EOL"]]
    return posix_shape(script)
