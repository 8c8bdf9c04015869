"""Commands dr suggests in its messages, written so that they paste into a shell as they are.

Every argument is quoted for a POSIX shell with :func:`shlex.quote` (a time with a space, a
path with a quote stay one argument); a :class:`Placeholder` (``NAME``, ``TIME``) is printed
bare, for the reader to replace. Times go in as ISO 8601 without a space (:func:`iso`), the
form every ``--at`` option reads. Pure: the planner and the CLI both use it.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

__all__ = ["Placeholder", "iso", "suggest"]


class Placeholder(str):
    """A part of a suggested command the reader replaces (``NAME``): printed as it is."""

    __slots__ = ()


def suggest(*args: object) -> str:
    """One command line: each argument shell-quoted, placeholders bare."""
    return " ".join(a if isinstance(a, Placeholder) else shlex.quote(str(a)) for a in args)


def iso(at: datetime) -> str:
    """``2024-05-14T11:02:36Z``: a UTC time as an ``--at`` value, with no space to quote."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
