"""PowerShell values in Python: PSObject, hashtables, and PowerShell's conversions.

Arrays are Python lists, ``$null`` is None, Int32/Int64 are int, Double is float,
``[datetime]`` is datetime and ``[guid]`` is uuid.UUID. Conversions follow the language
specification's rules where the step library depends on them: ``"$x"`` of an array joins
with spaces, ``$true`` prints as ``True``, a number parses from a string on the right of an
operator whose left side is a number, an empty array is false and a one-item array is as
true as its item.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "ErrorRecord",
    "Hashtable",
    "PSObject",
    "PSRuntimeError",
    "ScriptBlock",
    "enumerate_value",
    "format_output",
    "get_member",
    "to_bool",
    "to_int",
    "to_number",
    "to_str",
    "type_name",
]


class PSRuntimeError(Exception):
    """A terminating error: stops the script unless a try/catch is around it."""

    def __init__(
        self,
        message: str,
        *,
        category: str = "NotSpecified",
        fqid: str = "RuntimeException",
        target: str = "",
        exception_type: str = "System.Management.Automation.RuntimeException",
        value: Any = None,
        command: str = "",
        script_terminating: bool = False,
    ) -> None:
        super().__init__(message)
        self.command = command  # the cmdlet that failed: its errors print as "Cmdlet : text"
        self.script_terminating = script_terminating
        self.partial: list[Any] = []  # output written before the error (see dr.lab.ps.interp)
        self.message, self.category, self.fqid, self.target = message, category, fqid, target
        self.exception_type = exception_type
        self.value = value  # what `throw` threw, when it was not a string


class Hashtable(MutableMapping[str, Any]):
    """``@{...}``: case-insensitive keys, insertion order kept."""

    def __init__(self, items: Iterable[tuple[Any, Any]] = ()) -> None:
        self._data: dict[Any, tuple[Any, Any]] = {}
        for key, value in items:
            self[key] = value

    @staticmethod
    def _key(key: Any) -> Any:
        return key.lower() if isinstance(key, str) else key

    def __getitem__(self, key: Any) -> Any:
        return self._data[self._key(key)][1]

    def __setitem__(self, key: Any, value: Any) -> None:
        old = self._data.get(self._key(key))
        self._data[self._key(key)] = (old[0] if old else key, value)

    def __delitem__(self, key: Any) -> None:
        del self._data[self._key(key)]

    def __iter__(self) -> Iterator[Any]:
        return (k for k, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return self._key(key) in self._data

    def __repr__(self) -> str:
        return f"Hashtable({dict(self.items())!r})"


@dataclass
class PSObject:
    """A property bag (PSCustomObject) with a type name, case-insensitive properties."""

    properties: Hashtable = field(default_factory=Hashtable)
    type_names: tuple[str, ...] = ("System.Management.Automation.PSCustomObject",)
    text: str | None = None  # what "$obj" gives, when not the @{a=1} form

    @classmethod
    def of(cls, type_name: str | None = None, **props: Any) -> PSObject:
        names = (type_name,) if type_name else cls.__dataclass_fields__["type_names"].default
        return cls(Hashtable(props.items()), names)

    def get(self, name: str) -> Any:
        return self.properties.get(name)

    def has(self, name: str) -> bool:
        return name in self.properties

    def set(self, name: str, value: Any) -> None:
        self.properties[name] = value


@dataclass
class ScriptBlock:
    """``{ ... }``: the parsed block and the text it came from."""

    node: Any
    text: str

    def __str__(self) -> str:
        return self.text[1:-1] if self.text.startswith("{") else self.text


def error_record(exc: PSRuntimeError) -> PSObject:
    """``$_`` in a catch block: ``.Exception.Message``, ``.FullyQualifiedErrorId``..."""
    exception = PSObject.of(exc.exception_type, Message=exc.message)
    exception.text = exc.message
    record = PSObject.of(
        "System.Management.Automation.ErrorRecord",
        Exception=exception,
        FullyQualifiedErrorId=exc.fqid,
        CategoryInfo=PSObject.of(None, Category=exc.category, Reason=exc.exception_type),
        TargetObject=exc.value if exc.value is not None else exc.target or None,
    )
    record.text = exc.message
    return record


ErrorRecord = error_record


def type_name(value: Any) -> str:
    """The .NET type name PowerShell would report."""
    if value is None:
        return "null"
    table = (
        (bool, "System.Boolean"),
        (int, "System.Int32"),
        (float, "System.Double"),
        (str, "System.String"),
        (list, "System.Object[]"),
        (Hashtable, "System.Collections.Hashtable"),
        (datetime, "System.DateTime"),
        (uuid.UUID, "System.Guid"),
        (ScriptBlock, "System.Management.Automation.ScriptBlock"),
        (bytes, "System.Byte[]"),
    )
    if isinstance(value, PSObject):
        return value.type_names[0]
    for py, name in table:
        if isinstance(value, py):
            return name if not (py is int and abs(value) > 2**31 - 1) else "System.Int64"
    return type(value).__name__


def to_str(value: Any) -> str:
    """``[string]$value`` / ``"$value"``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _float_str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return " ".join(to_str(v) for v in value)
    if isinstance(value, datetime):
        return value.strftime("%m/%d/%Y %H:%M:%S")
    if isinstance(value, PSObject):
        return _psobject_str(value)
    if isinstance(value, Hashtable):
        return "System.Collections.Hashtable"
    if isinstance(value, bytes):
        return " ".join(str(b) for b in value)
    return str(value)


