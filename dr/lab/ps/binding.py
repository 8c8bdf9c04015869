"""Binding a cmdlet call's arguments the way PowerShell's parameter binder does.

:func:`bind` takes a cmdlet name and its arguments as written and returns the parameters it
binds and the parameter set it resolves, or raises :class:`BindError` with PowerShell's own
message. The rules, from Microsoft's conceptual help:

- about_Parameters: parameter names are case-insensitive, and a name may be shortened to any
  prefix that identifies one parameter (``-LiteralP``); an alias binds like the name. A prefix
  that fits several parameters is an error naming them. A switch is present alone (``-Force``)
  or given a value with a colon (``-Force:$false``); any other parameter needs a value.
  Positional parameters take the unnamed arguments in position order.
- about_Parameter_Sets: every named parameter must be in the chosen set; when the named
  parameters fit no set, or several sets with none preferred, the set "cannot be resolved".
  The default set wins a tie; mandatory parameters of the chosen set must be present (a
  non-interactive host, as dr's are, reports them missing instead of prompting).
- about_CommonParameters: the common parameters of the host's PowerShell version are in
  every set (2.0 has eight; PipelineVariable is 4.0; InformationAction/-Variable are 5.0).
- about_Command_Precedence: aliases resolve before cmdlets (:func:`canonical_name`).

A cmdlet or parameter the host's PowerShell or Exchange version lacks is unknown there, as it
would be on the real host: ``ConvertTo-Json`` on 2.0 is "not recognized", ``Add-Computer
-Restart`` on 2.0 is "A parameter cannot be found". Exchange cmdlets exist only on an Exchange
host of a version the cmdlet's page lists, and only once the version's snap-in (or the
Exchange Management Shell, ``"exchange-shell"``) is in ``snapins`` when the caller passes it.

How arguments are given (:class:`Arg`): a parameter written alone is ``Arg("Path", SWITCH)``
and the argument after it ``Arg(None, value)``; the binder pairs them when the parameter is
not a switch (``-Path C:\\x``), as PowerShell does. ``-Name:value`` is
``Arg("Name", value, colon=True)``. Pipeline input: ``pipeline`` names the parameters the
pipeline binds (``{"Identity"}``), or ``{"*"}`` for "objects arrive, bind them where they fit";
such parameters count as present (value :data:`FROM_PIPELINE`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from dr.lab.ps.signatures import (
    EXCHANGE_SHELL_VERSIONS,
    Param,
    ParamSet,
    Signature,
    exchange_cmdlet_names,
    exchange_snapin,
    lookup_record,
    signature,
)

__all__ = [
    "FROM_PIPELINE",
    "SWITCH",
    "Arg",
    "BindError",
    "Bound",
    "bind",
    "canonical_name",
    "known",
]


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


SWITCH: Final = _Marker("SWITCH")  # a parameter written alone: -Force
FROM_PIPELINE: Final = _Marker("FROM_PIPELINE")  # bound from pipeline input
EXCHANGE_SHELL: Final = "exchange-shell"  # the Exchange Management Shell (or a remote session)

# Default aliases of Windows PowerShell 5.1 for the cmdlets dr uses (Get-Alias on a fresh
# host; each cmdlet's PowerShell-Docs page lists them under ALIASES). about_Command_Precedence:
# an alias is resolved before functions and cmdlets.
ALIASES: dict[str, str] = {
    "gci": "Get-ChildItem", "ls": "Get-ChildItem", "dir": "Get-ChildItem",
    "?": "Where-Object", "where": "Where-Object",
    "%": "ForEach-Object", "foreach": "ForEach-Object",
    "select": "Select-Object",
    "echo": "Write-Output", "write": "Write-Output",
    "cd": "Set-Location", "chdir": "Set-Location", "sl": "Set-Location",
    "cp": "Copy-Item", "copy": "Copy-Item", "cpi": "Copy-Item",
    "mv": "Move-Item", "move": "Move-Item", "mi": "Move-Item",
    "rm": "Remove-Item", "del": "Remove-Item", "erase": "Remove-Item", "rd": "Remove-Item",
    "rmdir": "Remove-Item", "ri": "Remove-Item",
    "ni": "New-Item",
    "gc": "Get-Content", "cat": "Get-Content", "type": "Get-Content",
    "sc": "Set-Content",
    "sleep": "Start-Sleep",
    "gwmi": "Get-WmiObject",
    "gdr": "Get-PSDrive",
    "sls": "Select-String",
    "asnp": "Add-PSSnapin",
    "gsv": "Get-Service",
    "gcim": "Get-CimInstance",
    "gi": "Get-Item",
    "sort": "Sort-Object",
    "measure": "Measure-Object",
    "sasv": "Start-Service",
    "spsv": "Stop-Service",
}  # fmt: skip


@dataclass(frozen=True)
class Arg:
    """One argument as written: ``name`` None for a positional value."""

    name: str | None
    value: Any
    colon: bool = False


@dataclass(frozen=True)
class Bound:
    cmdlet: str
    params: dict[str, Any]
    parameter_set: str | None


class BindError(Exception):
    """PowerShell's binding error: ``message`` is its text, ``fqid`` its FullyQualifiedErrorId."""

    def __init__(self, message: str, fqid: str) -> None:
        super().__init__(message)
        self.message = message
        self.fqid = fqid

    def __str__(self) -> str:
        return self.message


