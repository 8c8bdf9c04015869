"""Running one ``command`` node: cmdlets (core and the host's), natives, script blocks.

Resolution follows PowerShell's order for the names the step library uses: an alias
(``echo``, ``%``, ``?``...), then a cmdlet (core or the host's; every call is bound by
:func:`dr.lab.ps.binding.bind` with the host's PowerShell and Exchange versions), then a
native program (``host.native``; checked first by :func:`dr.lab.ps.tools.check`). A native's
stdout lines become string output and its exit code ``$LASTEXITCODE``; ``$?`` is true when
it is 0 (``about_Automatic_Variables``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dr.lab.ps.fs import FsError
from dr.lab.ps.parse import Node, text
from dr.lab.ps.values import (
    PSObject,
    PSRuntimeError,
    ScriptBlock,
    enumerate_value,
    error_record,
    format_output,
    to_str,
)

if TYPE_CHECKING:
    from dr.lab.ps.interp import Interpreter

__all__ = ["Call", "Commands", "NativeResult", "not_recognized"]

ALIASES = {
    "echo": "Write-Output",
    "write": "Write-Output",
    "%": "ForEach-Object",
    "foreach": "ForEach-Object",
    "?": "Where-Object",
    "where": "Where-Object",
    "select": "Select-Object",
    "sort": "Sort-Object",
    "measure": "Measure-Object",
    "gci": "Get-ChildItem",
    "ls": "Get-ChildItem",
    "dir": "Get-ChildItem",
    "cd": "Set-Location",
    "sl": "Set-Location",
    "cat": "Get-Content",
    "gc": "Get-Content",
    "type": "Get-Content",
    "copy": "Copy-Item",
    "cp": "Copy-Item",
    "move": "Move-Item",
    "mv": "Move-Item",
    "del": "Remove-Item",
    "rm": "Remove-Item",
    "erase": "Remove-Item",
    "rd": "Remove-Item",
    "ren": "Rename-Item",
    "md": "New-Item",
    "sleep": "Start-Sleep",
    "gi": "Get-Item",
}

_COMMON = {
    "erroraction",
    "warningaction",
    "errorvariable",
    "warningvariable",
    "outvariable",
    "outbuffer",
    "verbose",
    "debug",
    "informationaction",
    "informationvariable",
    "pipelinevariable",
}


@dataclass
class NativeResult:
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


@dataclass
class Call:
    """One bound cmdlet call, as a cmdlet implementation receives it."""

    name: str
    params: dict[str, Any]
    input: list[Any]
    host: Any
    parameter_set: str | None = None
    interp: Interpreter | None = field(default=None, repr=False)
    failed: bool = False
    error_action: str = "Continue"

    def error(self, message: str, *, category: str = "NotSpecified", target: str = "") -> None:
        """A non-terminating error (``-ErrorAction`` decides what becomes of it)."""
        self.failed = True
        exc = PSRuntimeError(message, category=category, fqid=category, target=target)
        exc.command = self.name  # type: ignore[attr-defined]
        action = self.error_action.lower()
        if action == "stop":
            from dr.lab.ps.interp import script_terminating

            raise script_terminating(exc)
        assert self.interp is not None
        if action in ("silentlycontinue", "ignore"):
            if action != "ignore":
                self.interp.vars["error"].insert(0, error_record(exc))
            return
        self.interp.report(exc)

    def warning(self, message: str) -> None:
        assert self.interp is not None
        if self.params.get("WarningAction", "").lower() not in ("silentlycontinue", "ignore"):
            self.interp.clixml("warning", message)


def not_recognized(name: str) -> PSRuntimeError:
    exc = PSRuntimeError(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
        "or operable program. Check the spelling of the name, or if a path was included, verify "
        "that the path is correct and try again.",
        category="ObjectNotFound",
        fqid="CommandNotFoundException",
        target=name,
        exception_type="System.Management.Automation.CommandNotFoundException",
    )
    exc.command = name
    return exc


@dataclass
class _Parts:
    """A command's elements: arguments and redirections, in order."""

    args: list[tuple[str | None, Any, bool, str]] = field(default_factory=list)
    redirects: list[tuple[str, Any]] = field(default_factory=list)


