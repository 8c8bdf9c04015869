"""The few .NET members the step library calls: string/array/hashtable/date methods and a
short whitelist of static members (``[IO.Path]::Combine``, ``[Convert]::ToBase64String``...).

Anything not listed raises the interpreter's "unsupported" error: the lab never guesses
what an unknown member would do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PureWindowsPath
from typing import TYPE_CHECKING, Any

from dr.lab.ps.values import Hashtable, PSObject, PSRuntimeError, ScriptBlock, to_int, to_str

if TYPE_CHECKING:
    from dr.lab.ps.interp import Interpreter

__all__ = ["Encoding", "TextStream", "call_method", "format_date", "parse_date", "static_member"]


class Unsupported(Exception):
    """A member the lab does not implement (the interpreter names the construct)."""


@dataclass
class Encoding:
    name: str  # a Python codec

    def GetString(self, data: Any) -> str:
        return bytes(data).decode(self.name, "replace")

    def GetBytes(self, text: Any) -> bytes:
        return to_str(text).encode(self.name)


ENCODINGS = {"utf8": "utf-8", "unicode": "utf-16-le", "ascii": "ascii", "default": "cp1252"}


class TextStream:
    """``[Console]::In`` / ``Out`` / ``Error``."""

    def __init__(self, interp: Interpreter, stream: str) -> None:
        self.interp, self.stream = interp, stream

    def call(self, name: str, args: list[Any]) -> Any:
        lower = name.lower()
        if self.stream == "stdin" and lower in ("readtoend", "readline", "peek"):
            reader: io.StringIO = self.interp.stdin
            if lower == "readtoend":
                return reader.read()
            if lower == "peek":
                pos = reader.tell()
                ch = reader.read(1)
                reader.seek(pos)
                return ord(ch) if ch else -1
            line = reader.readline()
            return line.rstrip("\r\n") if line else None
        if self.stream != "stdin" and lower in ("write", "writeline", "flush"):
            text = to_str(args[0]) if args else ""
            end = "\r\n" if lower == "writeline" else ""
            if lower != "flush":
                self.interp.write(self.stream, text + end)
            return None
        raise Unsupported(f"[Console]::{self.stream}.{name}")


class FileStream:
    """``[IO.File]::OpenRead(path)``: the file's bytes, read through the host's locks."""

    def __init__(self, data: bytes) -> None:
        self.data, self.position, self.closed = data, 0, False

    def ps_member(self, name: str) -> Any:
        return {"length": len(self.data), "position": self.position}.get(name)

    def call(self, name: str, args: list[Any]) -> Any:
        lower = name.lower()
        if lower in ("close", "dispose"):
            self.closed = True
            return None
        if lower == "read":
            buffer, offset, count = args[0], to_int(args[1]), to_int(args[2])
            chunk = self.data[self.position : self.position + count]
            buffer[offset : offset + len(chunk)] = chunk
            self.position += len(chunk)
            return len(chunk)
        if lower == "seek":
            self.position = to_int(args[0])
            return self.position
        raise Unsupported(f"FileStream.{name}")


class HashAlgorithm:
    """``[Security.Cryptography.SHA256]::Create()``: ComputeHash over bytes or a stream."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = hashlib.new(name)
        self.hash: bytes | None = None

    def ps_member(self, name: str) -> Any:
        return bytearray(self.hash or b"") if name == "hash" else None

    def call(self, name: str, args: list[Any]) -> Any:
        lower = name.lower()
        if lower == "computehash":
            source = args[0]
            data = source.data[source.position :] if isinstance(source, FileStream) else source
            return bytearray(hashlib.new(self.name, bytes(data)).digest())
        if lower == "transformblock":
            self.state.update(bytes(args[0])[to_int(args[1]) : to_int(args[1]) + to_int(args[2])])
            return to_int(args[2])
        if lower == "transformfinalblock":
            self.hash = self.state.digest()
            return bytearray()
        if lower in ("dispose", "clear"):
            return None
        raise Unsupported(f"HashAlgorithm.{name}")


def parse_date(text: str) -> datetime:
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = _parse_us_date(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _parse_us_date(value: str) -> datetime:
    for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%Y/%m/%d %H:%M:%S"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise PSRuntimeError(
        f'Cannot convert value "{value}" to type "System.DateTime". Error: "String was not '
        'recognized as a valid DateTime."',
        category="InvalidArgument",
        fqid="InvalidCastParseTargetInvocationWithFormatProvider",
    )


_DATE_TOKENS = re.compile(
    r"'[^']*'|\"[^\"]*\"|\\.|yyyy|yy|MM|M|dd|d|HH|H|hh|h|mm|m|ss|s|f+|tt|K|zzz"
)


