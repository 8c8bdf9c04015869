"""Parser for ``wbadmin get versions`` output (research/exchange-and-winrm.md §2.7, FEATURES A12).

The output is blocks of ``Label: value`` lines separated by blank lines::

    Backup time: 3/31/2020 9:00 AM
    Backup target: 1394/USB Disk labeled E:
    Version identifier: 03/31/2020-13:00
    Can recover: Volume(s), File(s), Application(s), Bare Metal Recovery, System State
    Snapshot ID: {…}

The version identifier is what ``wbadmin start systemstaterecovery -version:`` wants, so it
is kept verbatim and never rebuilt from "Backup time" (the identifier is believed to be UTC,
the backup time local). Labels are localised on non-English systems, so a block is also
recognised by an identifier-shaped value (``MM/DD/YYYY-HH:MM``) alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from dr.errors import ToolOutputError

_IDENTIFIER = re.compile(r"(?<![\d/])(\d{2}/\d{2}/\d{4}-\d{2}:\d{2})(?![\d:])")
_LINE = re.compile(r"^\s*(?P<label>[^:]+?)\s*:\s*(?P<value>.*?)\s*$")
_LABELS = {
    "backup time": "backup_time",
    "backup target": "backup_target",
    "backup location": "backup_target",
    "version identifier": "version_identifier",
    "can recover": "can_recover",
    "snapshot id": "snapshot_id",
}
_TIME_FORMATS = ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S")


@dataclass(frozen=True)
class WbadminVersion:
    """One backup version as listed by ``wbadmin get versions``."""

    version_identifier: str
    line: int
    backup_time_text: str | None = None
    backup_target: str | None = None
    can_recover: tuple[str, ...] = ()
    snapshot_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def backup_time(self) -> datetime | None:
        """The backup's local time as wbadmin printed it (naive), when the format is known."""
        if self.backup_time_text is None:
            return None
        for fmt in _TIME_FORMATS:
            try:
                return datetime.strptime(self.backup_time_text, fmt)
            except ValueError:
                continue
        return None

    @property
    def identifier_time(self) -> datetime:
        """The time the identifier encodes (naive; believed to be UTC)."""
        return datetime.strptime(self.version_identifier, "%m/%d/%Y-%H:%M")

    def can(self, what: str) -> bool:
        """``can("System State")``, ``can("files")`` — case and plural insensitive."""
        wanted = _recovery_key(what)
        return any(_recovery_key(item) == wanted for item in self.can_recover)


def _recovery_key(text: str) -> str:
    return text.casefold().replace("(s)", "").strip().rstrip("s")


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    """Non-blank lines grouped by blank lines, each with its 1-based line number."""
    blocks: list[list[tuple[int, str]]] = [[]]
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            blocks[-1].append((number, line))
        elif blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


def _version(block: list[tuple[int, str]]) -> WbadminVersion | None:
    """The version a block describes, None for a block that is not a version."""
    values: dict[str, tuple[int, str]] = {}
    extra: dict[str, str] = {}
    for number, line in block:
        match = _LINE.match(line)
        if not match:
            continue
        key = _LABELS.get(match["label"].casefold())
        if key:
            values.setdefault(key, (number, match["value"]))
        else:
            extra[match["label"]] = match["value"]
    identifier = _identifier(block, values)
    if identifier is None:
        return None
    return WbadminVersion(
        version_identifier=identifier,
        line=block[0][0],
        backup_time_text=values.get("backup_time", (0, None))[1],
        backup_target=values.get("backup_target", (0, None))[1],
        can_recover=_list(values.get("can_recover", (0, ""))[1]),
        snapshot_id=values.get("snapshot_id", (0, None))[1],
        extra=extra,
    )


def _identifier(block: list[tuple[int, str]], values: dict[str, tuple[int, str]]) -> str | None:
    if "version_identifier" in values:
        number, raw = values["version_identifier"]
        match = _IDENTIFIER.search(raw)
        if not match:
            raise ToolOutputError(
                f"wbadmin get versions, line {number}: version identifier {raw!r} is not "
                "MM/DD/YYYY-HH:MM",
                hint="pass the output of 'wbadmin get versions' unchanged",
                details={"line": number, "field": "Version identifier"},
            )
        return match.group(1)
    if "backup_time" in values:
        number = values["backup_time"][0]
        raise ToolOutputError(
            f"wbadmin get versions, line {number}: the backup listed here has no version "
            "identifier",
            hint="the output was cut short or edited; run 'wbadmin get versions' again",
            details={"line": number, "field": "Version identifier"},
        )
    for _, line in block:  # localised labels: the identifier's shape is enough
        match = _IDENTIFIER.search(line)
        if match:
            return match.group(1)
    return None


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def parse_versions(text: str) -> list[WbadminVersion]:
    """Every backup version in ``wbadmin get versions`` output, in the order listed.

    Output with no version and nothing that looks like wbadmin is refused, so that feeding
    the wrong file is an error rather than an empty import.
    """
    versions = [v for v in map(_version, _blocks(text)) if v is not None]
    if not versions and "wbadmin" not in text.casefold():
        raise ToolOutputError(
            "wbadmin get versions, line 1: this is not wbadmin output (no version found)",
            hint="capture the output of 'wbadmin get versions' on the server",
            details={"line": 1},
        )
    _check_unique(versions)
    return versions


def _check_unique(versions: list[WbadminVersion]) -> None:
    seen: dict[str, int] = {}
    for version in versions:
        if version.version_identifier in seen:
            raise ToolOutputError(
                f"wbadmin get versions, line {version.line}: version "
                f"{version.version_identifier} is listed twice (first at line "
                f"{seen[version.version_identifier]})",
                details={"line": version.line, "field": "Version identifier"},
            )
        seen[version.version_identifier] = version.line
