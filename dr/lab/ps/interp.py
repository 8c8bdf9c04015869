"""The evaluator: walks tree-sitter-pwsh's tree of a script and runs it against a LabHost.

Error model (PowerShell's, see ``about_Throw``, ``about_Try_Catch_Finally`` and
``about_CommonParameters``):

* a *non-terminating* error (a cmdlet's ``Call.error``) is written to stderr and the
  pipeline goes on; ``$?`` is false afterwards. ``-ErrorAction`` /
  ``$ErrorActionPreference`` ``Stop`` turns it into a script-terminating one,
  ``SilentlyContinue`` only records it in ``$Error``;
* a *statement-terminating* error (an unknown command, a parameter-binding error, a .NET
  method's exception, a failed conversion) ends the statement; the script goes on with
  the next one unless a ``try`` is around it or ``$ErrorActionPreference`` is ``Stop``;
* a *script-terminating* error (``throw``, ``-ErrorAction Stop``, and the lab's own
  "unsupported construct") ends the script unless caught.

Every node type the evaluator does not know raises "dr lab: unsupported PowerShell
construct <type> at line L: <text>" (script-terminating): nothing is ever skipped.
"""

from __future__ import annotations

import io
import re
import time
from collections import ChainMap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dr.lab.ps import dotnet
from dr.lab.ps.fs import FsError
from dr.lab.ps.parse import Node, parse, text
from dr.lab.ps.values import (
    Hashtable,
    PSObject,
    PSRuntimeError,
    ScriptBlock,
    collapse,
    enumerate_value,
    error_record,
    format_output,
    get_member,
    to_bool,
    to_int,
    to_number,
    to_str,
    type_name,
)

__all__ = ["Interpreter", "ScriptExit", "ps_equal", "statements", "unsupported"]


HEARTBEAT = 0.02  # seconds between checks for a stop while sleeping


class Stopped(BaseException):
    """The command was stopped (WinRS terminate or Delete): unwinds the whole script."""


class _Signal(Exception):
    """exit / break / continue / return; ``partial`` holds the output written before it."""

    partial: list[Any]

    def __init__(self) -> None:
        super().__init__()
        self.partial = []


class ScriptExit(_Signal):
    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code


class _Break(_Signal):
    pass


class _Continue(_Signal):
    pass


class _Return(_Signal):
    def __init__(self, values: list[Any]) -> None:
        super().__init__()
        self.values = values


_FLOW = (_Signal, PSRuntimeError)


def _partial(exc: BaseException) -> list[Any]:
    return list(getattr(exc, "partial", None) or [])


@contextmanager
def _collecting(out: list[Any]) -> Iterator[None]:
    """Output already written stays written when exit, throw or break unwinds a statement."""
    try:
        yield
    except _FLOW as exc:
        exc.partial = out + _partial(exc)
        raise


@contextmanager
def contained() -> Iterator[None]:
    """Output inside a pipeline element or sub-expression never escapes it on an error."""
    try:
        yield
    except _FLOW as exc:
        exc.partial = []
        raise


@dataclass
class Function:
    name: str
    params: list[tuple[str, str | None]]  # (name, type) in declaration order
    body: Node | None


def unsupported(node: Node, what: str | None = None) -> PSRuntimeError:
    snippet = text(node).strip().splitlines()[0][:80] if text(node).strip() else ""
    kind = what or node.type
    error = PSRuntimeError(
        f"dr lab: unsupported PowerShell construct {kind} at line "
        f"{node.start_point[0] + 1}: {snippet}",
        fqid="DrLabUnsupported",
    )
    error.script_terminating = True  # type: ignore[attr-defined]
    return error


def script_terminating(error: PSRuntimeError) -> PSRuntimeError:
    error.script_terminating = True  # type: ignore[attr-defined]
    return error


def is_script_terminating(error: PSRuntimeError) -> bool:
    return bool(getattr(error, "script_terminating", False))


_ENV_DEFAULTS = {
    "systemroot": "C:\\Windows",
    "windir": "C:\\Windows",
    "systemdrive": "C:",
    "temp": "C:\\Windows\\TEMP",
    "tmp": "C:\\Windows\\TEMP",
    "programfiles": "C:\\Program Files",
}


