"""PowerShell's operators over values: casts, arithmetic, comparison, ``-f``.

The left operand decides the conversion (``about_Comparison_Operators``,
``about_Arithmetic_Operators``): ``1 -eq '1'`` converts the string to a number,
``'1' -eq 1`` the number to a string; comparisons are case-insensitive unless the
operator starts with ``c``; with a collection on the left, a comparison filters it.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from dr.lab.ps.dotnet import format_date, parse_date
from dr.lab.ps.values import (
    Hashtable,
    PSObject,
    PSRuntimeError,
    enumerate_value,
    to_bool,
    to_int,
    to_number,
    to_str,
    type_name,
)

__all__ = ["arith", "cast", "compare", "equal", "format_string", "is_type"]


def _norm(name: str) -> str:
    lower = name.lower().replace(" ", "")
    return lower[7:] if lower.startswith("system.") else lower


def cast(name: str, value: Any) -> Any:
    """``[name]value``; LookupError for a type the lab does not know."""
    key = _norm(name)
    if key.endswith("[]"):
        element = key[:-2]
        items = enumerate_value(value)
        return items if element in ("object", "psobject") else [cast(element, v) for v in items]
    casts = {
        "int": to_int,
        "int32": to_int,
        "long": to_int,
        "int64": to_int,
        "double": lambda v: float(to_number(v, "System.Double")),
        "string": to_str,
        "bool": to_bool,
        "boolean": to_bool,
        "switch": to_bool,
        "datetime": _to_date,
        "guid": _to_guid,
        "array": lambda v: enumerate_value(v) if not isinstance(v, list) else v,
        "void": lambda v: None,
        "hashtable": _to_hashtable,
        "pscustomobject": _to_object,
        "psobject": lambda v: v,
        "object": lambda v: v,
    }
    if key not in casts:
        raise LookupError(name)
    return casts[key](value)


def _to_date(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return parse_date(to_str(value))


def _to_guid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(to_str(value).strip("{}"))
    except ValueError:
        raise PSRuntimeError(
            f'Cannot convert value "{to_str(value)}" to type "System.Guid". Error: "Guid '
            'should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."',
            category="InvalidArgument",
            fqid="InvalidCastParseTargetInvocation",
        ) from None


def _to_hashtable(value: Any) -> Hashtable:
    if isinstance(value, Hashtable):
        return value
    raise LookupError("hashtable")


def _to_object(value: Any) -> Any:
    if isinstance(value, Hashtable):
        return PSObject(Hashtable(value.items()))
    return value


def is_type(value: Any, name: str) -> bool:
    key = _norm(name)
    actual = _norm(type_name(value))
    aliases = {"int": "int32", "long": "int64", "bool": "boolean", "array": "object[]"}
    key = aliases.get(key, key)
    if key in ("object", "psobject"):
        return value is not None
    if key == "int64" and actual == "int32":
        return False
    if key == "pscustomobject":
        return isinstance(value, PSObject)
    return actual == key or (key == "object[]" and isinstance(value, list))


# --- arithmetic ---------------------------------------------------------------------------


def arith(op: str, left: Any, right: Any) -> Any:
    if op == "+":
        return _add(left, right)
    if op == "*" and isinstance(left, str):
        return left * to_int(right)
    if op == "*" and isinstance(left, list):
        return left * to_int(right)
    if isinstance(left, list):
        raise PSRuntimeError(
            f"Method invocation failed because [System.Object[]] does not contain a method "
            f"named 'op_{ {'-': 'Subtraction', '/': 'Division', '%': 'Modulus'}.get(op, op) }'.",
            category="InvalidOperation",
            fqid="MethodNotFound",
        )
    a, b = _numeric(left), _numeric(right)
    return _numeric_op(op, a, b)


def _numeric(value: Any) -> int | float:
    if isinstance(value, datetime):
        raise PSRuntimeError("dr lab: date arithmetic is not supported", fqid="DrLabUnsupported")
    return to_number(value)


def _numeric_op(op: str, a: int | float, b: int | float) -> int | float:
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op in ("/", "%") and b == 0:
        raise PSRuntimeError(
            "Attempted to divide by zero.",
            category="NotSpecified",
            fqid="RuntimeException",
            exception_type="System.DivideByZeroException",
        )
    if op == "/":
        quotient = a / b
        return (
            int(quotient) if isinstance(a, int) and isinstance(b, int) and a % b == 0 else quotient
        )
    if op == "%":
        return a % b if (a >= 0) == (b >= 0) else -(abs(a) % abs(b))
    raise PSRuntimeError(f"dr lab: unsupported operator {op}", fqid="DrLabUnsupported")


def _add(left: Any, right: Any) -> Any:
    if left is None:
        return right if not isinstance(right, list) else list(right)
    if isinstance(left, list):
        return left + (list(right) if isinstance(right, list) else [right])
    if isinstance(left, str):
        return left + to_str(right)
    if isinstance(left, Hashtable):
        if not isinstance(right, Hashtable):
            raise PSRuntimeError(
                "A hash table can only be added to another hash table.",
                category="InvalidOperation",
                fqid="AddHashTableToNonHashTable",
            )
        merged = Hashtable(left.items())
        for key, value in right.items():
            if key in merged:
                raise PSRuntimeError(
                    f"Item has already been added. Key in dictionary: '{key}'  Key being "
                    f"added: '{key}'",
                    fqid="ArgumentException",
                )
            merged[key] = value
        return merged
    return _numeric(left) + _numeric(right)


# --- comparison ---------------------------------------------------------------------------

_FILTERING = {"eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch"}


def compare(op: str, left: Any, right: Any) -> tuple[Any, Hashtable | None]:
    """The operator's result and, for a scalar ``-match``, the new ``$Matches``."""
    name = op.lstrip("-")
    case = name.startswith("c") and name[1:] in _FILTERING | _OTHER
    if name[:1] in ("c", "i") and name[1:] in _FILTERING | _OTHER:
        name = name[1:]
    if name in _FILTERING and isinstance(left, list):
        return [x for x in left if _scalar(name, x, right, case)[0]], None
    if name in _FILTERING:
        return _scalar(name, left, right, case)
    return _other(name, left, right, case), None