# --- names -------------------------------------------------------------------------------


def canonical_name(name: str) -> str | None:
    """The cmdlet ``name`` (or an alias of it) means, properly cased; None if unknown."""
    target = ALIASES.get(name.lower(), name)
    found = lookup_record(target)
    if found is not None:
        return str(found[1]["name"])
    if target.lower() in exchange_cmdlet_names():
        return _unverified_name(target)
    return None


def _unverified_name(name: str) -> str:
    from dr.lab.ps.versions import load

    for item in load("exchange-2007.json")["unverified"]:
        if item["name"].lower() == name.lower():
            return str(item["name"])
    return name


def known(name: str, *, ps_version: str | None, exchange_version: int | None) -> bool:
    """Whether the host has the cmdlet (given its Exchange shell, for Exchange cmdlets)."""
    canon = canonical_name(name)
    if canon is None:
        return False
    return signature(canon, ps_version=ps_version, exchange_version=exchange_version) is not None


def not_recognized(name: str) -> BindError:
    return BindError(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
        "or operable program. Check the spelling of the name, or if a path was included, "
        "verify that the path is correct and try again.",
        "CommandNotFoundException",
    )


def snapin_loaded(exchange_version: int | None, snapins: Iterable[str]) -> bool:
    """Whether ``snapins`` make the Exchange cmdlets of ``exchange_version`` available."""
    if exchange_version not in EXCHANGE_SHELL_VERSIONS:
        return False
    have = {s.lower() for s in snapins}
    wanted = exchange_snapin(exchange_version) or ""
    return EXCHANGE_SHELL in have or wanted.lower() in have


# --- binding -----------------------------------------------------------------------------


def bind(
    name: str,
    args: list[Arg],
    *,
    ps_version: str | None,
    exchange_version: int | None,
    snapins: frozenset[str] | None = None,
    pipeline: set[str] | None = None,
) -> Bound:
    """Bind ``args`` to cmdlet ``name`` on a host with these versions (see module docstring).

    ``snapins`` None: the caller decides whether the Exchange shell is loaded; a set: Exchange
    cmdlets are unknown unless it holds the version's snap-in or ``"exchange-shell"``.
    """
    canon = canonical_name(name)
    sig = None
    if canon is not None:
        sig = signature(canon, ps_version=ps_version, exchange_version=exchange_version)
    no_shell = snapins is not None and not snapin_loaded(exchange_version, snapins)
    if sig is None or (sig.exchange and no_shell):
        raise not_recognized(name)
    return _Binder(sig, pipeline or set()).run(args)