def format_date(value: datetime, fmt: str) -> str:
    """.NET custom and standard date formats (the ones the step library uses)."""
    standard = {
        "o": "yyyy-MM-ddTHH:mm:ss.fffffffK",
        "s": "yyyy-MM-ddTHH:mm:ss",
        "u": "yyyy-MM-dd HH:mm:ssZ",
        "d": "MM/dd/yyyy",
        "g": "MM/dd/yyyy HH:mm",
        "G": "MM/dd/yyyy HH:mm:ss",
    }
    fmt = standard.get(fmt, fmt)
    return _DATE_TOKENS.sub(lambda m: _date_token(value, m.group(0)), fmt)


def _date_token(value: datetime, token: str) -> str:
    if token[0] in "'\"":
        return token[1:-1]
    if token[0] == "\\":
        return token[1]
    if token[0] == "f":
        return f"{value.microsecond:06d}0"[: len(token)]
    table: dict[str, Callable[[], str]] = {
        "yyyy": lambda: f"{value.year:04d}",
        "yy": lambda: f"{value.year % 100:02d}",
        "MM": lambda: f"{value.month:02d}",
        "M": lambda: str(value.month),
        "dd": lambda: f"{value.day:02d}",
        "d": lambda: str(value.day),
        "HH": lambda: f"{value.hour:02d}",
        "H": lambda: str(value.hour),
        "hh": lambda: f"{(value.hour % 12) or 12:02d}",
        "h": lambda: str((value.hour % 12) or 12),
        "mm": lambda: f"{value.minute:02d}",
        "m": lambda: str(value.minute),
        "ss": lambda: f"{value.second:02d}",
        "s": lambda: str(value.second),
        "tt": lambda: "AM" if value.hour < 12 else "PM",
        "K": lambda: "",
        "zzz": lambda: "+00:00",
    }
    return table[token]()


# --- instance methods ---------------------------------------------------------------------


def call_method(interp: Interpreter, target: Any, name: str, args: list[Any]) -> Any:
    lower = name.lower()
    if isinstance(target, TextStream | FileStream | HashAlgorithm):
        return target.call(name, args)
    if isinstance(target, Encoding):
        return getattr(target, {"getstring": "GetString", "getbytes": "GetBytes"}[lower])(*args)
    if lower == "tostring" and not (isinstance(target, datetime) and args):
        return to_str(target)
    if isinstance(target, str):
        return _string_method(target, lower, args)
    if isinstance(target, list):
        return _array_method(target, lower, args)
    if isinstance(target, Hashtable):
        return _hashtable_method(target, lower, args)
    if isinstance(target, datetime):
        return _date_method(target, lower, args)
    if isinstance(target, ScriptBlock) and lower == "invoke":
        return interp.invoke_block(target, args)
    if isinstance(target, PSObject) and lower == "getenumerator":
        return list(target.properties.items())
    raise Unsupported(f"method {name}() on {type(target).__name__}")


def _string_method(s: str, name: str, args: list[Any]) -> Any:
    a = [to_str(x) if not isinstance(x, int) else x for x in args]
    ci = {"startswith", "endswith"}
    if name in ci:
        fn = s.lower().startswith if name == "startswith" else s.lower().endswith
        return fn(to_str(args[0]).lower()) if len(args) < 2 else _ordinal(s, name, args)
    simple: dict[str, Callable[[], Any]] = {
        "trim": lambda: s.strip(to_str(args[0])) if args else s.strip(),
        "trimstart": lambda: s.lstrip(to_str(args[0])) if args else s.lstrip(),
        "trimend": lambda: s.rstrip(to_str(args[0])) if args else s.rstrip(),
        "tolower": s.lower,
        "toupper": s.upper,
        "tolowerinvariant": s.lower,
        "toupperinvariant": s.upper,
        "contains": lambda: to_str(args[0]) in s,
        "replace": lambda: s.replace(to_str(args[0]), to_str(args[1])),
        "split": lambda: _split(s, args),
        "substring": lambda: _substring(s, [to_int(x) for x in args]),
        "indexof": lambda: s.find(to_str(args[0]), *[to_int(x) for x in args[1:]]),
        "lastindexof": lambda: s.rfind(to_str(args[0])),
        "padleft": lambda: s.rjust(to_int(a[0]), to_str(args[1]) if len(args) > 1 else " "),
        "padright": lambda: s.ljust(to_int(a[0]), to_str(args[1]) if len(args) > 1 else " "),
        "equals": lambda: s == to_str(args[0]),
        "gethashcode": lambda: hash(s) & 0x7FFFFFFF,
    }
    if name not in simple:
        raise Unsupported(f"method {name}() on a string")
    return simple[name]()


def _ordinal(s: str, name: str, args: list[Any]) -> bool:
    ignore = "ignorecase" in to_str(args[1]).lower()
    left, right = (s.lower(), to_str(args[0]).lower()) if ignore else (s, to_str(args[0]))
    return left.startswith(right) if name == "startswith" else left.endswith(right)