class Interpreter:
    """One script's run: variables, location, streams, snap-ins."""

    def __init__(self, host: Any, stdin: bytes = b"") -> None:
        from dr.lab.ps.commands import Commands

        self.host = host
        self.stdin = io.StringIO(stdin.decode("utf-8", "surrogateescape"))
        self.vars: ChainMap[str, Any] = ChainMap(
            {
                "erroractionpreference": "Continue",
                "error": [],
                "lastexitcode": None,
                "pshome": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0",
            }
        )
        self.functions: dict[str, Function] = {}
        self.cwd: str = getattr(host, "location", None) or host.fs.home
        self.last_ok = True
        self.sink: Callable[[str, bytes], None] = lambda stream, data: None
        self.stopped = False  # set when the command is stopped; checked at every statement
        self.try_depth = 0
        self.clixml_started = False
        self.snapins: list[str] = []
        self.commands = Commands(self)

    # -- streams --

    def write(self, stream: str, text_out: str) -> None:
        self.sink(stream, text_out.encode("utf-8", "surrogateescape"))

    def check_stopped(self) -> None:
        if self.stopped:
            raise Stopped()

    def sleep(self, seconds: float) -> None:
        """Start-Sleep: the host's clock if it has one, else real time in short slices."""
        host_sleep = getattr(self.host, "sleep", None)
        if callable(host_sleep):
            host_sleep(seconds)
            return
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            self.check_stopped()
            time.sleep(min(HEARTBEAT, left))

    def run_program(self, program: Node) -> int:
        """Run a parsed script; its exit code (see :mod:`dr.lab.ps`)."""
        for node in statements(program):
            code = self.run_top(node)
            if code is not None:
                return code
        return 0 if self.last_ok else 1

    def emit_output(self, values: list[Any]) -> None:
        for value in values:
            out = format_output(value)
            if out:
                self.write("stdout", out)

    def now(self) -> datetime:
        """The host's clock (``host.clock()``, a callable returning a datetime) or real time."""
        clock = getattr(self.host, "clock", None)
        if callable(clock):
            return clock()  # type: ignore[no-any-return]
        return clock.now() if clock is not None else datetime.now()

    # -- the script --

    def run_top(self, node: Node) -> int | None:
        """One top-level statement; the script's exit code if it ends the script."""
        try:
            self.emit_output(self.statement_guarded(node))
        except _FLOW as exc:
            self.emit_output(_partial(exc))
            return self._ended(exc)
        return None

    def _ended(self, exc: BaseException) -> int:
        if isinstance(exc, ScriptExit):
            return exc.code
        if isinstance(exc, PSRuntimeError):
            self.report(exc)
            return 1
        if isinstance(exc, _Return):
            self.emit_output(exc.values)
        return 0 if self.last_ok else 1  # return, or break/continue outside a loop

    def report(self, exc: PSRuntimeError) -> None:
        """Write an error record to stderr (``Cmdlet : message``) and add it to ``$Error``."""
        prefix = f"{exc.command} : " if exc.command else ""
        self.clixml("Error", prefix + exc.message)
        self.vars["error"].insert(0, error_record(exc))

    def clixml(self, stream: str, message: str) -> None:
        """One record on stderr as CLIXML; the ``#< CLIXML`` marker comes once per run."""
        from dr.lab.pslite import clixml_error

        data = clixml_error(message)
        if stream != "Error":
            data = data.replace(b'S="Error"', f'S="{stream}"'.encode())
        if self.clixml_started:
            data = data.removeprefix(b"#< CLIXML\r\n")
        self.clixml_started = True
        self.sink("stderr", data)

    def statement_guarded(self, node: Node) -> list[Any]:
        """A statement; a statement-terminating error ends it, not the script."""
        self.check_stopped()
        try:
            return self.statement(node)
        except PSRuntimeError as exc:
            if self._stop_preference():
                raise script_terminating(exc) from None
            if is_script_terminating(exc) or self.try_depth:
                raise
            self.report(exc)
            self.last_ok = False
            return _partial(exc)

    def _stop_preference(self) -> bool:
        return to_str(self.vars.get("erroractionpreference")).lower() == "stop"

    def block(self, node: Node | None) -> list[Any]:
        out: list[Any] = []
        with _collecting(out):
            for child in statements(node):
                out.extend(self.statement_guarded(child))
        return out

    def loop_body(self, node: Node, out: list[Any]) -> str | None:
        """One pass of a loop's block into ``out``: "break", "continue" or None."""
        try:
            out.extend(self.block(_block_list(_first(node, "statement_block"))))
        except _Break as exc:
            out.extend(exc.partial)
            return "break"
        except _Continue as exc:
            out.extend(exc.partial)
            return "continue"
        return None

    # -- statements --

    def statement(self, node: Node) -> list[Any]:
        handler = _STATEMENTS.get(node.type)
        if handler is None:
            raise unsupported(node)
        return handler(self, node)

    def pipeline(self, node: Node) -> list[Any]:
        children = node.named_children
        if len(children) != 1:
            raise unsupported(node, "pipeline chain operator")
        child = children[0]
        if child.type == "assignment_expression":
            self.assign(child)
            self.last_ok = True
            return []
        return self.pipeline_chain(child)

    def pipeline_chain(self, node: Node) -> list[Any]:
        if node.type != "pipeline_chain":
            return self.statement(node)
        elements = [c for c in node.named_children if c.type != "comment"]
        ok = [True]
        items: list[Any] = []
        for index, element in enumerate(elements):
            if element.type == "command":
                items = self.commands.run(element, items, first=index == 0, ok=ok)
            elif element.type == "redirections":
                items = self.commands.redirect_expression(element, items, ok)
            elif index == 0 and _is_increment(element):
                self.expr(element)
            elif index == 0:
                items = enumerate_value(self.expr(element))
            else:
                raise PSRuntimeError(
                    "Expressions are only allowed as the first element of a pipeline.",
                    fqid="ExpressionsMustBeFirstInPipeline",
                )
        self.last_ok = ok[0]
        return items

    def chain_value(self, node: Node) -> Any:
        """An assignment's or a parenthesis' value: an expression keeps its array."""
        if node.type == "pipeline":
            inner = node.named_children
            if len(inner) == 1 and inner[0].type == "assignment_expression":
                self.assign(inner[0])
                return None
            node = inner[0] if len(inner) == 1 else node
        if node.type == "pipeline_chain":
            named = node.named_children
            if len(named) == 1 and named[0].type != "command":
                value = self.expr(named[0])
                self.last_ok = True
                return value
            return collapse(self.pipeline_chain(node))
        return collapse(self.statement(node))

    def if_statement(self, node: Node) -> list[Any]:
        children = node.children
        if to_bool(self.chain_value(node.child_by_field_name("condition") or children[2])):
            return self.block(_block_list(_first(node, "statement_block")))
        for clause in node.named_children:
            if clause.type == "elseif_clauses":
                for elseif in clause.named_children:
                    cond = _first(elseif, "pipeline")
                    if to_bool(self.chain_value(cond)):
                        return self.block(_block_list(_first(elseif, "statement_block")))
            if clause.type == "else_clause":
                return self.block(_block_list(_first(clause, "statement_block")))
        return []

    def foreach_statement(self, node: Node) -> list[Any]:
        variable = _first(node, "variable")
        source = _first(node, "pipeline")
        items = enumerate_value(self.chain_value(source))
        out: list[Any] = []
        with _collecting(out):
            for item in items:
                self.set_var(_var_name(variable), item)
                if self.loop_body(node, out) == "break":
                    break
        return out

    def for_statement(self, node: Node) -> list[Any]:
        init = node.child_by_field_name("for_initializer")
        cond = node.child_by_field_name("for_condition")
        step = node.child_by_field_name("for_iterator")
        if init is not None:
            self.chain_value(init.named_children[0])
        out: list[Any] = []
        with _collecting(out):
            while cond is None or to_bool(self.chain_value(cond.named_children[0])):
                if self.loop_body(node, out) == "break":
                    break
                if step is not None:
                    self.chain_value(step.named_children[0])
        return out

    def while_statement(self, node: Node) -> list[Any]:
        cond = node.child_by_field_name("condition") or _first(node, "while_condition")
        out: list[Any] = []
        with _collecting(out):
            while to_bool(self.chain_value(cond.named_children[0])):
                if self.loop_body(node, out) == "break":
                    break
        return out

    def do_statement(self, node: Node) -> list[Any]:
        until = any(c.type == "until" for c in node.children)
        cond = node.child_by_field_name("condition") or _first(node, "while_condition")
        out: list[Any] = []
        with _collecting(out):
            while self.loop_body(node, out) != "break":
                if to_bool(self.chain_value(cond.named_children[0])) == until:
                    break
        return out

    def function_statement(self, node: Node) -> list[Any]:
        name = text(_first(node, "function_name"))
        declared = _first(node, "function_parameter_declaration")
        params: list[tuple[str, str | None]] = []
        plist = _first(declared, "parameter_list")
        for param in plist.named_children if plist is not None else []:
            attrs = _first(param, "attribute_list")
            type_node = _first(_first(attrs, "attribute"), "type_literal") if attrs else None
            if _first(param, "script_parameter_default") is not None:
                raise unsupported(param, "parameter default")
            type_text = _type_text(type_node) if type_node is not None else None
            params.append((_var_name(_first(param, "variable")), type_text))
        body = _first(node, "script_block")
        self.functions[name.lower()] = Function(name, params, body)
        return []

    def call_function(self, fn: Function, args: list[Any], items: list[Any]) -> list[Any]:
        """A simple function: named or positional parameters, the rest in ``$args``."""
        bound: dict[str, Any] = {}
        rest: list[Any] = []
        from dr.lab.ps.commands import SWITCH_ARG

        wanted = {p.lower(): t for p, t in fn.params}
        queue = list(args)
        while queue:
            name, value, _colon, raw = queue.pop(0)
            key = name.lower() if name is not None else None
            if key in wanted and value is SWITCH_ARG and (wanted[key] or "").lower() != "switch":
                value = queue.pop(0)[1] if queue and queue[0][0] is None else None
            if key in wanted:
                bound[key] = True if value is SWITCH_ARG else value
            else:
                rest.append(raw if value is SWITCH_ARG else value)
        for pname, _ in fn.params:
            if pname.lower() not in bound and rest:
                bound[pname.lower()] = rest.pop(0)
        scope: dict[str, Any] = {"args": rest, "input": items}
        for pname, ptype in fn.params:
            value = bound.get(pname.lower())
            scope[pname.lower()] = self.cast_name(ptype, value) if ptype else value
        saved = self.vars
        self.vars = self.vars.new_child(scope)
        try:
            return self.block(_script_body(fn.body) if fn.body is not None else None)
        except _Return as ret:
            return ret.partial + ret.values
        finally:
            self.vars = saved

    def cast_name(self, name: str, value: Any) -> Any:
        from dr.lab.ps.convert import cast

        try:
            return cast(name, value)
        except LookupError:
            raise PSRuntimeError(
                f"dr lab: unsupported PowerShell construct parameter type [{name}]",
                fqid="DrLabUnsupported",
                script_terminating=True,
            ) from None

    def flow_control(self, node: Node) -> list[Any]:
        keyword = node.children[0].type.lower()
        value_node = _first(node, "pipeline")
        if keyword == "break" and value_node is None:
            raise _Break()
        if keyword == "continue" and value_node is None:
            raise _Continue()
        value = self.chain_value(value_node) if value_node is not None else None
        if keyword == "exit":
            raise ScriptExit(_exit_code(value))
        if keyword == "return":
            raise _Return(enumerate_value(value))
        if keyword == "throw":
            raise self.thrown(value)
        raise unsupported(node)

    def thrown(self, value: Any) -> PSRuntimeError:
        if isinstance(value, PSObject) and value.has("Exception"):
            message = to_str(get_member(value.get("Exception"), "Message"))
        else:
            message = to_str(value) if value is not None else "ScriptHalted"
        error = PSRuntimeError(message, category="OperationStopped", fqid=message, value=value)
        return script_terminating(error)

    def try_statement(self, node: Node) -> list[Any]:
        out: list[Any] = []
        final = _first(node, "finally_clause")
        with _collecting(out):
            try:
                self._try_block(node, out)
            except PSRuntimeError as exc:
                clause = self._matching_catch(node, exc)
                if clause is None:
                    raise
                self._catch_block(clause, exc, out)
            finally:
                if final is not None:
                    out.extend(self.block(_block_list(_first(final, "statement_block"))))
        return out

    def _try_block(self, node: Node, out: list[Any]) -> None:
        self.try_depth += 1
        try:
            out.extend(self.block(_block_list(_first(node, "statement_block"))))
        except _FLOW as exc:
            out.extend(_partial(exc))
            exc.partial = []
            raise
        finally:
            self.try_depth -= 1

    def _catch_block(self, clause: Node, exc: PSRuntimeError, out: list[Any]) -> None:
        saved = self.vars.get("_")
        self.vars["_"] = self.vars["psitem"] = error_record(exc)
        self.vars["error"].insert(0, self.vars["_"])
        try:
            out.extend(self.block(_block_list(_first(clause, "statement_block"))))
        except _FLOW as inner:
            out.extend(_partial(inner))
            inner.partial = []
            raise
        finally:
            self.vars["_"] = self.vars["psitem"] = saved

    def _matching_catch(self, node: Node, exc: PSRuntimeError) -> Node | None:
        clauses = _first(node, "catch_clauses")
        for clause in clauses.named_children if clauses is not None else []:
            types = _first(clause, "catch_type_list")
            if types is None:
                return clause
            for literal in types.named_children:
                if _exception_matches(_type_text(literal), exc):
                    return clause
        return None

    # -- assignment --

    def assign(self, node: Node) -> None:
        target = node.named_children[0]
        operator = text(_first(node, "assignment_operator")).strip()
        value_node = node.child_by_field_name("value") or node.named_children[-1]
        if value_node.type == "assignment_value":
            value = self.chain_value(value_node.named_children[0])
        else:
            value = collapse(self.statement(value_node))
        lhs = _unwrap(target)
        if operator != "=":
            current = self.expr(lhs)
            ops = {"+=": "+", "-=": "-", "*=": "*", "/=": "/", "%=": "%"}
            if operator not in ops:
                raise unsupported(node, f"assignment operator {operator}")
            value = self.arith(ops[operator], current, value)
        self.store(lhs, value)

    def store(self, lhs: Node, value: Any) -> None:
        if lhs.type == "variable":
            self.set_var(_var_name(lhs), value)
        elif lhs.type == "member_access" and lhs.children[1].type == ".":
            owner = self.expr(lhs.named_children[0])
            name = self.member_name(lhs.named_children[-1])
            if isinstance(owner, PSObject):
                owner.set(name, value)
            elif isinstance(owner, Hashtable):
                owner[name] = value
            else:
                raise PSRuntimeError(
                    f"The property '{name}' cannot be found on this object. Verify that the "
                    "property exists and can be set.",
                    category="InvalidOperation",
                    fqid="PropertyAssignmentException",
                )
        elif lhs.type == "element_access":
            owner = self.expr(lhs.named_children[0])
            key = self.expr(lhs.named_children[1])
            if isinstance(owner, Hashtable):
                owner[key] = value
            elif isinstance(owner, list):
                owner[to_int(key)] = value
            else:
                raise unsupported(lhs, "indexed assignment")
        elif lhs.type == "cast_expression":
            self.store(_unwrap(lhs.named_children[1]), self.cast(lhs.named_children[0], value))
        else:
            raise unsupported(lhs, f"assignment to {lhs.type}")

    # -- variables --

    def get_var(self, name: str) -> Any:
        lower = name.lower()
        if lower.startswith("env:"):
            env = {k.lower(): v for k, v in (getattr(self.host, "env", None) or {}).items()}
            defaults = _ENV_DEFAULTS | {"computername": self.host.name}
            return env.get(lower[4:], defaults.get(lower[4:]))
        fixed = {"true": True, "false": False, "null": None, "?": self.last_ok}
        if lower in fixed:
            return fixed[lower]
        if lower in ("psitem",):
            lower = "_"
        if lower == "pwd":
            return self.cwd
        if lower == "psversiontable":  # none in 1.0 (about_Automatic_Variables)
            if self.host.ps_version in (None, "1.0"):
                return None
            return Hashtable([("PSVersion", self.host.ps_version)])
        return self.vars.get(lower)

    def set_var(self, name: str, value: Any) -> None:
        lower = name.lower()
        if lower in ("true", "false", "null", "?"):
            if lower == "null":
                return
            raise PSRuntimeError(
                f"Cannot overwrite variable {name} because it is read-only or constant.",
                category="WriteError",
                fqid="VariableNotWritable",
            )
        if lower.startswith("env:"):
            if getattr(self.host, "env", None) is None:
                self.host.env = {}
            self.host.env[name[4:]] = to_str(value)
            return
        self.vars["_" if lower == "psitem" else lower] = value

    # -- expressions --

    def expr(self, node: Node) -> Any:
        handler = _EXPRESSIONS.get(node.type)
        if handler is None:
            raise unsupported(node)
        return handler(self, node)

    def variable(self, node: Node) -> Any:
        return self.get_var(_var_name(node))

    def string(self, node: Node) -> str:
        inner = node.named_children[0] if node.named_children else node
        kind = inner.type
        raw = text(inner)
        if kind == "verbatim_string_characters":
            return raw[1:-1].replace("''", "'").replace("\u2019\u2019", "\u2019")
        if kind == "verbatim_here_string_characters":
            return _here_body(raw)
        if kind in ("expandable_string_literal", "expandable_here_string_literal"):
            return self.expand(inner, kind.endswith("here_string_literal"))
        raise unsupported(inner)

    def expand(self, node: Node, here: bool) -> str:
        source = node.text or b""
        base = node.start_byte
        parts: list[str] = []
        start = 2 if here else 1
        pos = start
        for child in node.named_children:
            parts.append(_unescape(source[pos : child.start_byte - base].decode(), here))
            parts.append(to_str(self.expand_part(child)))
            pos = child.end_byte - base
        end = len(source) - (2 if here else 1)
        parts.append(_unescape(source[pos:end].decode(), here))
        result = "".join(parts)
        return _here_trim(result) if here else result

    def expand_part(self, node: Node) -> Any:
        if node.type == "variable":
            return self.variable(node)
        if node.type == "sub_expression":
            return self.sub_expression(node)
        raise unsupported(node)

    def sub_expression(self, node: Node) -> Any:
        with contained():
            return collapse(self.block(_first(node, "statement_list")))

    def array_expression(self, node: Node) -> list[Any]:
        body = _first(node, "statement_list")
        with contained():
            return self.block(body) if body is not None else []

    def array_literal(self, node: Node) -> list[Any]:
        return [self.expr(c) for c in node.named_children]

    def hash_literal(self, node: Node) -> Hashtable:
        table = Hashtable()
        body = _first(node, "hash_literal_body")
        for entry in body.named_children if body is not None else []:
            key_node = _first(entry, "key_expression")
            key_inner = key_node.named_children[0]
            key = text(key_inner) if key_inner.type == "simple_name" else self.expr(key_inner)
            table[key] = self.chain_value(entry.named_children[-1])
        return table

    def parenthesized(self, node: Node) -> Any:
        return self.chain_value(node.named_children[0])

    def script_block_expr(self, node: Node) -> ScriptBlock:
        return ScriptBlock(node, text(node))

    def script_block(self, source: str) -> ScriptBlock:
        program = parse(source)
        return ScriptBlock(program, "{" + source + "}")

    def invoke_block(self, block: ScriptBlock, args: list[Any], dollar: Any = None) -> list[Any]:
        """Run a script block in the current scope (as ForEach-Object does); its output."""
        saved = self.vars.get("_")
        self.vars["_"] = dollar
        self.vars["args"] = args
        body = block.node
        if body.type == "script_block_expression":
            body = _first(body, "script_block")
        try:
            if body is None:
                return []
            if body.type != "script_block":
                return self.block(body)
            return self.block(_script_body(body))
        except _Return as ret:
            return ret.partial + ret.values
        finally:
            self.vars["_"] = saved

    def number(self, node: Node) -> int | float:
        raw = text(node).strip()
        return to_number(raw)

    def unary(self, node: Node) -> Any:
        first = node.children[0]
        if first.type in ("cast_expression", "pre_increment_expression"):
            return self.expr(first)
        if first.type == "pre_decrement_expression":
            return self.expr(first)
        operator = first.type.lower()
        operand = self.expr(node.named_children[-1])
        if operator in ("-not", "!"):
            return not to_bool(operand)
        if operator == "-":
            return -to_number(operand)
        if operator == "+":
            return to_number(operand)
        if operator == ",":
            return [operand]
        if operator == "-join":
            return "".join(to_str(x) for x in enumerate_value(operand))
        if operator == "-split":
            return to_str(operand).split()
        raise unsupported(node, f"unary operator {operator}")

    def increment(self, node: Node) -> Any:
        prefix = node.children[0].type in ("++", "--")
        operator = node.children[0 if prefix else 1].type
        target = _unwrap(node.named_children[0])
        old = to_number(self.expr(target))
        new = old + (1 if operator == "++" else -1)
        self.store(target, new)
        return new if prefix else old

    def cast_expr(self, node: Node) -> Any:
        value = self.expr(node.named_children[1])
        return self.cast(node.named_children[0], value)

    def cast(self, type_node: Node, value: Any) -> Any:
        from dr.lab.ps.convert import cast

        name = _type_text(type_node)
        if name.lower() in ("adsi", "system.directoryservices.directoryentry"):
            return self._adsi(to_str(value))
        try:
            return cast(name, value)
        except LookupError:
            raise unsupported(type_node, f"cast to [{name}]") from None

    def _adsi(self, path: str) -> Any:
        """``[ADSI]'LDAP://...'``: the host's directory answers (a host without one has no
        domain to ask); a missing object fails as DirectoryEntry does on first use."""
        lookup = getattr(self.host, "directory_entry", None)
        found = lookup(path) if lookup is not None else None
        if found is None:
            raise PSRuntimeError(
                'The following exception occurred while retrieving member "legacyExchangeDN": '
                '"There is no such object on the server."',
                fqid="DirectoryServicesCOMException",
                target=path,
            )
        return found

    def type_literal(self, node: Node) -> Any:
        return PSObject.of("System.RuntimeType", Name=_type_text(node), FullName=_type_text(node))

    def member_access(self, node: Node) -> Any:
        owner_node, name_node = node.named_children[0], node.named_children[-1]
        name = self.member_name(name_node)
        if node.children[1].type == "::":
            return self._static(owner_node, name, None)
        return get_member(self.expr(owner_node), name)

    def member_name(self, node: Node) -> str:
        inner = node.named_children[0] if node.named_children else node
        if inner.type == "simple_name":
            return text(inner)
        return to_str(self.expr(inner))

    def _static(self, type_node: Node, name: str, args: list[Any] | None) -> Any:
        if type_node.type != "type_literal":
            raise unsupported(type_node, "static member on a value")
        try:
            return dotnet.static_member(self, _type_text(type_node), name, args)
        except dotnet.Unsupported as exc:
            raise unsupported(type_node.parent or type_node, f"member {exc}") from None
        except (FsError, TypeError, IndexError, ValueError) as exc:
            raise method_error(name, args or [], exc) from None

    def invocation(self, node: Node) -> Any:
        owner_node = node.named_children[0]
        name = self.member_name(_first(node, "member_name"))
        arg_list = _first(node, "argument_list")
        args = self.arguments(arg_list)
        if node.children[1].type == "::":
            return self._static(owner_node, name, args)
        owner = self.expr(owner_node)
        try:
            return dotnet.call_method(self, owner, name, args)
        except (FsError, TypeError, IndexError, ValueError) as exc:
            raise method_error(name, args, exc) from None
        except dotnet.Unsupported as exc:
            if owner is None:
                raise PSRuntimeError(
                    "You cannot call a method on a null-valued expression.",
                    category="InvalidOperation",
                    fqid="InvokeMethodOnNull",
                ) from None
            raise unsupported(node, f"{exc}") from None

    def arguments(self, node: Node | None) -> list[Any]:
        if node is None:
            return []
        listed = _first(node, "argument_expression_list")
        if listed is None:
            return []
        return [self.expr(arg.named_children[0]) for arg in listed.named_children]

    def element_access(self, node: Node) -> Any:
        owner = self.expr(node.named_children[0])
        index = self.expr(node.named_children[1])
        return index_value(owner, index)

    def range_expr(self, node: Node) -> list[int]:
        low = to_int(self.expr(node.named_children[0]))
        high = to_int(self.expr(node.named_children[1]))
        return make_range(low, high)

    def binary(self, node: Node) -> Any:
        left_node, right_node = node.named_children[0], node.named_children[-1]
        operator = node.children[1]
        op = text(operator).strip().lower()
        if node.type == "logical_expression":
            return self.logical(op, left_node, right_node)
        left, right = self.expr(left_node), self.expr(right_node)
        if node.type == "comparison_expression":
            return self.compare(op, left, right, right_node)
        if node.type == "format_expression":
            from dr.lab.ps.convert import format_string

            return format_string(to_str(left), enumerate_value(right))
        return self.arith(op, left, right)

    def logical(self, op: str, left_node: Node, right_node: Node) -> bool:
        left = to_bool(self.expr(left_node))
        if op == "-and":
            return left and to_bool(self.expr(right_node))
        if op == "-or":
            return left or to_bool(self.expr(right_node))
        if op == "-xor":
            return left != to_bool(self.expr(right_node))
        raise PSRuntimeError(f"dr lab: unsupported operator {op}", fqid="DrLabUnsupported")

    def arith(self, op: str, left: Any, right: Any) -> Any:
        from dr.lab.ps.convert import arith

        return arith(op, left, right)

    def compare(self, op: str, left: Any, right: Any, right_node: Node) -> Any:
        from dr.lab.ps.convert import compare

        if op in ("-is", "-isnot"):
            name = _type_text(_unwrap(right_node)) if _is_type(right_node) else to_str(right)
            from dr.lab.ps.convert import is_type

            result = is_type(left, name)
            return result if op == "-is" else not result
        result, matches = compare(op, left, right)
        if matches is not None:
            self.vars["matches"] = matches
        return result

    def command_expr(self, node: Node) -> Any:
        """A ``command`` node inside an expression: the grammar's reading of ``1..3``."""
        rng = self.range_command(node)
        if rng is not None:
            return rng
        return collapse(self.commands.run(node, [], first=True, ok=[True]))

    def range_command(self, node: Node) -> list[int] | None:
        name_node = node.child_by_field_name("command_name")
        if name_node is None or name_node.type != "command_name":
            return None
        match = re.fullmatch(r"(-?\d+)\.\.(.*)", text(name_node), re.DOTALL)
        if match is None:
            return None
        low = int(match.group(1))
        rest = match.group(2)
        elements = node.child_by_field_name("command_elements")
        if rest:
            high_value = self.expr_text(rest)
        elif elements is not None and len(elements.named_children) == 1:
            high_value = self.expr(elements.named_children[0])
        else:
            raise unsupported(node, "range")
        return make_range(low, to_int(high_value))

    def expr_text(self, source: str) -> Any:
        program = parse(f"({source})")
        return self.chain_value(statements(program)[0])