def _fqid(error: str, sig: Signature) -> str:
    return f"{error},{sig.name}"


class _Binder:
    def __init__(self, sig: Signature, pipeline: set[str]) -> None:
        self.sig = sig
        self.pipeline = {p.lower() for p in pipeline}
        self.params = sig.all_params()
        self.named: dict[str, Any] = {}  # canonical name -> value
        self.unchecked: dict[str, Any] = {}  # names an incomplete signature does not know
        self.positional: list[Any] = []

    def fail(self, error: str, message: str) -> BindError:
        return BindError(message, _fqid(error, self.sig))

    def run(self, args: list[Arg]) -> Bound:
        self._take_named(args)
        for name in self._pipeline_names():
            self.named.setdefault(name, FROM_PIPELINE)
        chosen, bound = self._resolve(self._sets_with_named())
        bound.update(self.unchecked)
        return Bound(self.sig.name, bound, chosen.name if chosen else None)

    # named arguments ------------------------------------------------------------------

    def _take_named(self, args: list[Arg]) -> None:
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg.name is None:
                self.positional.append(arg.value)
                continue
            param = self._lookup(arg.name)
            if param is None:  # an incomplete signature: accept the name unchecked
                self.unchecked[arg.name], i = self._value_for(None, arg, args, i)
                continue
            if param.name in self.named:
                raise self.fail(
                    "ParameterAlreadyBound",
                    f"Cannot bind parameter because parameter '{param.name}' is specified more "
                    "than once. To provide multiple values to parameters that can accept "
                    "multiple values, use the array syntax. For example, "
                    '"-parameter value1,value2,value3".',
                )
            self.named[param.name], i = self._value_for(param, arg, args, i)

    def _value_for(self, param: Param | None, arg: Arg, args: list[Arg], i: int) -> tuple[Any, int]:
        if param is not None and param.switch:
            if arg.colon:
                return arg.value, i
            if arg.value is not SWITCH:  # "-Force value": the value is positional
                self.positional.append(arg.value)
            return True, i
        if arg.colon or arg.value is not SWITCH:
            return arg.value, i
        if i < len(args) and args[i].name is None:
            return args[i].value, i + 1
        if param is None:
            return True, i
        raise self.fail(
            "MissingArgument",
            f"Missing an argument for parameter '{param.name}'. Specify a parameter of type "
            f"'{_full_type(param.type)}' and try again.",
        )

    def _lookup(self, written: str) -> Param | None:
        low = written.lower()
        exact = [p for p in self.params if low in (n.lower() for n in p.names())]
        if exact:
            return exact[0]
        matches = [p for p in self.params if any(n.lower().startswith(low) for n in p.names())]
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = " ".join(f"-{p.name}" for p in matches)
            raise self.fail(
                "AmbiguousParameter",
                f"Parameter cannot be processed because the parameter name '{written}' is "
                f"ambiguous. Possible matches include: {shown}.",
            )
        if not self.sig.complete:
            return None
        raise self.fail(
            "NamedParameterNotFound",
            f"A parameter cannot be found that matches parameter name '{written}'.",
        )

    def _pipeline_names(self) -> list[str]:
        out = []
        for name in sorted(self.pipeline - {"*"}):
            param = next((p for p in self.params if p.name.lower() == name), None)
            if param is None or not param.pipeline:
                raise self.fail(
                    "InputObjectNotBound",
                    "The input object cannot be bound to any parameters for the command "
                    "either because the command does not take pipeline input or the input "
                    "and its properties do not match any of the parameters that take pipeline "
                    "input.",
                )
            out.append(param.name)
        return out

    # parameter sets -------------------------------------------------------------------

    def _unresolvable(self) -> BindError:
        return self.fail(
            "AmbiguousParameterSet",
            "Parameter set cannot be resolved using the specified named parameters.",
        )

    def _sets_with_named(self) -> list[ParamSet]:
        if not self.sig.sets:
            return []
        common = {p.name.lower() for p in self.sig.common}
        names = [n for n in self.named if n.lower() not in common]
        sets = [s for s in self.sig.sets if all(s.get(n) for n in names)]
        if not sets:
            raise self._unresolvable()
        return sets

    def _resolve(self, sets: list[ParamSet]) -> tuple[ParamSet | None, dict[str, Any]]:
        if not sets:  # no recorded sets: positional values pass unchecked
            bound = dict(self.named)
            bound.update({f"${i}": v for i, v in enumerate(self.positional)})
            return None, bound
        viable = [(s, b) for s in sets if (b := self._bind_positional(s)) is not None]
        if not viable:
            extra = self.positional[self._max_positional(sets)]
            raise self.fail(
                "PositionalParameterNotFound",
                f"A positional parameter cannot be found that accepts argument '{extra}'.",
            )
        chosen = self._choose(viable)
        missing = self._missing(*chosen)
        if missing:
            raise self.fail(
                "MissingMandatoryParameter",
                "Cannot process command because of one or more missing mandatory parameters: "
                f"{' '.join(missing)}.",
            )
        return chosen

    def _bind_positional(self, pset: ParamSet) -> dict[str, Any] | None:
        bound = dict(self.named)
        slots = sorted(
            (p for p in pset.params if p.position is not None and p.name not in bound),
            key=lambda p: p.position or 0,
        )
        if len(self.positional) > len(slots):
            return None
        for param, value in zip(slots, self.positional, strict=False):
            bound[param.name] = value
        return bound

    def _max_positional(self, sets: list[ParamSet]) -> int:
        most = 0
        for pset in sets:
            slots = [p for p in pset.params if p.position is not None and p.name not in self.named]
            most = max(most, len(slots))
        return min(most, len(self.positional) - 1)

    def _choose(self, viable: list[tuple[ParamSet, dict[str, Any]]]) -> tuple[ParamSet, dict]:
        """One set: the only one left, else the only satisfied one, else the default."""
        if len(viable) == 1:
            return viable[0]
        viable = [v for v in viable if self._types_fit(*v)] or viable
        complete = [v for v in viable if not self._missing(*v)]
        pool = complete or viable
        if len(pool) == 1:
            return pool[0]
        default = [v for v in pool if v[0].default]
        if default:
            return default[0]
        if complete and (self._no_default_recorded() or "*" in self.pipeline):
            # Exchange pages do not say which set is the default, and pipeline input is bound
            # by type at run time: several satisfied sets are not an error the data can prove.
            return complete[0]
        raise self._unresolvable()

    def _no_default_recorded(self) -> bool:
        return not any(s.default for s in self.sig.sets)

    def _types_fit(self, pset: ParamSet, bound: dict[str, Any]) -> bool:
        for name, value in bound.items():
            param = pset.get(name)
            if param and _is_scriptblock(value) and "scriptblock" not in param.type.lower():
                return False
        return True

    def _missing(self, pset: ParamSet, bound: dict[str, Any]) -> list[str]:
        missing = [p for p in pset.params if p.required and p.name not in bound]
        if "*" in self.pipeline:
            missing = [p for p in missing if not p.pipeline]
        return [p.name for p in missing]


def _is_scriptblock(value: Any) -> bool:
    return type(value).__name__ in ("ScriptBlock", "ScriptBlockValue")


_SYSTEM_TYPES = {"string", "int32", "int64", "uint32", "int16", "object", "boolean", "datetime"}


def _full_type(text: str) -> str:
    """The type as PowerShell names it in errors: ``String[]`` → ``System.String[]``."""
    base = text.rstrip("[]")
    if base.lower() in _SYSTEM_TYPES and "." not in base:
        return "System." + base[0].upper() + base[1:] + text[len(base) :]
    if base.lower() == "int":
        return "System.Int32" + text[len(base) :]
    return text
