"""The core cmdlets a lab host runs (Microsoft.PowerShell.Core / Utility / Management).

Each takes a bound :class:`~dr.lab.ps.commands.Call` (parameters by their canonical
names, pipeline input in ``call.input``) and yields its output objects. Behaviour follows
the cmdlet reference pages (learn.microsoft.com/powershell/module/microsoft.powershell.*;
the parameter facts are in ``dr/lab/data/cmdlets/core-cmdlets.json``). File-system cmdlets
work on the host's :class:`~dr.lab.ps.fs.FileSystem`: ``-LiteralPath`` never expands
wildcards, ``-Path`` does (``*``, ``?``, ``[ab]``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from dr.lab.ps.commands import Call
from dr.lab.ps.dotnet import format_date
from dr.lab.ps.fs import FsError, LockedError, has_wildcard, wildcard_match
from dr.lab.ps.values import (
    Hashtable,
    PSObject,
    PSRuntimeError,
    ScriptBlock,
    enumerate_value,
    format_output,
    get_member,
    to_bool,
    to_int,
    to_number,
    to_str,
)

__all__ = ["CORE", "exchange_snapin"]

Cmdlet = Callable[[Call], Iterable[Any]]
CORE: dict[str, Cmdlet] = {}


def cmdlet(name: str) -> Callable[[Cmdlet], Cmdlet]:
    def register(fn: Cmdlet) -> Cmdlet:
        CORE[name.lower()] = fn
        return fn

    return register


def _p(call: Call, name: str, default: Any = None) -> Any:
    for key, value in call.params.items():
        if key.lower() == name.lower():
            return value
    return default


def _switch(call: Call, name: str) -> bool:
    return to_bool(_p(call, name, False))


def _interp(call: Call) -> Any:
    assert call.interp is not None
    return call.interp


def _inputs(call: Call, name: str = "InputObject") -> list[Any]:
    given = _p(call, name)
    if given is not None:
        return enumerate_value(given) if call.input == [] else list(call.input)
    return list(call.input)


# --- output ------------------------------------------------------------------------------


@cmdlet("Write-Output")
def write_output(call: Call) -> Iterator[Any]:
    value = _p(call, "InputObject")
    if value is None:
        yield from call.input
    elif _switch(call, "NoEnumerate"):
        yield value
    else:
        yield from enumerate_value(value)


@cmdlet("Write-Host")
def write_host(call: Call) -> Iterator[Any]:
    values = enumerate_value(_p(call, "Object")) or list(call.input)
    separator = to_str(_p(call, "Separator", " "))
    end = "" if _switch(call, "NoNewline") else "\r\n"
    _interp(call).write("stdout", separator.join(to_str(v) for v in values) + end)
    yield from ()


@cmdlet("Write-Error")
def write_error(call: Call) -> Iterator[Any]:
    message = _p(call, "Message")
    if message is None and _p(call, "Exception") is not None:
        message = get_member(_p(call, "Exception"), "Message") or _p(call, "Exception")
    call.error(to_str(message), category=to_str(_p(call, "Category", "NotSpecified")))
    yield from ()


@cmdlet("Write-Warning")
def write_warning(call: Call) -> Iterator[Any]:
    call.warning(to_str(_p(call, "Message")))
    yield from ()


@cmdlet("Write-Verbose")
def write_verbose(call: Call) -> Iterator[Any]:
    yield from ()


@cmdlet("Out-Null")
def out_null(call: Call) -> Iterator[Any]:
    yield from ()


@cmdlet("Out-String")
def out_string(call: Call) -> Iterator[Any]:
    text = "".join(format_output(v) for v in _inputs(call))
    if _switch(call, "Stream"):
        yield from text.replace("\r\n", "\n").rstrip("\n").split("\n")
    else:
        yield text


# --- pipeline cmdlets ----------------------------------------------------------------------


def _run_block(call: Call, block: Any, item: Any) -> list[Any]:
    if not isinstance(block, ScriptBlock):
        raise PSRuntimeError(
            f"Cannot convert '{to_str(block)}' to the type 'System.Management.Automation."
            "ScriptBlock'",
            category="InvalidArgument",
            fqid="ParameterArgumentTransformationError",
        )
    return _interp(call).invoke_block(block, [], dollar=item)


@cmdlet("Where-Object")
def where_object(call: Call) -> Iterator[Any]:
    block = _p(call, "FilterScript")
    prop = _p(call, "Property")
    for item in call.input:
        if block is not None:
            from dr.lab.ps.values import collapse

            if to_bool(collapse(_run_block(call, block, item))):
                yield item
        elif prop is not None and _simple_where(call, item, to_str(prop)):
            yield item


def _simple_where(call: Call, item: Any, prop: str) -> bool:
    from dr.lab.ps.convert import compare

    left = get_member(item, prop)
    for key in call.params:
        op = key.lower()
        if op in _SIMPLE_OPS:
            return bool(compare("-" + op, left, _p(call, "Value"))[0])
    return to_bool(left)


_SIMPLE_OPS = {"eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch"}
_SIMPLE_OPS |= {"contains", "notcontains", "in", "notin", "ceq", "cne"}


@cmdlet("ForEach-Object")
def foreach_object(call: Call) -> Iterator[Any]:
    blocks = enumerate_value(_p(call, "Process"))
    member = _p(call, "MemberName")
    begin, end = _p(call, "Begin"), _p(call, "End")
    if len(blocks) > 1 and begin is None and end is None:
        begin, blocks = blocks[0], blocks[1:2]
        end = blocks[2] if len(enumerate_value(_p(call, "Process"))) > 2 else None
    if begin is not None:
        yield from _run_block(call, begin, None)
    for item in call.input:
        if member is not None:
            yield from enumerate_value(get_member(item, to_str(member)))
        for block in blocks:
            yield from _run_block(call, block, item)
    if end is not None:
        yield from _run_block(call, end, None)


def _property_value(call: Call, item: Any, spec: Any) -> tuple[str, Any]:
    if isinstance(spec, Hashtable):
        name = _hash_get(spec, ("name", "n", "label", "l"))
        expression = _hash_get(spec, ("expression", "e"))
        if isinstance(expression, ScriptBlock):
            from dr.lab.ps.values import collapse

            return to_str(name), collapse(_run_block(call, expression, item))
        return to_str(name or expression), get_member(item, to_str(expression))
    if isinstance(spec, ScriptBlock):
        from dr.lab.ps.values import collapse

        return str(spec).strip(), collapse(_run_block(call, spec, item))
    return to_str(spec), get_member(item, to_str(spec))


def _hash_get(table: Hashtable, names: tuple[str, ...]) -> Any:
    for key in table:
        if to_str(key).lower() in names:
            return table[key]
    return None


@cmdlet("Select-Object")
def select_object(call: Call) -> Iterator[Any]:
    items = list(call.input) or enumerate_value(_p(call, "InputObject"))
    items = _first_last(call, items)
    expand = _p(call, "ExpandProperty")
    props = enumerate_value(_p(call, "Property"))
    for item in items:
        if expand is not None:
            yield from enumerate_value(get_member(item, to_str(expand)))
        elif props:
            yield _selected(call, item, props)
        else:
            yield item


def _first_last(call: Call, items: list[Any]) -> list[Any]:
    skip = to_int(_p(call, "Skip", 0))
    items = items[skip:]
    if _switch(call, "Unique"):
        from dr.lab.ps.convert import equal

        unique: list[Any] = []
        for item in items:
            if not any(equal(item, u, True) for u in unique):
                unique.append(item)
        items = unique
    first, last = _p(call, "First"), _p(call, "Last")
    if first is not None and last is not None:
        return items[: to_int(first)] + items[-to_int(last) :]
    if first is not None:
        return items[: to_int(first)]
    if last is not None:
        return items[-to_int(last) :] if to_int(last) else []
    return items


def _selected(call: Call, item: Any, props: list[Any]) -> PSObject:
    out = PSObject(type_names=("Selected.System.Management.Automation.PSCustomObject",))
    for spec in props:
        if isinstance(spec, str) and has_wildcard(spec) and isinstance(item, PSObject):
            for key, value in item.properties.items():
                if wildcard_match(spec, to_str(key)):
                    out.set(key, value)
            continue
        name, value = _property_value(call, item, spec)
        out.set(name, value)
    out.type_names = ("System.Management.Automation.PSCustomObject",)
    return out


@cmdlet("Sort-Object")
def sort_object(call: Call) -> Iterator[Any]:
    items = list(call.input) or enumerate_value(_p(call, "InputObject"))
    props = enumerate_value(_p(call, "Property"))

    def key(item: Any) -> tuple[Any, ...]:
        values = [_property_value(call, item, p)[1] for p in props] if props else [item]
        return tuple(_sort_key(v) for v in values)

    ordered = sorted(items, key=key, reverse=_switch(call, "Descending"))
    if _switch(call, "Unique"):
        seen: list[Any] = []
        ordered = [x for x in ordered if key(x) not in seen and not seen.append(key(x))]
    yield from ordered


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, float(value))
    if isinstance(value, datetime):
        return (2, value.isoformat())
    return (3, to_str(value).lower())


@cmdlet("Measure-Object")
def measure_object(call: Call) -> Iterator[Any]:
    items = list(call.input) or enumerate_value(_p(call, "InputObject"))
    prop = _p(call, "Property")
    values = [get_member(i, to_str(prop)) if prop is not None else i for i in items]
    numbers = [to_number(v) for v in values if v is not None]
    result = PSObject.of(
        "Microsoft.PowerShell.Commands.GenericMeasureInfo",
        Count=len(values),
        Average=(sum(numbers) / len(numbers)) if _switch(call, "Average") and numbers else None,
        Sum=sum(numbers) if _switch(call, "Sum") else None,
        Maximum=max(numbers) if _switch(call, "Maximum") and numbers else None,
        Minimum=min(numbers) if _switch(call, "Minimum") and numbers else None,
        Property=to_str(prop) if prop is not None else None,
    )
    yield result


@cmdlet("Group-Object")
def group_object(call: Call) -> Iterator[Any]:
    props = enumerate_value(_p(call, "Property"))
    groups: dict[str, list[Any]] = {}
    for item in call.input:
        values = [_property_value(call, item, p)[1] for p in props] if props else [item]
        groups.setdefault(", ".join(to_str(v) for v in values), []).append(item)
    for name, members in groups.items():
        yield PSObject.of(
            "Microsoft.PowerShell.Commands.GroupInfo", Count=len(members), Name=name, Group=members
        )


# --- JSON ---------------------------------------------------------------------------------


@cmdlet("ConvertTo-Json")
def convertto_json(call: Call) -> Iterator[Any]:
    from dr.lab.ps.json_ import to_json

    items = list(call.input)
    value: Any = items if len(items) > 1 else (items[0] if items else _p(call, "InputObject"))
    if not items and isinstance(value, list):
        value = list(value)
    depth = to_int(_p(call, "Depth", 2))
    legacy = _legacy_json(call)
    yield to_json(value, depth, _switch(call, "Compress"), legacy)


def _legacy_json(call: Call) -> bool:
    version = call.host.ps_version or "5.1"
    return int(version.split(".")[0]) < 6


@cmdlet("ConvertFrom-Json")
def convertfrom_json(call: Call) -> Iterator[Any]:
    from dr.lab.ps.json_ import from_json

    text = "\n".join(to_str(v) for v in _inputs(call))
    try:
        value = from_json(text)
    except json.JSONDecodeError as exc:
        raise PSRuntimeError(
            f"Invalid JSON primitive: {text[exc.pos : exc.pos + 20]}.",
            category="NotSpecified",
            fqid="System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand",
        ) from None
    yield from enumerate_value(value) if isinstance(value, list) else [value]


# --- time ---------------------------------------------------------------------------------


@cmdlet("Get-Date")
def get_date(call: Call) -> Iterator[Any]:
    from dr.lab.ps.convert import cast

    given = _p(call, "Date")
    value = cast("datetime", given) if given is not None else _interp(call).now()
    fmt = _p(call, "Format")
    uformat = _p(call, "UFormat")
    if fmt is not None:
        yield format_date(value, to_str(fmt))
    elif uformat is not None:
        yield value.strftime(to_str(uformat))
    else:
        yield value


@cmdlet("Start-Sleep")
def start_sleep(call: Call) -> Iterator[Any]:
    seconds = _p(call, "Seconds")
    millis = _p(call, "Milliseconds")
    duration = float(to_number(seconds)) if seconds is not None else 0.0
    duration += float(to_number(millis)) / 1000 if millis is not None else 0.0
    _interp(call).sleep(duration)
    yield from ()


# --- snap-ins -----------------------------------------------------------------------------


def exchange_snapin(version: int | None) -> str | None:
    """The snap-in that adds the Exchange cmdlets on ``version`` (None before 2007); the
    names and their basis are in ``dr/lab/data/cmdlets/exchange-2007.json``."""
    if version is None or version < 2007:
        return None
    from dr.lab.ps.signatures import exchange_snapin as by_version

    return by_version(version)


@cmdlet("Add-PSSnapin")
def add_pssnapin(call: Call) -> Iterator[Any]:
    interp = _interp(call)
    registered = exchange_snapin(call.host.exchange_version)
    for name in (to_str(n) for n in enumerate_value(_p(call, "Name"))):
        if registered is None:
            major = (call.host.ps_version or "2.0").split(".")[0]
            call.error(
                f"No snap-ins have been registered for Windows PowerShell version {major}.",
                category="InvalidArgument",
                target=name,
            )
        elif name.lower() != registered.lower():
            call.error(
                f"The Windows PowerShell snap-in '{name}' is not installed on this computer.",
                category="InvalidArgument",
                target=name,
            )
        elif registered.lower() not in (s.lower() for s in interp.snapins):
            interp.snapins.append(registered)
    yield from ()


@cmdlet("Get-PSSnapin")
def get_pssnapin(call: Call) -> Iterator[Any]:
    names = ["Microsoft.PowerShell.Core", *_interp(call).snapins]
    if _switch(call, "Registered"):
        found = exchange_snapin(call.host.exchange_version)
        names = [found] if found else []
    wanted = [to_str(n) for n in enumerate_value(_p(call, "Name"))]
    for name in names:
        if not wanted or any(wildcard_match(w, name) for w in wanted):
            yield PSObject.of("System.Management.Automation.PSSnapInInfo", Name=name)


# --- objects ------------------------------------------------------------------------------


_CREDENTIAL = ("pscredential", "system.management.automation.pscredential")


@cmdlet("ConvertTo-SecureString")
def convert_to_secure_string(call: Call) -> Iterator[Any]:
    """``ConvertTo-SecureString TEXT -AsPlainText -Force`` (the only form the step library
    uses): plain text needs ``-Force`` as well ("The system cannot protect plain text input"
    without it, ConvertTo-SecureString's help). The text is kept, never printed."""
    from dr.lab.ps.interp import script_terminating

    text = _p(call, "String")
    if _switch(call, "AsPlainText") and not _switch(call, "Force"):
        raise script_terminating(PSRuntimeError(
            "ConvertTo-SecureString: The system cannot protect plain text input. To suppress "
            "this warning and convert the plain text to a SecureString, reissue the command "
            "specifying the Force parameter.", category="InvalidArgument",
            fqid="ImportSecureString_InvalidArgument",
        ))  # fmt: skip
    if not _switch(call, "AsPlainText"):
        raise script_terminating(PSRuntimeError(
            "dr lab: ConvertTo-SecureString is supported only with -AsPlainText -Force",
            fqid="DrLabUnsupported",
        ))  # fmt: skip
    secure = PSObject.of("System.Security.SecureString", Length=len(to_str(text)))
    secure.hidden = to_str(text)  # type: ignore[attr-defined]
    yield secure


def _credential(call: Call) -> PSObject:
    """``New-Object System.Management.Automation.PSCredential($user, $secure)``: a user name
    and a SecureString (PSCredential's constructor, learn.microsoft.com/dotnet/api/
    system.management.automation.pscredential.-ctor)."""
    from dr.lab.ps.interp import script_terminating

    args = enumerate_value(_p(call, "ArgumentList"))
    secure = args[1] if len(args) == 2 else None
    if not (isinstance(secure, PSObject) and "System.Security.SecureString" in secure.type_names):
        raise script_terminating(PSRuntimeError(
            'Cannot find an overload for "PSCredential" and the argument count: '
            f'"{len(args)}".', category="InvalidOperation",
            fqid="ConstructorInvokedThrowException,Microsoft.PowerShell.Commands.NewObjectCommand",
        ))  # fmt: skip
    found = PSObject.of(
        "System.Management.Automation.PSCredential", UserName=to_str(args[0]), Password=args[1]
    )
    return found


@cmdlet("New-Object")
def new_object(call: Call) -> Iterator[Any]:
    type_name = to_str(_p(call, "TypeName")).lower()
    if type_name in _CREDENTIAL:
        yield _credential(call)
        return
    if type_name not in ("psobject", "system.management.automation.psobject", "pscustomobject"):
        from dr.lab.ps.interp import script_terminating

        raise script_terminating(
            PSRuntimeError(
                f"dr lab: New-Object {_p(call, 'TypeName')} is not supported (only PSObject and "
                "PSCredential)",
                fqid="DrLabUnsupported",
            )
        )
    props = _p(call, "Property")
    obj = PSObject()
    if isinstance(props, Hashtable):
        for key, value in props.items():
            obj.set(to_str(key), value)
    yield obj


# --- services -----------------------------------------------------------------------------


def _service_cmdlet(name: str) -> Cmdlet:
    def run(call: Call) -> Iterator[Any]:
        impl = call.host.cmdlet(name) if hasattr(call.host, "cmdlet") else None
        if impl is not None:
            yield from impl(call)
            return
        for service in enumerate_value(_p(call, "Name")) or enumerate_value(
            _p(call, "InputObject")
        ):
            call.error(
                f"Cannot find any service with service name '{to_str(service)}'.",
                category="ObjectNotFound",
                target=to_str(service),
            )

    return run


for _name in ("Get-Service", "Start-Service", "Stop-Service", "Restart-Service"):
    CORE[_name.lower()] = _service_cmdlet(_name)


from dr.lab.ps import items as _items  # noqa: E402 - registers the file-system cmdlets

_ = _items
__all__ += ["FsError", "LockedError"]
