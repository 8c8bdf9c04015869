"""``wbadmin get versions`` output as catalog runs (A12), read by the one wbadmin parser.

Parsing is :func:`dr.exchange.wbadmin.parse_versions`'s; this module only turns its
versions into runs. Each version becomes one run of the host's system-state set (or its
system set, when the version can do a bare-metal recovery and such a set exists). The
version identifier (believed to be UTC) is kept verbatim in the artifact's location,
because ``wbadmin start systemstaterecovery -version:`` needs it exactly as wbadmin printed
it. A parse error keeps its line: it is reported as ``file:line: Version identifier``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dr.catalog.importers.records import RawRecord, RawRun
from dr.errors import ManifestError, Problem, ToolOutputError

if TYPE_CHECKING:
    from dr.exchange.wbadmin import WbadminVersion

#: What a version identifier looks like (for telling wbadmin output from other files).
IDENTIFIER = re.compile(r"\d{2}/\d{2}/\d{4}-\d{2}:\d{2}")


def parse(text: str, file: str) -> list[WbadminVersion]:
    """Every version in the output; a ManifestError naming file:line if it cannot be read."""
    from dr.exchange.wbadmin import parse_versions

    try:
        versions = parse_versions(text)
    except ToolOutputError as exc:
        line = exc.details.get("line")
        message = exc.message.split(": ", 1)[-1]
        problem = Problem(message, file, line, field=exc.details.get("field"))
        raise ManifestError(
            f"{file}: unreadable wbadmin output", hint=exc.hint, problems=[problem]
        ) from exc
    if not versions:
        raise ManifestError(
            f"{file}: no backup version found in this wbadmin output; nothing was imported",
            hint="give the output of `wbadmin get versions` (each version has a line "
            "`Version identifier: MM/DD/YYYY-HH:MM`)",
        )
    problems = [p for p in (_time_problem(v, file) for v in versions) if p]
    if problems:
        raise ManifestError(f"{file}: unreadable wbadmin output", problems=problems)
    return versions


def _time_problem(version: WbadminVersion, file: str) -> Problem | None:
    """A version identifier that is not a real time (``99/99/2024-99:99``), at its line."""
    try:
        at = version.identifier_time
    except ValueError:
        shown = version.version_identifier
        return Problem(
            f"{shown!r} is not a date and time (MM/DD/YYYY-HH:MM)",
            file, version.line, field="Version identifier",
        )  # fmt: skip
    if at.year > datetime.now(UTC).year + 1:
        return Problem(
            f"{version.version_identifier!r} is in the future", file, version.line,
            field="Version identifier",
        )  # fmt: skip
    return None


def bare_metal(versions: list[WbadminVersion]) -> bool:
    """Whether the versions can do a bare-metal recovery (a system set then fits them)."""
    return any("bare metal" in item.casefold() for v in versions for item in v.can_recover)


def to_raw_runs(
    versions: list[WbadminVersion], host: str, set_name: str, kind: str
) -> list[RawRun]:
    return [_run(v, host, set_name, kind) for v in versions]


def _run(version: WbadminVersion, host: str, set_name: str, kind: str) -> RawRun:
    at = version.identifier_time.strftime("%Y-%m-%dT%H:%M:00Z")
    location = f"wbadmin version {version.version_identifier}"
    if version.backup_target:
        location += f" on {version.backup_target}"
    name = "System State" if kind == "system-state" else "System (bare metal)"
    record = RawRecord(
        data={
            "set": set_name,
            "host": host,
            "type": "full",
            "start": at,
            "end": at,
            "source": "wbadmin",
        },
        line=version.line,
    )
    artifact = RawRecord(
        data={"kind": kind, "name": name, "size": 0, "location": location}, line=version.line
    )
    return RawRun(record=record, artifacts=[artifact])