def method_error(name: str, args: list[Any], exc: Exception) -> PSRuntimeError:
    """A .NET method's exception, as PowerShell wraps it (MethodInvocationException)."""
    if isinstance(exc, FsError):
        return PSRuntimeError(
            f'Exception calling "{name}" with "{len(args)}" argument(s): "{exc.message}"',
            fqid=exc.kind,
            exception_type="System.Management.Automation.MethodInvocationException",
        )
    return PSRuntimeError(
        f'Cannot find an overload for "{name}" and the argument count: "{len(args)}".',
        category="NotSpecified",
        fqid="MethodCountCouldNotFindBest",
        exception_type="System.Management.Automation.MethodException",
    )


def make_range(low: int, high: int) -> list[int]:
    step = 1 if high >= low else -1
    return list(range(low, high + step, step))


def index_value(owner: Any, index: Any) -> Any:
    if isinstance(index, list):
        return [index_value(owner, i) for i in index]
    if isinstance(owner, Hashtable):
        return owner.get(index)
    if isinstance(owner, PSObject):
        return owner.get(to_str(index))
    if isinstance(owner, list | str | bytes):
        i = to_int(index)
        if -len(owner) <= i < len(owner):
            item = owner[i]
            return item if not isinstance(owner, bytes) else int(item)
        return None
    if owner is None:
        raise PSRuntimeError(
            "Cannot index into a null array.", category="InvalidOperation", fqid="NullArray"
        )
    return owner if to_int(index) in (0, -1) else None