_OTHER = {"contains", "notcontains", "in", "notin", "replace", "split", "join"}


def _scalar(name: str, left: Any, right: Any, case: bool) -> tuple[bool, Hashtable | None]:
    if name in ("eq", "ne"):
        result = equal(left, right, case)
        return (result if name == "eq" else not result), None
    if name in ("like", "notlike"):
        from dr.lab.ps.fs import wildcard_match

        pattern, subject = to_str(right), to_str(left)
        hit = (
            wildcard_match(pattern, subject)
            if not case
            else re.fullmatch(_wild_regex(pattern), subject) is not None
        )
        return (hit if name == "like" else not hit), None
    if name in ("match", "notmatch"):
        found = re.search(to_str(right), to_str(left), 0 if case else re.IGNORECASE)
        matches = _matches(found) if found and name == "match" else None
        return (bool(found) if name == "match" else not found), matches
    return _order(name, left, right, case), None


def _wild_regex(pattern: str) -> str:
    out = []
    for ch in pattern:
        out.append({"*": ".*", "?": "."}.get(ch, re.escape(ch)))
    return "".join(out)


def _matches(found: re.Match[str]) -> Hashtable:
    table = Hashtable()
    table[0] = found.group(0)
    for i, group in enumerate(found.groups(), start=1):
        if group is not None:
            table[i] = group
    for key, group in found.groupdict().items():
        if group is not None:
            table[key] = group
    return table


def _order(name: str, left: Any, right: Any, case: bool) -> bool:
    a, b = _comparable(left, right, case)
    try:
        table = {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}
    except TypeError:
        raise PSRuntimeError(
            f'Cannot compare "{to_str(left)}" to "{to_str(right)}".',
            category="InvalidOperation",
            fqid="ComparisonFailure",
        ) from None
    return table[name]


def _comparable(left: Any, right: Any, case: bool) -> tuple[Any, Any]:
    if left is None:
        return ("", to_str(right)) if isinstance(right, str) else (-(10**300), right or 0)
    if isinstance(left, bool):
        return left, to_bool(right)
    if isinstance(left, int | float):
        return left, to_number(right)
    if isinstance(left, datetime):
        return left, right if isinstance(right, datetime) else parse_date(to_str(right))
    a, b = to_str(left), to_str(right)
    return (a, b) if case else (a.lower(), b.lower())