def _split(s: str, args: list[Any]) -> list[str]:
    if not args:
        return s.split()
    seps = to_str(args[0]) if not isinstance(args[0], list) else "".join(map(to_str, args[0]))
    if not seps:
        return [s]
    return re.split("[" + re.escape(seps) + "]", s)


def _substring(s: str, args: list[int]) -> str:
    start = args[0]
    length = args[1] if len(args) > 1 else len(s) - start
    if start < 0 or start > len(s) or length < 0 or start + length > len(s):
        what = "startIndex" if len(args) == 1 or start > len(s) else "length"
        raise PSRuntimeError(
            f'Exception calling "Substring" with "{len(args)}" argument(s): "'
            + (
                "startIndex cannot be larger than length of string."
                if what == "startIndex"
                else "Index and length must refer to a location within the string."
            )
            + f'\r\nParameter name: {what}"',
            category="NotSpecified",
            fqid="ArgumentOutOfRangeException",
            exception_type="System.Management.Automation.MethodInvocationException",
        )
    return s[start : start + length]


def _array_method(items: list[Any], name: str, args: list[Any]) -> Any:
    from dr.lab.ps.interp import ps_equal

    if name == "contains":
        return any(ps_equal(x, args[0], case=True) for x in items)
    if name == "indexof":
        return next((i for i, x in enumerate(items) if ps_equal(x, args[0], case=True)), -1)
    if name == "getvalue":
        return items[to_int(args[0])]
    raise Unsupported(f"method {name}() on an array")


def _hashtable_method(table: Hashtable, name: str, args: list[Any]) -> Any:
    if name in ("containskey", "contains"):
        return args[0] in table
    if name == "add":
        if args[0] in table:
            raise PSRuntimeError(
                f'Exception calling "Add" with "2" argument(s): "Item has already been added. '
                f"Key in dictionary: '{to_str(args[0])}'  Key being added: '{to_str(args[0])}'\"",
                fqid="ArgumentException",
            )
        table[args[0]] = args[1]
        return None
    if name == "remove":
        table.pop(args[0], None)
        return None
    if name == "getenumerator":
        return [PSObject.of(None, Name=k, Key=k, Value=v) for k, v in table.items()]
    raise Unsupported(f"method {name}() on a hashtable")


def _date_method(value: datetime, name: str, args: list[Any]) -> Any:
    units = {"adddays": "days", "addhours": "hours", "addminutes": "minutes"}
    units |= {"addseconds": "seconds", "addmilliseconds": "milliseconds"}
    if name in units:
        return value + timedelta(**{units[name]: float(to_str(args[0]))})
    if name == "tostring":
        return format_date(value, to_str(args[0]))
    if name in ("touniversaltime", "tolocaltime"):
        return value
    raise Unsupported(f"method {name}() on a DateTime")


# --- static members -----------------------------------------------------------------------


def _type_key(name: str) -> str:
    lower = name.lower()
    return lower[7:] if lower.startswith("system.") else lower


def static_member(interp: Interpreter, type_name: str, name: str, args: list[Any] | None) -> Any:
    """``[Type]::Name`` (args None) or ``[Type]::Name(args)``."""
    key = f"{_type_key(type_name)}::{name.lower()}"
    if args is None and key in _PROPERTIES:
        return _PROPERTIES[key](interp)
    if args is not None and key in _METHODS:
        return _METHODS[key](interp, *args)
    raise Unsupported(f"[{type_name}]::{name}")


def _fs_path(interp: Interpreter, path: Any) -> str:
    return interp.host.fs.full(to_str(path), interp.cwd)


def _from_base64(text: Any) -> bytes:
    try:
        return base64.b64decode(to_str(text), validate=True)
    except binascii.Error as exc:
        raise PSRuntimeError(
            'Exception calling "FromBase64String" with "1" argument(s): "Invalid length for a '
            'Base-64 char array or string."',
            fqid="FormatException",
            exception_type="System.Management.Automation.MethodInvocationException",
        ) from exc


def _math_round(value: Any, digits: Any = 0) -> Any:
    number = float(to_str(value)) if not isinstance(value, int | float) else value
    result = round(number, to_int(digits))
    return result if to_int(digits) else float(result)


def _file_move(interp: Interpreter, src: Any, dst: Any) -> None:
    interp.host.fs.move(_fs_path(interp, src), _fs_path(interp, dst))


def _file_delete(interp: Interpreter, path: Any) -> None:
    full = _fs_path(interp, path)
    if interp.host.fs.exists(full):
        interp.host.fs.remove(full)


