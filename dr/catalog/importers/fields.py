"""Checking manifest fields one by one: plain code, one small function per kind of value.

A manifest of a year of log backups has a million records, so the checks are table-driven
functions rather than a model per record: each takes the value as read (JSON value or CSV
cell already converted) and returns it, or raises ``ValueError`` with the message the user
sees next to ``file:line: field``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from dr.catalog.model import ARTIFACT_KINDS, BACKUP_TYPES, RUN_STATUSES

Check = Callable[[Any], Any]

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_PREFIX = re.compile(r"[Ee][0-9A-Fa-f]{2}")
_KINDS = frozenset(ARTIFACT_KINDS)
UNKNOWN_FIELD = "unknown field (see docs/catalog.md for the fields a record may have)"
MISSING_FIELD = "required field is missing"


def _choices(values: tuple[str, ...]) -> str:
    quoted = [repr(v) for v in values]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def one_of(values: tuple[str, ...], optional: bool = False) -> Check:
    allowed = frozenset(values)
    message = f"must be {_choices(values)}"

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, str) and value in allowed:
            return value
        raise ValueError(f"{message}, not {value!r}")

    return check


def text(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise ValueError("must be a non-empty string" if value == "" else "must be a string")


MAX_INT = 2**63 - 1  # what SQLite's INTEGER holds
FUTURE_SLACK = timedelta(days=1)  # clocks disagree; a run dated later than this is refused


def optional_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("must be a string")


def whole(minimum: int, optional: bool = True) -> Check:
    def check(value: Any) -> int | None:
        if value is None and optional:
            return None
        if type(value) is int and minimum <= value <= MAX_INT:
            return value
        if type(value) is int and value > MAX_INT:
            raise ValueError(f"{value} is too large (at most {MAX_INT})")
        raise ValueError(f"must be a whole number ≥ {minimum}, not {value!r}")

    return check


def pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(value: Any) -> str | None:
        if value is None or (isinstance(value, str) and regex.fullmatch(value)):
            return value
        raise ValueError(f"must be {what}, not {value!r}")

    return check


def flag(optional: bool) -> Check:
    def check(value: Any) -> bool | None:
        if isinstance(value, bool) or (value is None and optional):
            return value
        raise ValueError(f"must be true or false, not {value!r}")

    return check


def moment(value: Any) -> datetime:
    """An ISO 8601 time with a zone, as UTC (a time without a zone is refused, not guessed)."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time like 2024-05-01T21:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO 8601 time (write it like 2024-05-01T21:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError("a time needs a time zone: write it like 2024-05-01T21:00:00Z (UTC)")
    parsed = parsed.astimezone(UTC)
    if parsed > datetime.now(UTC) + FUTURE_SLACK:
        raise ValueError(f"{value!r} is in the future: a backup run cannot have happened yet")
    return parsed


RUN_FIELDS: dict[str, Check] = {
    "set": text,
    "host": text,
    "type": one_of(BACKUP_TYPES),
    "start": moment,
    "end": moment,
    "status": one_of(RUN_STATUSES),
    "error": optional_text,
    "source": text,
    "compression": one_of(("fast", "normal"), optional=True),
}
RUN_REQUIRED = ("set", "host", "type", "start", "end")

ARTIFACT_FIELDS: dict[str, Check] = {
    "kind": lambda v: v if v in _KINDS else one_of(ARTIFACT_KINDS)(v),
    "name": text,
    "size": whole(0, optional=False),
    "stored_size": whole(0),
    "storage_group": optional_text,
    "database": optional_text,
    "sha256": pattern(_SHA256, "64 hexadecimal digits"),
    "location": optional_text,
    "state": optional_text,
    "log_required_first": whole(0),
    "log_required_last": whole(0),
    "db_signature": optional_text,
    "log_prefix": pattern(_PREFIX, "a log prefix like E00"),
    "first_gen": whole(1),
    "last_gen": whole(1),
    "log_signature": optional_text,
    "mailbox": optional_text,
    "item_count": whole(0),
    "mounted": flag(optional=False),
    "circular_logging": flag(optional=True),
}
ARTIFACT_REQUIRED = ("kind", "name", "size")


def check_fields(
    data: dict[str, Any], checks: dict[str, Check], required: tuple[str, ...]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The checked values and the (field, message) of every problem."""
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, raw in data.items():
        check = checks.get(name)
        if check is None:
            problems.append((name, UNKNOWN_FIELD))
            continue
        try:
            values[name] = check(raw)
        except ValueError as exc:
            problems.append((name, str(exc)))
    for name in required:
        if name not in data:
            problems.append((name, MISSING_FIELD))
    return values, problems