def equal(left: Any, right: Any, case: bool = False) -> bool:
    """``left -eq right`` for a scalar left side."""
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, bool):
        return left == to_bool(right)
    if isinstance(left, int | float):
        try:
            return left == to_number(right)
        except PSRuntimeError:
            return False
    if isinstance(left, str):
        a, b = left, to_str(right)
        return a == b if case else a.lower() == b.lower()
    if isinstance(left, datetime | uuid.UUID):
        try:
            return left == (_to_date(right) if isinstance(left, datetime) else _to_guid(right))
        except PSRuntimeError:
            return False
    return left is right or left == right


def _other(name: str, left: Any, right: Any, case: bool) -> Any:
    if name in ("contains", "notcontains"):
        hit = any(equal(x, right, case) for x in enumerate_value(left) or [left])
        return hit if name == "contains" else not hit
    if name in ("in", "notin"):
        hit = any(equal(x, left, case) for x in enumerate_value(right) or [right])
        return hit if name == "in" else not hit
    if name == "replace":
        return _replace(left, right, case)
    if name == "split":
        parts = enumerate_value(right)
        pattern = to_str(parts[0]) if parts else r"\s+"
        limit = to_int(parts[1]) if len(parts) > 1 else 0
        out: list[str] = []
        for item in enumerate_value(left):
            flags = 0 if case else re.IGNORECASE
            out.extend(re.split(pattern, to_str(item), maxsplit=max(0, limit - 1), flags=flags))
        return out
    if name == "join":
        return to_str(right).join(to_str(x) for x in enumerate_value(left))
    raise PSRuntimeError(f"dr lab: unsupported operator -{name}", fqid="DrLabUnsupported")


def _replace(left: Any, right: Any, case: bool) -> Any:
    parts = enumerate_value(right)
    pattern = to_str(parts[0]) if parts else ""
    replacement = _dotnet_replacement(to_str(parts[1])) if len(parts) > 1 else ""
    flags = 0 if case else re.IGNORECASE
    results = [re.sub(pattern, replacement, to_str(x), flags=flags) for x in enumerate_value(left)]
    return results if isinstance(left, list) else (results[0] if results else "")


def _dotnet_replacement(text: str) -> str:
    """.NET's ``$1`` / ``${name}`` / ``$$`` in a replacement, for Python's re."""
    out = text.replace("\\", "\\\\")
    out = re.sub(r"\$\{(\w+)\}", r"\\g<\1>", out)
    out = re.sub(r"\$(\d+)", r"\\g<\1>", out)
    return out.replace("$$", "$")


# --- -f -----------------------------------------------------------------------------------

_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)(?:,(-?\d+))?(?::([^}]*))?\}")


def format_string(fmt: str, args: list[Any]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        index = int(match.group(1))
        if index >= len(args):
            raise PSRuntimeError(
                "Error formatting a string: Index (zero based) must be greater than or equal to "
                "zero and less than the size of the argument list..",
                fqid="FormatError",
            )
        text = _format_item(args[index], match.group(3))
        width = int(match.group(2)) if match.group(2) else 0
        return text.rjust(width) if width > 0 else text.ljust(-width)

    return _ITEM.sub(one, fmt)


def _format_item(value: Any, spec: str | None) -> str:
    if not spec:
        return to_str(value)
    if isinstance(value, datetime):
        return format_date(value, spec)
    kind, digits = spec[0].upper(), spec[1:]
    number = to_number(value)
    if kind == "D":
        return f"{int(number):0{int(digits or 0)}d}"
    if kind == "N":
        return f"{number:,.{int(digits or 2)}f}"
    if kind == "F":
        return f"{number:.{int(digits or 2)}f}"
    if kind == "X":
        return f"{int(number):0{int(digits or 0)}{'X' if spec[0] == 'X' else 'x'}}"
    if kind == "P":
        return f"{number * 100:,.{int(digits or 2)}f} %"
    if re.fullmatch(r"0+(\.0+)?", spec):
        decimals = len(spec.split(".")[1]) if "." in spec else 0
        return f"{number:0{len(spec)}.{decimals}f}"
    raise PSRuntimeError(f"dr lab: unsupported format specifier {spec}", fqid="DrLabUnsupported")
