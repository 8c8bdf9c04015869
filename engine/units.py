"""One way to print a duration and a size, for every command, runbook, report and listing.

A plan's RTO read in the CLI, in the runbook and in the audit report is the same words:

* :func:`duration` — ``45 s``, ``12 min``, ``2 h 20 min``, ``3 d 4 h``: seconds below a minute,
  then rounded to the nearest minute (below a day) or hour (from a day on);
* :func:`size` — ``512 B``, ``390.6 KiB``, ``190.7 MiB``, ``1.2 TiB``: binary units (a kibibyte is
  1 024 bytes, as Windows Explorer, robocopy and restic count), one decimal from KiB on.

Machine-readable output (``--json``, the plan file) keeps exact seconds and bytes.
"""

from __future__ import annotations

__all__ = ["duration", "size"]

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def duration(seconds: float | None, unknown: str = "unknown") -> str:
    """``5400`` → ``1 h 30 min``; ``None`` → ``unknown`` (or what the caller says)."""
    if seconds is None:
        return unknown
    sign = "-" if seconds < 0 else ""
    total = abs(float(seconds))
    if total < 59.5:
        return f"{sign}{round(total)} s"
    minutes = round(total / 60)
    if minutes < 24 * 60:
        hours, minutes = divmod(minutes, 60)
        if not hours:
            return f"{sign}{minutes} min"
        return f"{sign}{hours} h {minutes:02d} min" if minutes else f"{sign}{hours} h"
    days, hours = divmod(round(total / 3600), 24)
    return f"{sign}{days} d {hours} h" if hours else f"{sign}{days} d"


def size(count: float | None, unknown: str = "unknown") -> str:
    """``200_000_000`` → ``190.7 MiB``; ``None`` → ``unknown``."""
    if count is None:
        return unknown
    value = float(count)
    if abs(value) < 1024:
        return f"{int(value)} B"
    for unit in _UNITS:
        value /= 1024
        if round(abs(value), 1) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
