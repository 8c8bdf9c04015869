"""A cmd.exe subset: the one-line commands of the step library's ``action: cmd`` variants.

Documented behaviour followed (Microsoft's Windows Commands reference: ``cmd``, ``if``,
``exit``, ``set``, ``echo``, and "Command shell overview" for ``&``, ``&&``, ``||``, ``()``
and redirection):

* ``%NAME%`` is expanded once, when the line is read, before anything runs (so
  ``set X=1 & echo %X%`` prints the old value); an undefined name stays as typed, as at
  the prompt. ``%ERRORLEVEL%`` is the exit code of the last program;
* ``&`` runs the next command always, ``&&`` only after success (exit code 0), ``||`` only
  after failure; ``&`` binds loosest;
* ``if [/i] [not] errorlevel N cmd`` is true when the last exit code is N or more;
  ``if [not] exist path``, ``if [/i] [not] "a"=="b"``; the command of an ``if`` runs to the end
  of the line unless it is parenthesised, and ``else`` follows a closing parenthesis;
* ``exit [/b] N`` ends the command line with N; ``cd [/d] PATH`` changes the folder the
  line's programs run in;
* ``^`` escapes the next character outside quotes; ``>nul``, ``2>nul``, ``2>&1``, ``>file``,
  ``>>file`` redirect.

A native program runs through ``host.native`` after :func:`dr.lab.ps.tools.check`;
``powershell.exe ... -EncodedCommand B64`` runs the decoded script with
:func:`dr.lab.ps.run_powershell`. An unknown name prints cmd's "is not recognized" text
and sets errorlevel 9009; a cmd built-in outside this subset fails loudly.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CmdError", "CmdSession", "parse_line", "split_args"]

Output = Generator[tuple[str, bytes], None, int]

NOT_RECOGNIZED = (
    "'{name}' is not recognized as an internal or external command,\r\n"
    "operable program or batch file.\r\n"
)
_BUILTINS = {
    "copy", "del", "erase", "move", "ren", "rename", "md", "mkdir", "rd", "rmdir", "type",
    "dir", "cd", "chdir", "pushd", "popd", "cls", "title", "ver", "vol", "path", "prompt",
    "start", "call", "goto", "for", "setlocal", "endlocal", "shift", "pause", "date", "time",
    "assoc", "ftype", "mklink", "color", "break", "verify",
}  # fmt: skip


class CmdError(Exception):
    """A line the subset cannot parse or run."""


# --- tokens and the tree ------------------------------------------------------------------


@dataclass
class Simple:
    words: list[str]  # raw words, quotes kept
    raw: str  # the command's text, for echo
    redirects: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Group:
    body: Any
    redirects: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class If:
    negate: bool
    kind: str  # errorlevel | exist | compare
    operands: tuple[str, ...]
    then: Any
    otherwise: Any = None
    ignore_case: bool = False


@dataclass
class Chain:
    op: str  # & && ||
    left: Any
    right: Any


_OP = re.compile(r"&&|\|\||&|\||\(|\)|[012]?>>?(?:&[012])?|<")


def tokenize(line: str) -> list[tuple[str, str]]:
    """("op", text) and ("word", raw text) tokens; quotes and ^ respected."""
    tokens: list[tuple[str, str]] = []
    i, word = 0, ""
    while i < len(line):
        ch = line[i]
        if ch == '"':
            end = line.find('"', i + 1)
            end = len(line) if end < 0 else end + 1
            word += line[i:end]
            i = end
            continue
        if ch == "^" and i + 1 < len(line):
            word += line[i + 1]
            i += 2
            continue
        match = _OP.match(line, i) if not (ch.isdigit() and word) else None
        if ch in " \t" or match:
            if word:
                tokens.append(("word", word))
                word = ""
            if match:
                tokens.append(("op", match.group(0)))
                i = match.end()
            else:
                tokens.append(("space", ch))
                i += 1
            continue
        word += ch
        i += 1
    if word:
        tokens.append(("word", word))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.pos = tokens, 0

    def peek(self, skip_space: bool = True) -> tuple[str, str] | None:
        pos = self.pos
        while skip_space and pos < len(self.tokens) and self.tokens[pos][0] == "space":
            pos += 1
        return self.tokens[pos] if pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        while self.tokens[self.pos][0] == "space":
            self.pos += 1
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def sequence(self, depth: int = 0) -> Any:
        node = self.and_or(depth)
        while self.peek() == ("op", "&"):
            self.take()
            if self.peek() is None or self.peek() == ("op", ")"):
                break
            node = Chain("&", node, self.and_or(depth))
        return node

    def and_or(self, depth: int) -> Any:
        node = self.command(depth)
        while (tok := self.peek()) in (("op", "&&"), ("op", "||")):
            self.take()
            node = Chain(tok[1], node, self.command(depth))
        return node

    def command(self, depth: int) -> Any:
        tok = self.peek()
        if tok is None:
            raise CmdError("The syntax of the command is incorrect.")
        if tok == ("op", "("):
            self.take()
            body = self.sequence(depth + 1)
            if self.peek() != ("op", ")"):
                raise CmdError("The syntax of the command is incorrect.")
            self.take()
            return Group(body, self.redirects())
        if tok[0] == "word" and tok[1].lower() == "if":
            return self.if_command(depth)
        return self.simple(depth)

    def redirects(self) -> list[tuple[str, str]]:
        found = []
        while (tok := self.peek()) and tok[0] == "op" and (">" in tok[1] or tok[1] == "<"):
            op = self.take()[1]
            target = "" if "&" in op else self.take()[1]
            found.append((op, target))
        return found

    def simple(self, depth: int) -> Simple:
        words: list[str] = []
        raw: list[str] = []
        redirects: list[tuple[str, str]] = []
        while self.pos < len(self.tokens):
            kind, value = self.tokens[self.pos]
            if kind == "op" and (">" in value or value == "<"):
                redirects.extend(self.redirects())
                continue
            if kind == "op" and (value != ")" or depth > 0):
                break
            self.pos += 1
            raw.append(value)
            if kind != "space":
                words.append(value)
        return Simple(words, "".join(raw).lstrip(), redirects)  # echo keeps trailing blanks

    def if_command(self, depth: int) -> If:
        self.take()
        words = []
        ignore_case = negate = False
        while (tok := self.peek()) and tok[0] == "word" and tok[1].lower() in ("/i", "not"):
            flag = self.take()[1].lower()
            ignore_case, negate = ignore_case or flag == "/i", negate or flag == "not"
        first = self.take()[1]
        if first.lower() in ("errorlevel", "exist"):
            words = [self.take()[1]]
            kind = first.lower()
        else:
            kind, words = "compare", self._comparison(first)
        then = self.command(depth) if self.peek() == ("op", "(") else self.sequence(depth)
        otherwise = None
        if isinstance(then, Group) and (tok := self.peek()) and tok[1].lower() == "else":
            self.take()
            otherwise = self.command(depth) if self.peek() == ("op", "(") else self.sequence(depth)
        return If(negate, kind, tuple(words), then, otherwise, ignore_case)

    def _comparison(self, first: str) -> list[str]:
        if "==" in first:
            left, _, right = first.partition("==")
            return [left, right or self.take()[1]]
        nxt = self.take()[1]
        if nxt.startswith("=="):
            return [first, nxt[2:] or self.take()[1]]
        raise CmdError(f"{nxt} was unexpected at this time.")


def parse_line(line: str) -> Any:
    parser = _Parser(tokenize(line))
    tree = parser.sequence()
    if parser.peek() is not None:
        raise CmdError(f"{parser.peek()[1]} was unexpected at this time.")  # type: ignore[index]
    return tree


def split_args(words: list[str]) -> list[str]:
    """The argv a program's C runtime makes of cmd's words.

    cmd hands a program its command line as it is; the program's C runtime splits it
    (CommandLineToArgvW's rules: learn.microsoft.com/cpp/c-language/parsing-c-command-line-
    arguments): white space outside quotes separates arguments, quotes are removed, ``\\"``
    is a literal quote and ``2n`` backslashes before a quote are ``n`` backslashes."""
    line, argv, arg, quoted, have, i = " ".join(words), [], "", False, False, 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            run = len(line) - i - len(line[i:].lstrip("\\"))
            if i + run < len(line) and line[i + run] == '"':
                arg += "\\" * (run // 2) + ('"' if run % 2 else "")
                i += run + (1 if run % 2 else 0)
            else:
                arg += "\\" * run
                i += run
            have = True
            continue
        if ch == '"':
            quoted, have = not quoted, True
        elif ch in " \t" and not quoted:
            if have:
                argv.append(arg)
            arg, have = "", False
        else:
            arg, have = arg + ch, True
        i += 1
    if have:
        argv.append(arg)
    return argv


# --- running ------------------------------------------------------------------------------


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class CmdSession:
    """One ``cmd.exe /c`` line on a host: its variables and errorlevel."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.errorlevel = 0
        env = {"ComputerName": host.name, "SystemRoot": "C:\\Windows", "windir": "C:\\Windows"}
        self.env = {k.lower(): (k, v) for k, v in env.items()}
        for key, value in (getattr(host, "env", None) or {}).items():
            self.env[key.lower()] = (key, value)
        self.cwd = getattr(host, "location", None) or host.fs.home

    def run(self, line: str) -> Output:
        try:
            tree = parse_line(self.expand(line))
        except CmdError as exc:
            yield "stderr", f"{exc}\r\n".encode()
            return 255
        try:
            yield from self.execute(tree)
        except _Exit as done:
            return done.code
        return self.errorlevel

    def expand(self, line: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.lower() == "errorlevel":
                return str(self.errorlevel)
            found = self.env.get(name.lower())
            return found[1] if found else match.group(0)

        return re.sub(r"%([^%\s]+)%", one, line)

    def execute(self, node: Any) -> Generator[tuple[str, bytes], None, None]:
        if isinstance(node, Chain):
            yield from self.execute(node.left)
            if node.op == "&" or (node.op == "&&") == (self.errorlevel == 0):
                yield from self.execute(node.right)
        elif isinstance(node, Group):
            yield from self._redirected(self.execute(node.body), node.redirects)
        elif isinstance(node, If):
            branch = node.then if self._condition(node) else node.otherwise
            if branch is not None:
                yield from self.execute(branch)
        else:
            yield from self._redirected(self.simple(node), node.redirects)

    def _condition(self, node: If) -> bool:
        if node.kind == "errorlevel":
            result = self.errorlevel >= int(node.operands[0])
        elif node.kind == "exist":
            path = node.operands[0].strip('"')
            result = self.host.fs.exists(self.host.fs.full(path, self.cwd))
        else:
            left, right = node.operands
            result = left.lower() == right.lower() if node.ignore_case else left == right
        return result != node.negate

    def _redirected(
        self, output: Generator[tuple[str, bytes], None, None], redirects: list[tuple[str, str]]
    ) -> Generator[tuple[str, bytes], None, None]:
        routes = {"stdout": "stdout", "stderr": "stderr"}
        files: dict[str, tuple[str, bool]] = {}
        for op, target in redirects:
            stream = "stderr" if op.startswith("2") else "stdout"
            if op.endswith("&1"):
                routes[stream] = routes["stdout"]
            elif op.endswith("&2"):
                routes[stream] = routes["stderr"]
            elif target.lower() == "nul":
                routes[stream] = "nul"
            else:
                routes[stream] = "file:" + target.strip('"')
                files[target.strip('"')] = (target, ">>" in op)
        for stream, data in output:
            route = routes.get(stream, stream)
            if route.startswith("file:"):
                self._append_file(route[5:], data, files)
            elif route != "nul":
                yield route, data

    def _append_file(self, target: str, data: bytes, files: dict[str, tuple[str, bool]]) -> None:
        fs = self.host.fs
        path = fs.full(target, self.cwd)
        _, append = files[target]
        fs.write_bytes(path, data, append=append or fs.exists(path))
        files[target] = (target, True)

    def simple(self, node: Simple) -> Generator[tuple[str, bytes], None, None]:
        if not node.words:
            return
        name = node.words[0].strip('"')
        lower = name.lower()
        builtin = getattr(self, "_builtin_" + lower, None) if lower.isalpha() else None
        if lower.startswith("echo") and (lower == "echo" or lower[4:5] in ".:"):
            yield from self._builtin_echo(node)
        elif builtin is not None:
            yield from builtin(node)
        elif lower in _BUILTINS:
            self.errorlevel = 1
            yield "stderr", f"dr lab: the cmd built-in {name} is not supported\r\n".encode()
        else:
            yield from self.program(name, split_args(node.words[1:]))

    def _builtin_echo(self, node: Simple) -> Generator[tuple[str, bytes], None, None]:
        rest = node.raw[4:]
        text = rest[1:] if rest[:1] in (" ", ".", ":") else rest
        yield "stdout", (text + "\r\n").encode()

    def _builtin_rem(self, node: Simple) -> Generator[tuple[str, bytes], None, None]:
        yield from ()

    def _builtin_cd(self, node: Simple) -> Generator[tuple[str, bytes], None, None]:
        """``cd [/d] PATH``: ``/d`` also changes the drive; without it a path on another
        drive leaves the current folder as it is (Windows Commands reference, ``cd``)."""
        words = [w for w in node.words[1:] if w.lower() != "/d"]
        switch_drive = len(words) != len(node.words) - 1
        target = " ".join(w.strip('"') for w in words)
        if not target:
            yield "stdout", (self.cwd + "\r\n").encode()
            return
        path = self.host.fs.full(target, self.cwd)
        if not self.host.fs.exists(path):
            self.errorlevel = 1
            yield "stderr", b"The system cannot find the path specified.\r\n"
            return
        if switch_drive or path[:2].lower() == self.cwd[:2].lower():
            self.cwd = path
        self.errorlevel = 0

    _builtin_chdir = _builtin_cd

    def _builtin_exit(self, node: Simple) -> Generator[tuple[str, bytes], None, None]:
        args = [w for w in node.words[1:] if w.lower() != "/b"]
        code = int(args[0]) if args and re.fullmatch(r"-?\d+", args[0]) else self.errorlevel
        yield from ()
        raise _Exit(code)

    def _builtin_set(self, node: Simple) -> Generator[tuple[str, bytes], None, None]:
        body = node.raw[3:].strip()
        if body.startswith('"') and body.endswith('"'):
            body = body[1:-1]
        if "=" not in body:
            for key, value in sorted(self.env.values()):
                if key.lower().startswith(body.lower()):
                    yield "stdout", f"{key}={value}\r\n".encode()
            return
        key, _, value = body.partition("=")
        if value:
            self.env[key.lower()] = (key, value)
        else:
            self.env.pop(key.lower(), None)

    # -- programs --

    def program(self, name: str, argv: list[str]) -> Generator[tuple[str, bytes], None, None]:
        base = re.split(r"[\\/]", name)[-1].lower()
        base = base[:-4] if base.endswith(".exe") else base
        if base in ("powershell", "pwsh"):
            yield from self._powershell(argv)
            return
        impl = self.host.native(base) if hasattr(self.host, "native") else None
        if impl is not None and not getattr(self.host, "program_found", lambda _: True)(name):
            impl = None  # a full path to where the program is not installed
        if impl is None:
            self.errorlevel = 9009
            yield "stderr", NOT_RECOGNIZED.format(name=name).encode()
            return
        from dr.lab.ps import tools

        if hasattr(self.host, "native_cwd"):  # a program runs in the line's current folder
            self.host.native_cwd = self.cwd
        try:
            tools.check(base, argv, self.host)
            result = impl(argv, self.host, b"")
        except tools.ToolUsageError as exc:
            self.errorlevel = exc.exit_code
            yield "stdout", exc.text.encode()
            return
        self.errorlevel = result.exit_code
        if result.stdout:
            yield "stdout", result.stdout.encode()
        if result.stderr:
            yield "stderr", result.stderr.encode()

    def _powershell(self, argv: list[str]) -> Generator[tuple[str, bytes], None, None]:
        from dr.lab.ps import run_powershell

        lowered = [a.lower() for a in argv]
        script = None
        for flag in ("-encodedcommand", "-enc", "-e", "-ec"):
            if flag in lowered and lowered.index(flag) + 1 < len(argv):
                encoded = argv[lowered.index(flag) + 1]
                script = base64.b64decode(encoded).decode("utf-16-le")
        if script is None and "-command" in lowered:
            script = " ".join(argv[lowered.index("-command") + 1 :])
        if script is None:
            self.errorlevel = 1
            yield "stderr", b"dr lab: powershell.exe needs -EncodedCommand or -Command here\r\n"
            return
        runner = run_powershell(script, self.host, b"")
        try:
            while True:
                yield next(runner)
        except StopIteration as done:
            self.errorlevel = int(done.value)