class Commands:
    def __init__(self, interp: Interpreter) -> None:
        self.interp = interp

    # -- the command node --

    def run(self, node: Node, items: list[Any], *, first: bool, ok: list[bool]) -> list[Any]:
        rng = self.interp.range_command(node) if first else None
        if rng is not None:
            return rng
        operator = next((c for c in node.children if c.type == "command_invocation_operator"), None)
        if operator is not None and text(operator).strip() != "&":
            from dr.lab.ps.interp import unsupported

            raise unsupported(node, "dot-sourcing")
        from dr.lab.ps.interp import contained

        with contained():
            name = self._name(node)
            parts = self._elements(node)
            out, stderr_items = self._dispatch(name, parts, items, ok, node)
            return self._redirect(parts, out, stderr_items, ok)

    def _name(self, node: Node) -> Any:
        name_node = node.child_by_field_name("command_name")
        if name_node is None:
            from dr.lab.ps.interp import unsupported

            raise unsupported(node, "command")
        if name_node.type == "command_name":
            return text(name_node)
        inner = name_node.named_children[0] if name_node.named_children else name_node
        if inner.type == "command_name":
            return text(inner)
        if inner.type == "path_command_name":
            parts = inner.named_children
            if len(parts) == 1 and parts[0].type == "variable":
                return self.interp.expr(parts[0])
            if not parts:
                return text(inner)
            from dr.lab.ps.interp import unsupported

            raise unsupported(inner, "command name")
        return self.interp.expr(inner)

    def _elements(self, node: Node) -> _Parts:
        parts = _Parts()
        elements = node.child_by_field_name("command_elements")
        colon = False
        for child in elements.named_children if elements is not None else []:
            if child.type == "command_argument_sep":
                colon = colon or ":" in text(child)
                continue
            if child.type == "redirection":
                parts.redirects.append(self._redirection(child))
            elif child.type == "command_parameter":
                raw = text(child)
                colon = raw.endswith(":")
                parts.args.append((raw[1:].rstrip(":"), _SWITCH, False, raw.rstrip(":")))
                continue
            elif colon and parts.args and parts.args[-1][1] is _SWITCH:
                name, _, _, raw = parts.args.pop()
                parts.args.append((name, self._value(child), True, raw))
            else:
                parts.args.append((None, self._value(child), False, text(child)))
            colon = False
        return parts

    def _value(self, node: Node) -> Any:
        if node.type == "generic_token":
            return _bareword(text(node))
        if node.type == "bareword_argument_list":  # Select-Object Name, Mounted: an array
            return [self._value(c) for c in node.named_children]
        if node.type == "argument_list":
            # ``New-Object Type($a, $b)``: the grammar reads ``($a, $b)`` as a call's argument
            # list; PowerShell in argument mode makes it the next argument, an array
            # (about_Parsing: a parenthesis starts a new argument's expression).
            inner = node.named_children[0] if node.named_children else None
            if inner is None:
                return []
            return [self.interp.expr(c.named_children[0]) for c in inner.named_children]
        if node.type == "concatenated_command_argument":
            return "".join(
                _bareword(text(c)) if c.type == "generic_token" else to_str(self.interp.expr(c))
                for c in node.named_children
            )
        return self.interp.expr(node)

    def _redirection(self, node: Node) -> tuple[str, Any]:
        operator = text(node.named_children[0]).strip()
        if len(node.named_children) == 1:
            return operator, None
        target = node.named_children[1]
        inner = [c for c in target.named_children if c.type != "command_argument_sep"]
        value = self._value(inner[0]) if inner else self._value(target)
        return operator, value

    def redirect_expression(self, node: Node, items: list[Any], ok: list[bool]) -> list[Any]:
        parts = _Parts(redirects=[self._redirection(r) for r in node.named_children])
        return self._redirect(parts, items, [], ok)

    # -- dispatch --

    def _dispatch(
        self, name: Any, parts: _Parts, items: list[Any], ok: list[bool], node: Node
    ) -> tuple[list[Any], list[Any]]:
        if isinstance(name, ScriptBlock):
            values = [v for _, v, _, _ in parts.args]
            return self.interp.invoke_block(name, values), []
        command = to_str(name)
        function = self.interp.functions.get(command.lower())
        if function is not None:
            return self.interp.call_function(function, parts.args, items), []
        canonical = ALIASES.get(command.lower(), command)
        if self._is_cmdlet(canonical):
            piped = not node_is_first(node)
            return self._run_cmdlet(canonical, parts, items, ok, piped=piped), []
        return self._run_native(command, parts, items, ok)

    def _is_cmdlet(self, name: str) -> bool:
        """A cmdlet name (core, the host's, or one the binder knows) rather than a program."""
        from dr.lab.ps import binding
        from dr.lab.ps.core import CORE

        if "\\" in name or "/" in name or "." in name:
            return False
        if name.lower() in CORE or binding.canonical_name(name) is not None:
            return True
        host = self.interp.host
        if hasattr(host, "cmdlet") and host.cmdlet(name) is not None:
            return True
        verb_noun = re.fullmatch(r"[A-Za-z]+-[A-Za-z0-9]+", name) is not None
        return verb_noun and self._native_impl(name) is None

    def _implementation(self, cmdlet: str) -> Any:
        from dr.lab.ps.core import CORE

        core = CORE.get(cmdlet.lower())
        if core is not None:
            return core
        host = self.interp.host
        impl = host.cmdlet(cmdlet) if hasattr(host, "cmdlet") else None
        if impl is None:
            raise _lab_lacks(cmdlet)
        return impl

    def _run_cmdlet(
        self, name: str, parts: _Parts, items: list[Any], ok: list[bool], *, piped: bool
    ) -> list[Any]:
        bound = self._bind(name, parts, piped)
        params = {k: v for k, v in bound.params.items() if k.lower() not in _COMMON}
        params = {k: v for k, v in params.items() if not _from_pipeline(v)}
        action = self._error_action(bound.params)
        impl = self._implementation(bound.cmdlet)
        call = Call(bound.cmdlet, params, list(items), self.interp.host, bound.parameter_set)
        call.interp, call.error_action = self.interp, action
        warning = to_str(bound.params.get("WarningAction", ""))
        if warning:
            call.params["WarningAction"] = warning
        try:
            out = list(impl(call))
        except FsError as exc:
            raise PSRuntimeError(
                exc.message, fqid=exc.kind, target=exc.path, command=bound.cmdlet
            ) from None
        except PSRuntimeError as exc:
            if not exc.command:
                exc.command = bound.cmdlet
            if action.lower() == "stop":
                exc.script_terminating = True
            raise
        if call.failed:
            ok[0] = False
        return out

    def _bind(self, name: str, parts: _Parts, piped: bool) -> Any:
        from dr.lab.ps import binding

        args = [
            binding.Arg(n, binding.SWITCH if v is _SWITCH else v, colon)
            for n, v, colon, _ in parts.args
        ]
        host = self.interp.host
        snapins = set(self.interp.snapins)
        version = getattr(host, "exchange_version", None)
        if version is not None and version >= 2013 and getattr(host, "exchange_shell", True):
            snapins.add(binding.EXCHANGE_SHELL)  # 2013+: the host's remote Exchange shell
        try:
            return binding.bind(
                name,
                args,
                ps_version=host.ps_version,
                exchange_version=version,
                snapins=frozenset(snapins),
                pipeline={"*"} if piped else None,
            )
        except binding.BindError as exc:
            if exc.fqid == "CommandNotFoundException":
                raise not_recognized(name) from None
            raise PSRuntimeError(
                exc.message,
                category="InvalidArgument",
                fqid=exc.fqid,
                exception_type="System.Management.Automation.ParameterBindingException",
                command=name,
            ) from None

    def _error_action(self, params: dict[str, Any]) -> str:
        for key, value in params.items():
            if key.lower() == "erroraction":
                return to_str(value)
        return to_str(self.interp.vars.get("erroractionpreference") or "Continue")

    # -- natives --

    def _native_impl(self, name: str) -> Any:
        base = re.split(r"[\\/]", name)[-1].lower()
        base = base[:-4] if base.endswith(".exe") else base
        host = self.interp.host
        return host.native(base) if hasattr(host, "native") else None

    def _run_native(
        self, command: str, parts: _Parts, items: list[Any], ok: list[bool]
    ) -> tuple[list[Any], list[Any]]:
        impl = self._native_impl(command)
        found = getattr(self.interp.host, "program_found", lambda _: True)
        if impl is None or not found(command):
            raise not_recognized(command)
        argv = native_argv(parts.args)
        stdin = "".join(format_output(v) for v in items).encode()
        tool = re.split(r"[\\/]", command)[-1].lower().removesuffix(".exe")
        result = self._native_call(tool, impl, argv, stdin)
        self.interp.vars["lastexitcode"] = result.exit_code
        ok[0] = result.exit_code == 0
        stdout_lines = _lines(result.stdout)
        return stdout_lines, _lines(result.stderr)

    def _native_call(self, tool: str, impl: Any, argv: list[str], stdin: bytes) -> NativeResult:
        from dr.lab.ps import tools

        try:
            tools.check(tool, argv, self.interp.host)
        except tools.ToolUsageError as exc:
            return NativeResult(stdout=exc.text, exit_code=exc.exit_code)
        host = self.interp.host
        if hasattr(host, "native_cwd"):  # a native runs in the script's current location
            host.native_cwd = self.interp.cwd
        result = impl(argv, host, stdin)
        return result if isinstance(result, NativeResult) else NativeResult(*result)

    # -- redirections --

    def _redirect(
        self, parts: _Parts, out: list[Any], errors: list[str], ok: list[bool]
    ) -> list[Any]:
        merged = False
        for operator, target in parts.redirects:
            stream = operator[0] if operator[0] in "123456*" else "1"
            if operator.endswith("&1"):
                merged = True
                continue
            if target is None or (isinstance(target, str) and target.lower() == "$null"):
                if stream in ("1", "*"):
                    out = []
                if stream in ("2", "*"):
                    errors = []
                continue
            self._to_file(operator, stream, target, out, errors)
            out = [] if stream in ("1", "*") else out
            errors = [] if stream in ("2", "*") else errors
        if merged:
            return out + [_stderr_record(line) for line in errors]
        for line in errors:
            self.interp.write("stderr", line + "\r\n")
        return out

    def _to_file(
        self, operator: str, stream: str, target: Any, out: list[Any], errors: list[str]
    ) -> None:
        values = (out if stream in ("1", "*") else []) + (errors if stream in ("2", "*") else [])
        body = "".join(format_output(v) for v in values)
        fs = self.interp.host.fs
        path = fs.full(to_str(target), self.interp.cwd)
        append = ">>" in operator
        data = body.encode("utf-16-le")
        if not (append and fs.exists(path)):
            data = b"\xff\xfe" + data
        fs.write_bytes(path, data, append=append)


