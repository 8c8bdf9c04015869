"""``wbadmin get versions`` output: Windows Server Backup versions as catalog runs (A12).

The output is blocks of ``Label: value`` lines separated by blank lines. Each version
becomes one run of the host's system-state set (or its system set, when the version can do
a bare-metal recovery and such a set exists). The version identifier (believed to be UTC) is
kept verbatim in the artifact's location, because ``wbadmin start systemstaterecovery
-version:`` needs it exactly as wbadmin printed it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dr.catalog.importers.records import RawRecord, RawRun
from dr.errors import ManifestError, Problem

_IDENT = re.compile(r"(\d{2})/(\d{2})/(\d{4})-(\d{2}):(\d{2})")


@dataclass(frozen=True)
class Version:
    identifier: str
    backup_time: str | None
    target: str | None
    can_recover: tuple[str, ...]
    line: int


def parse(text: str, file: str) -> list[Version]:
    """Every version block; a block without a version identifier is an error (file:line)."""
    versions, problems = [], []
    for line, block in _blocks(text):
        if not any(k.startswith("backup time") or k.startswith("version") for k in block):
            continue  # the banner or the "wbadmin 1.0 - Backup command-line tool" header
        ident = _identifier(block)
        if ident is None:
            problems.append(
                Problem("no version identifier (MM/DD/YYYY-HH:MM)", file, line, field="Version")
            )
            continue
        recover = tuple(p.strip() for p in block.get("can recover", "").split(",") if p.strip())
        versions.append(
            Version(ident, block.get("backup time"), block.get("backup target"), recover, line)
        )
    if problems:
        raise ManifestError(f"{file}: unreadable wbadmin output", problems=problems)
    return versions


def _blocks(text: str) -> list[tuple[int, dict[str, str]]]:
    blocks: list[tuple[int, dict[str, str]]] = []
    current: dict[str, str] = {}
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            if current:
                blocks.append((start, current))
            current = {}
            continue
        label, sep, value = raw.partition(":")
        if sep:
            start = start if current else number
            current[label.strip().lower()] = value.strip()
    if current:
        blocks.append((start, current))
    return blocks


def _identifier(block: dict[str, str]) -> str | None:
    """The identifier, from its label or (on a localised Windows) from any value."""
    values = [block.get("version identifier", ""), *block.values()]
    for value in values:
        match = _IDENT.search(value)
        if match:
            return match.group(0)
    return None


def to_raw_runs(versions: list[Version], host: str, set_name: str, kind: str) -> list[RawRun]:
    return [_run(v, host, set_name, kind) for v in versions]


def iso_time(identifier: str) -> str:
    month, day, year, hour, minute = _IDENT.fullmatch(identifier).groups()  # type: ignore[union-attr]
    return f"{year}-{month}-{day}T{hour}:{minute}:00Z"


def _run(version: Version, host: str, set_name: str, kind: str) -> RawRun:
    at = iso_time(version.identifier)
    location = f"wbadmin version {version.identifier}"
    if version.target:
        location += f" on {version.target}"
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