def _write_text(interp: Interpreter, path: Any, text: Any, enc: Any = None) -> None:
    encoding = enc if isinstance(enc, Encoding) else Encoding("utf-8")
    bom = "\ufeff" if encoding.name in ("utf-16-le",) else ""
    interp.host.fs.write_bytes(_fs_path(interp, path), (bom + to_str(text)).encode(encoding.name))


def _path_combine(*parts: Any) -> str:
    result = PureWindowsPath(to_str(parts[0]))
    for part in parts[1:]:
        result = result / to_str(part)
    return str(result)


def _dirname(path: Any) -> str | None:
    text = to_str(path)
    parent = str(PureWindowsPath(text).parent)
    return None if parent == text else parent


_PROPERTIES: dict[str, Callable[[Interpreter], Any]] = {
    "environment::machinename": lambda i: i.host.name,
    "environment::newline": lambda i: "\r\n",
    "console::in": lambda i: TextStream(i, "stdin"),
    "console::out": lambda i: TextStream(i, "stdout"),
    "console::error": lambda i: TextStream(i, "stderr"),
    "datetime::now": lambda i: i.now(),
    "datetime::utcnow": lambda i: i.now(),
    "datetime::today": lambda i: i.now().replace(hour=0, minute=0, second=0, microsecond=0),
    "math::pi": lambda i: math.pi,
    "string::empty": lambda i: "",
    "int32::maxvalue": lambda i: 2**31 - 1,
} | {f"text.encoding::{k}": (lambda i, v=v: Encoding(v)) for k, v in ENCODINGS.items()}

_METHODS: dict[str, Callable[..., Any]] = {
    "io.path::combine": lambda i, *p: _path_combine(*p),
    "io.path::getfilename": lambda i, p: PureWindowsPath(to_str(p)).name,
    "io.path::getfilenamewithoutextension": lambda i, p: PureWindowsPath(to_str(p)).stem,
    "io.path::getextension": lambda i, p: PureWindowsPath(to_str(p)).suffix,
    "io.path::getdirectoryname": lambda i, p: _dirname(p),
    "io.file::exists": lambda i, p: (
        i.host.fs.exists(_fs_path(i, p)) and not i.host.fs.is_dir(_fs_path(i, p))
    ),
    "io.file::readallbytes": lambda i, p: i.host.fs.read_bytes(_fs_path(i, p)),
    "io.file::readalltext": lambda i, p: i.host.fs.read_bytes(_fs_path(i, p)).decode(
        "utf-8-sig", "replace"
    ),
    "io.file::writeallbytes": lambda i, p, d: (
        i.host.fs.write_bytes(_fs_path(i, p), bytes(d)) and None
    ),
    "io.file::writealltext": _write_text,
    "io.file::delete": _file_delete,
    "io.file::move": _file_move,
    "io.file::copy": lambda i, s, d, *o: i.host.fs.copy(_fs_path(i, s), _fs_path(i, d)) and None,
    "io.directory::exists": lambda i, p: i.host.fs.is_dir(_fs_path(i, p)),
    "io.directory::createdirectory": lambda i, p: i.host.fs.mkdir(_fs_path(i, p)) and None,
    "convert::tobase64string": lambda i, d, *r: base64.b64encode(
        bytes(d)[to_int(r[0]) : to_int(r[0]) + to_int(r[1])] if r else bytes(d)
    ).decode(),
    "convert::frombase64string": lambda i, t: _from_base64(t),
    "convert::toint32": lambda i, v, *b: int(to_str(v), to_int(b[0])) if b else to_int(v),
    "convert::toint64": lambda i, v, *b: int(to_str(v), to_int(b[0])) if b else to_int(v),
    "math::round": lambda i, v, *d: _math_round(v, *d),
    "math::floor": lambda i, v: float(math.floor(float(to_str(v)))),
    "math::ceiling": lambda i, v: float(math.ceil(float(to_str(v)))),
    "math::max": lambda i, a, b: max(a, b),
    "math::min": lambda i, a, b: min(a, b),
    "math::abs": lambda i, a: abs(a),
    "array::indexof": lambda i, a, v: _array_method(list(a or []), "indexof", [v]),
    "string::isnullorempty": lambda i, s: s is None or to_str(s) == "",
    "string::join": lambda i, sep, items: to_str(sep).join(to_str(x) for x in items or []),
    "guid::newguid": lambda i: uuid.uuid4(),
    "datetime::parse": lambda i, t: parse_date(to_str(t)),
    "scriptblock::create": lambda i, t: i.script_block(to_str(t)),
    "bitconverter::tostring": lambda i, d: "-".join(f"{b:02X}" for b in bytes(d)),
    "security.cryptography.sha256::create": lambda i: HashAlgorithm("sha256"),
    "security.cryptography.md5::create": lambda i: HashAlgorithm("md5"),
    "io.file::openread": lambda i, p: FileStream(i.host.fs.read_bytes(_fs_path(i, p))),
}
