"""Transaction-log file names: build them, parse them back, recognise the other stream files.

Every ESE log stream (a storage group on 2000/2003/2007, a database from 2010 on) has a
three-character prefix ``Enn`` (``E00`` … ``EFF``). The current log is ``Enn.log``; when it
fills it is renamed to ``Enn<generation in hex>.log``. Exchange 2000/2003 write five hex
digits (``E0000001.log``, 5 MB logs); 2007 and later write eight (``E0000000001.log``,
1 MB logs). See research/exchange-and-winrm.md §1.1 and KB 240145.

The generation in a file name is hexadecimal; the ``Log Required`` range in an ``eseutil /mh``
header is decimal (§1.4). Everything here works on integer generations, so the conversion
happens in exactly one place: :func:`log_file_name` / :func:`parse_log_file_name`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from dr.errors import InputError, ParameterError

LogFamily = Literal["legacy", "modern"]
FileKind = Literal["generation", "current", "temporary", "reserve", "checkpoint"]

DIGITS: dict[LogFamily, int] = {"legacy": 5, "modern": 8}
"""Hex digits of the generation in a numbered log file name, per family."""

_PREFIX = re.compile(r"^E[0-9A-F]{2}$", re.IGNORECASE)
_NUMBERED = re.compile(r"^(?P<prefix>E[0-9A-F]{2})(?P<gen>[0-9A-F]+)\.log$", re.IGNORECASE)
_CURRENT = re.compile(r"^(?P<prefix>E[0-9A-F]{2})\.log$", re.IGNORECASE)
_TEMPORARY = re.compile(r"^(?P<prefix>E[0-9A-F]{2})tmp\.log$", re.IGNORECASE)
_RESERVE_LEGACY = re.compile(r"^res[12]\.log$", re.IGNORECASE)
_RESERVE_MODERN = re.compile(r"^(?P<prefix>E[0-9A-F]{2})res[0-9A-F]{5}\.jrs$", re.IGNORECASE)
_CHECKPOINT = re.compile(r"^(?P<prefix>E[0-9A-F]{2})\.chk$", re.IGNORECASE)


@dataclass(frozen=True)
class LogFile:
    """A file found in a log folder, classified.

    ``generation`` is set only for numbered logs; ``prefix`` is None only for the
    2000/2003 reserve logs ``res1.log`` / ``res2.log``, which carry no prefix.
    """

    name: str
    kind: FileKind
    prefix: str | None
    generation: int | None = None
    digits: int | None = None


def family_of(exchange_version: int) -> LogFamily:
    """'legacy' (5 hex digits) for Exchange 2000/2003, 'modern' (8) for 2007 and later."""
    if exchange_version < 2000:
        raise ParameterError(
            f"Exchange version {exchange_version} is not supported",
            hint="dr knows Exchange 2000 to 2019",
        )
    return "legacy" if exchange_version <= 2003 else "modern"


def check_prefix(prefix: str) -> str:
    """The log prefix in canonical upper case, or ParameterError naming it."""
    if not _PREFIX.match(prefix):
        raise ParameterError(
            f"{prefix!r} is not a log prefix",
            hint="a log prefix is E followed by two hex digits, E00 to EFF",
        )
    return prefix.upper()


def log_file_name(prefix: str, generation: int, exchange_version: int) -> str:
    """``log_file_name("E00", 44, 2003) == "E000002C.log"``; 8 digits from 2007 on."""
    digits = DIGITS[family_of(exchange_version)]
    canonical = check_prefix(prefix)
    if generation < 1 or generation >= 16**digits:
        raise ParameterError(
            f"log generation {generation} does not fit a {digits}-digit log file name",
            hint=f"generations run from 1 to {16**digits - 1} on Exchange {exchange_version}",
        )
    return f"{canonical}{generation:0{digits}X}.log"


def current_log_name(prefix: str) -> str:
    """The log being written now, ``Enn.log``; its generation is only in its header."""
    return f"{check_prefix(prefix)}.log"


def _basename(name: str) -> str:
    return re.split(r"[\\/]", name)[-1].strip()


def parse_log_file_name(
    name: str, *, error: type[InputError] = ParameterError
) -> tuple[str, int, int]:
    """``"E000002C.log"`` → ``("E00", 44, 5)``: prefix, generation, hex digits.

    A directory part (``D:\\Logs\\E000002C.log``) is ignored. Anything that is not a
    numbered log of five or eight hex digits is refused with ``error`` naming the file, so
    a parser of tool output can raise ToolOutputError and a command line ParameterError.
    """
    base = _basename(name)
    match = _NUMBERED.match(base)
    if not match or len(match.group("gen")) not in DIGITS.values():
        raise error(
            f"{name!r} is not a numbered transaction log file name",
            hint="expected Enn + 5 hex digits + .log (2000/2003) or Enn + 8 (2007+)",
        )
    generation = int(match.group("gen"), 16)
    if generation < 1:
        raise error(f"{name!r} names generation 0, which no log file has")
    return match.group("prefix").upper(), generation, len(match.group("gen"))


def classify_log_folder_file(name: str) -> LogFile | None:
    """What a file in a log folder is, or None when it is not part of a log stream."""
    base = _basename(name)
    for pattern, kind in (
        (_CURRENT, "current"),
        (_TEMPORARY, "temporary"),
        (_RESERVE_MODERN, "reserve"),
        (_CHECKPOINT, "checkpoint"),
    ):
        match = pattern.match(base)
        if match:
            return LogFile(base, kind, match.group("prefix").upper())
    if _RESERVE_LEGACY.match(base):
        return LogFile(base, "reserve", None)
    try:
        prefix, generation, digits = parse_log_file_name(base)
    except ParameterError:
        return None
    return LogFile(base, "generation", prefix, generation, digits)


# --------------------------------------------------------------------------- eseutil /ml


@dataclass(frozen=True)
class Unusable:
    """The first numbered log of a stream that ``eseutil /ml`` reported bad, and why.

    A log from another stream or epoch carries another log signature; ESE refuses to
    replay it (JET_errBadLogSignature, -530) and every generation after it with it. A
    mismatched generation or a damaged file stops replay the same way (KB 248122).
    """

    generation: int
    file: str
    reason: str


def first_unusable(check: Any, prefix: str, digits: int) -> Unusable | None:
    """The lowest generation of ``prefix`` that ``check`` (an ``eseutil /ml`` LogCheck)
    did not pass: a file without ``- OK``, with ERROR lines, or reported corrupt.

    The current log ``Enn.log`` carries no generation in its name and is not judged here:
    a torn write in it is repairable (KB 248122).
    """
    found: list[Unusable] = []
    for result in check.files:
        if not result.ok:
            why = "; ".join(result.errors) or (
                "eseutil /ml did not report it OK" if check.status.ok else check.status.text
            )
            found += _numbered(result.name, prefix, digits, why)
    for name in check.corrupted:
        found += _numbered(name, prefix, digits, f"CORRUPTION DETECTED ({check.status.text})")
    return min(found, key=lambda u: u.generation) if found else None


def _numbered(name: str, prefix: str, digits: int, reason: str) -> list[Unusable]:
    try:
        pfx, generation, width = parse_log_file_name(name)
    except ParameterError:
        return []
    if pfx != prefix.upper() or width != digits:
        return []
    return [Unusable(generation, _basename(name), reason)]