def ps_equal(left: Any, right: Any, case: bool = False) -> bool:
    from dr.lab.ps.convert import equal

    return equal(left, right, case)


# -- tree helpers --


def statements(node: Node | None) -> list[Node]:
    if node is None:
        return []
    if node.type == "program":
        lists = [c for c in node.named_children if c.type == "statement_list"]
        return [s for lst in lists for s in statements(lst)]
    if node.type == "statement_list":
        return [c for c in node.named_children if c.type not in ("comment", "empty_statement")]
    return [node]


def _first(node: Node | None, kind: str) -> Node | None:
    if node is None:
        return None
    return next((c for c in node.named_children if c.type == kind), None)


def _script_body(block: Node) -> Node | None:
    """The statements of a script block; anything else in it (param, begin/process/end
    blocks) is outside the subset."""
    body = _first(block, "script_block_body")
    for child in [*block.named_children, *(body.named_children if body else [])]:
        if child.type not in ("script_block_body", "statement_list", "comment"):
            raise unsupported(child)
    return _first(body, "statement_list")


def _block_list(block: Node | None) -> Node | None:
    return _first(block, "statement_list") if block is not None else None


def _unwrap(node: Node) -> Node:
    while node.type in ("unary_expression", "left_assignment_expression") and node.named_children:
        if len(node.named_children) != 1:
            break
        node = node.named_children[0]
    return node


