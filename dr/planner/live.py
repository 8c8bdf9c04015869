"""The logs still on a server, read from what a responder can produce on the host.

In an incident the responder lists the storage group's log folder (`dir`, `Get-ChildItem`,
or `eseutil /ml Enn` run there) and hands the text to `dr plan database --server-logs
SG=FILE`. Every numbered log file of the storage group's prefix found in the text counts;
the run of generations must be unbroken (a hole is named: those logs are gone, and the
plan cannot roll forward through them). From ``eseutil /ml`` output the first log it did
not pass (another log signature, a mismatched generation, damage) is kept as the point the
usable logs stop at, with eseutil's reason (research §1.5; KB 248122).
"""

from __future__ import annotations

import re
from datetime import datetime
from itertools import pairwise

from dr.errors import ParameterError, ToolOutputError
from dr.exchange.eseutil import parse_ml
from dr.exchange.logs import Unusable, first_unusable, parse_log_file_name
from dr.exchange.rules import LogRange
from dr.model.inventory import Inventory
from dr.model.refs import resolve_storage_group
from dr.planner.facts import LiveLogs

_CANDIDATE = re.compile(r"E[0-9A-Fa-f]{2}[0-9A-Fa-f]{5}(?:[0-9A-Fa-f]{3})?\.log", re.IGNORECASE)


def generations(text: str, prefix: str, digits: int) -> list[int]:
    """Generations of ``prefix`` named in ``text`` (any listing format), sorted, unique."""
    found = set()
    for token in _CANDIDATE.findall(text):
        try:
            pfx, generation, width = parse_log_file_name(token)
        except ParameterError:
            continue
        if pfx == prefix and width == digits:
            found.add(generation)
    return sorted(found)


def live_logs(inv: Inventory, sg_ref: str, text: str, at: datetime, source: str) -> LiveLogs:
    """The LiveLogs fact for one storage group from a listing of its log folder."""
    ref = resolve_storage_group(inv, sg_ref)
    version = ref.server.exchange_version or 2007
    digits = 5 if version <= 2003 else 8
    prefix = ref.storage_group.log_prefix
    gens = generations(text, prefix, digits)
    current = _current(text, prefix, gens)
    if current is not None:
        gens = [*gens, current]
    if not gens:
        raise ParameterError(
            f"{source}: no {prefix} log file names ({digits} hex digits) for {ref.key}",
            hint="list the storage group's log folder: dir, Get-ChildItem or eseutil /ml "
            f"{prefix}, and save the text",
        )
    bad = _unusable(text, prefix, digits)
    usable = [g for g in gens if bad is None or g < bad.generation]
    holes = [(a + 1, b - 1) for a, b in pairwise(usable) if b > a + 1]
    if holes:
        first, last = holes[0]
        raise ParameterError(
            f"{source}: {prefix} generations {first}–{last} are missing from the server's "
            "log folder: replay cannot pass them",
            hint="plan with --at before the hole, or find the missing logs",
        )
    if bad is None:
        return LiveLogs(
            stream=ref.key, logs=LogRange(prefix, gens[0], gens[-1]), at=at, current=current
        )
    return LiveLogs(
        stream=ref.key,
        logs=LogRange(prefix, min(gens[0], bad.generation), max(gens[-1], bad.generation)),
        at=at,
        unusable_from=bad.generation,
        unusable_reason=f"eseutil /ml on {bad.file}: {bad.reason}",
        current=current,
    )


def _current(text: str, prefix: str, numbered: list[int]) -> int | None:
    """The generation in the open log ``Enn.log``, if the listing names it: the one after the
    last numbered log (ESE renames ``Enn.log`` to its number only when it is full), or the
    ``lGeneration`` ``eseutil /ml Enn.log`` prints. None when ``Enn.log`` is not listed."""
    if not re.search(rf"(?<![0-9A-Za-z]){re.escape(prefix)}\.log\b", text, re.IGNORECASE):
        return None
    stated = re.search(r"lGeneration:\s*(\d+)", text)
    if stated:
        return int(stated.group(1))
    return numbered[-1] + 1 if numbered else None


def _unusable(text: str, prefix: str, digits: int) -> Unusable | None:
    """From ``eseutil /ml`` output: the first log it did not pass (a plain listing: None)."""
    if "Verifying log files" not in text and "Base name:" not in text:
        return None
    try:
        check = parse_ml(text)
    except ToolOutputError:  # the trailing "Operation ..." line was not saved with it
        check = parse_ml(f"{text}\n{_NO_STATUS}")
    return first_unusable(check, prefix, digits)


#: Stands in for eseutil's last line when a listing was saved without it: the verdict on each
#: log is on its own ``Log file:`` line.
_NO_STATUS = "Operation completed successfully in 0.0 seconds."