_SWITCH = object()
SWITCH_ARG = _SWITCH  # a parameter written without a value (-Force)


def node_is_first(node: Node) -> bool:
    """Whether a command is the first element of its pipeline (nothing piped into it)."""
    parent = node.parent
    if parent is None or parent.type != "pipeline_chain":
        return True
    return parent.named_children[0].id == node.id


def _from_pipeline(value: Any) -> bool:
    from dr.lab.ps import binding

    return value is binding.FROM_PIPELINE


def _lab_lacks(name: str) -> PSRuntimeError:
    error = PSRuntimeError(
        f"dr lab: the cmdlet {name} is not implemented by this lab host", fqid="DrLabUnsupported"
    )
    error.script_terminating = True  # type: ignore[attr-defined]
    return error


def _bareword(raw: str) -> str:
    return re.sub(r"`(.)", r"\1", raw)


def native_argv(args: list[tuple[str | None, Any, bool, str]]) -> list[str]:
    """Arguments as PowerShell passes them to a program: arrays spread, $null dropped."""
    argv: list[str] = []
    for name, value, _colon, raw in args:
        if name is not None and value is _SWITCH:
            argv.append(raw)
        elif name is not None:
            argv.append(raw + ":" + to_str(value))
        else:
            argv.extend(to_str(v) for v in enumerate_value(value))
    return argv


def _lines(output: str) -> list[str]:
    if not output:
        return []
    return output.replace("\r\n", "\n").rstrip("\n").split("\n")


def _stderr_record(line: str) -> PSObject:
    record = PSObject.of(
        "System.Management.Automation.ErrorRecord",
        Exception=PSObject.of("System.Management.Automation.RemoteException", Message=line),
    )
    record.text = line
    return record