def _is_increment(node: Node) -> bool:
    inner = _unwrap(node)
    if inner.type == "expression_with_unary_operator" and len(inner.named_children) == 1:
        inner = inner.named_children[0]
    return inner.type.endswith(("_increment_expression", "_decrement_expression"))


def _is_type(node: Node) -> bool:
    return _unwrap(node).type == "type_literal"


def _var_name(node: Node) -> str:
    raw = text(node)
    if raw.startswith("${"):
        return raw[2:-1]
    return raw[1:] if raw.startswith(("$", "@")) else raw


def _type_text(node: Node) -> str:
    raw = text(node).strip()
    return raw[1:-1].strip() if raw.startswith("[") else raw


def _exit_code(value: Any) -> int:
    try:
        return to_int(value) if value is not None else 0
    except PSRuntimeError:
        return 0


def _exception_matches(name: str, exc: PSRuntimeError) -> bool:
    wanted = name.lower().removeprefix("system.")
    actual = exc.exception_type.lower().removeprefix("system.")
    general = ("exception", "management.automation.runtimeexception")
    return wanted in general or wanted == actual or actual.endswith("." + wanted)


_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ESCAPES |= {"v": "\v", "e": "\x1b"}


def _unescape(raw: str, here: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "`" and i + 1 < len(raw):
            out.append(_ESCAPES.get(raw[i + 1], raw[i + 1]))
            i += 2
        elif ch == '"' and not here and raw[i + 1 : i + 2] == '"':
            out.append('"')
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _here_body(raw: str) -> str:
    return _here_trim(raw[2:-2])


def _here_trim(body: str) -> str:
    body = re.sub(r"^[ \t]*\r?\n", "", body, count=1)
    return re.sub(r"\r?\n[ \t]*$", "", body, count=1)


_STATEMENTS: dict[str, Callable[[Interpreter, Node], list[Any]]] = {
    "pipeline": Interpreter.pipeline,
    "pipeline_chain": Interpreter.pipeline_chain,
    "if_statement": Interpreter.if_statement,
    "foreach_statement": Interpreter.foreach_statement,
    "for_statement": Interpreter.for_statement,
    "while_statement": Interpreter.while_statement,
    "flow_control_statement": Interpreter.flow_control,
    "try_statement": Interpreter.try_statement,
    "do_statement": Interpreter.do_statement,
    "function_statement": Interpreter.function_statement,
}

_EXPRESSIONS: dict[str, Callable[[Interpreter, Node], Any]] = {
    "unary_expression": lambda i, n: i.expr(n.named_children[0]),
    "variable": Interpreter.variable,
    "string_literal": Interpreter.string,
    "integer_literal": Interpreter.number,
    "real_literal": Interpreter.number,
    "array_expression": Interpreter.array_expression,
    "array_literal_expression": Interpreter.array_literal,
    "hash_literal_expression": Interpreter.hash_literal,
    "parenthesized_expression": Interpreter.parenthesized,
    "sub_expression": Interpreter.sub_expression,
    "script_block_expression": Interpreter.script_block_expr,
    "expression_with_unary_operator": Interpreter.unary,
    "cast_expression": Interpreter.cast_expr,
    "pre_increment_expression": Interpreter.increment,
    "pre_decrement_expression": Interpreter.increment,
    "post_increment_expression": Interpreter.increment,
    "post_decrement_expression": Interpreter.increment,
    "type_literal": Interpreter.type_literal,
    "member_access": Interpreter.member_access,
    "invocation_expression": Interpreter.invocation,
    "element_access": Interpreter.element_access,
    "range_expression": Interpreter.range_expr,
    "comparison_expression": Interpreter.binary,
    "logical_expression": Interpreter.binary,
    "additive_expression": Interpreter.binary,
    "multiplicative_expression": Interpreter.binary,
    "format_expression": Interpreter.binary,
    "command": Interpreter.command_expr,
    "pipeline": Interpreter.chain_value,
    "pipeline_chain": Interpreter.chain_value,
}


def type_of(value: Any) -> str:
    return type_name(value)