def _float_str(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _psobject_str(obj: PSObject) -> str:
    if obj.text is not None:
        return obj.text
    if obj.type_names[0] != "System.Management.Automation.PSCustomObject":
        return obj.type_names[0]
    inner = "; ".join(f"{k}={to_str(v)}" for k, v in obj.properties.items())
    return "@{" + inner + "}"


def to_bool(value: Any) -> bool:
    """``[bool]$value`` as PowerShell converts for ``if`` and ``-not``."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value != ""
    if isinstance(value, list):
        return len(value) > 1 or (len(value) == 1 and to_bool(value[0]))
    return True


_NUMBER = re.compile(
    r"\s*([+-]?)(0x[0-9a-f]+|\d*\.?\d+(?:e[+-]?\d+)?)\s*(kb|mb|gb|tb|pb)?\s*", re.I
)
_MULT = {"kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40, "pb": 2**50}


def to_number(value: Any, target: str = "System.Int32") -> int | float:
    """A number from a value (strings parsed as PowerShell does), or a conversion error."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, list) and len(value) == 1:
        return to_number(value[0], target)
    text = to_str(value) if isinstance(value, str) else None
    match = _NUMBER.fullmatch(text) if text is not None else None
    if text is not None and text.strip() == "":
        return 0
    if match is None:
        raise PSRuntimeError(
            f'Cannot convert value "{to_str(value)}" to type "{target}". Error: "Input string '
            'was not in a correct format."',
            category="InvalidArgument",
            fqid="InvalidCastFromStringToInteger",
            exception_type="System.Management.Automation.PSInvalidCastException",
        )
    sign, digits, mult = match.groups()
    number: int | float
    if digits.lower().startswith("0x"):
        number = int(digits, 16)
    elif re.fullmatch(r"\d+", digits):
        number = int(digits)
    else:
        number = float(digits)
    number = number * _MULT[mult.lower()] if mult else number
    return -number if sign == "-" else number


def to_int(value: Any) -> int:
    """``[int]$value``: rounds half to even as .NET does."""
    number = to_number(value)
    return round(number) if isinstance(number, float) else number


def enumerate_value(value: Any) -> list[Any]:
    """What a pipeline gets from a value: lists unrolled, $null nothing, others one item."""
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def collapse(items: list[Any]) -> Any:
    """A pipeline's output as a value: nothing → $null, one → the item, more → array."""
    if not items:
        return None
    return items[0] if len(items) == 1 else items


_STRING_COUNT = ("count", "length")


def get_member(value: Any, name: str) -> Any:
    """``$value.Name``: properties case-insensitively; member enumeration over arrays."""
    lower = name.lower()
    if isinstance(value, PSObject):
        if value.has(name):
            return value.get(name)
        return 1 if lower == "count" else None
    if isinstance(value, Hashtable):
        if name in value:
            return value[name]
        if lower in ("count", "keys", "values"):
            return {"count": len(value), "keys": list(value), "values": list(value.values())}[lower]
        return None
    if isinstance(value, list):
        if lower in _STRING_COUNT:
            return len(value)
        found = [get_member(v, name) for v in value]
        return collapse([f for f in found if f is not None])
    if isinstance(value, str | bytes | bytearray) and lower == "length":
        return len(value)
    member = getattr(value, "ps_member", None)  # .NET stand-ins (dr.lab.ps.dotnet)
    if callable(member):
        return member(lower)
    if value is None:
        return 0 if lower == "count" else None
    return _scalar_member(value, lower)


def _scalar_member(value: Any, lower: str) -> Any:
    if lower == "count":
        return 1
    if isinstance(value, datetime):
        attrs = {
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "dayofweek": value.strftime("%A"),
            "ticks": int((value - datetime(1, 1, 1)).total_seconds() * 10**7),
        }
        return attrs.get(lower)
    return None


def format_output(value: Any) -> str:
    """How Out-Default writes one object to the console, as text lines.

    Strings are lines, numbers and booleans print in PowerShell's form (``True``), and a
    PSObject or hashtable prints in Format-List style (``Name : value``), one block per
    object — not the table view PowerShell picks for objects with few properties.
    """
    if value is None:
        return ""
    if isinstance(value, PSObject) and value.text is None and value.properties:
        return _list_view(list(value.properties.items())) + "\r\n"
    if isinstance(value, Hashtable):
        rows = [("Name", "Value")] + [(to_str(k), to_str(v)) for k, v in value.items()]
        width = max(len(r[0]) for r in rows)
        lines = [f"{a.ljust(width)} {b}".rstrip() for a, b in rows]
        lines.insert(1, f"{'-' * 4:<{width}} -----")
        return "\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    return to_str(value) + "\r\n"


def _list_view(items: list[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in items)
    lines = [f"{k.ljust(width)} : {_list_cell(v)}" for k, v in items]
    return "\r\n" + "\r\n".join(lines) + "\r\n"


def _list_cell(value: Any) -> str:
    if isinstance(value, list):
        return "{" + ", ".join(to_str(v) for v in value) + "}"
    return to_str(value)
