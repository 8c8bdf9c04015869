"""Manifest records: checked field by field, located by line, turned into runs to record.

JSON, CSV and wbadmin inputs are first turned into :class:`RawRun` values (plain dicts that
know the line they start on), then checked here (:mod:`dr.catalog.importers.fields`) and
resolved against the inventory. Every problem is reported as ``file:line: field: what is
wrong``. A JSON record only works out the line of each of its fields when it has a problem
(``RawRun.locate``), so a clean million-record manifest never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dr.catalog.importers.fields import (
    ARTIFACT_FIELDS,
    ARTIFACT_REQUIRED,
    RUN_FIELDS,
    RUN_REQUIRED,
    check_fields,
)
from dr.catalog.model import STREAM_KINDS, NewArtifact, NewRun, SetRecord
from dr.errors import ManifestError, Problem

if TYPE_CHECKING:
    from dr.catalog.importers.resolve import Resolver

#: (artifact index or None for the run itself, field, message)
_Found = tuple[int | None, str | None, str]


@dataclass(slots=True)
class RawRecord:
    """One record as read: its values, its line, and (once located) each field's line."""

    data: dict[str, Any]
    line: int
    field_lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, name: str | None) -> int:
        return self.field_lines.get(name or "", self.line)


@dataclass(slots=True)
class RawRun:
    """A run as read, with its artifacts; ``locate`` fills in field lines when needed."""

    record: RawRecord
    artifacts: list[RawRecord] = field(default_factory=list)
    locate: Callable[[RawRun], None] | None = None
    problems: list[Problem] = field(default_factory=list)  # found while reading


def fail(problems: list[Problem], file: str) -> ManifestError:
    count = len(problems)
    return ManifestError(
        f"{file}: {count} invalid record{'s' if count != 1 else ''}; nothing was imported",
        hint="fix the lines named and import the file again",
        problems=problems,
    )


def to_new_run(
    raw: RawRun, sets: dict[str, SetRecord], resolve: Resolver, file: str
) -> tuple[NewRun | None, list[Problem]]:
    """The run to record, or every problem of the record with its line and field."""
    values, found = _run_values(raw, sets)
    artifacts: list[NewArtifact] = []
    host = values.get("host")
    for index, item in enumerate(raw.artifacts):
        artifact, more = _artifact(item, index, host, resolve)
        found += more
        if artifact is not None:
            artifacts.append(artifact)
    if found or raw.problems:
        return None, raw.problems + _problems(raw, found, file)
    return _new_run(values, raw.record.line, artifacts), []


def _run_values(raw: RawRun, sets: dict[str, SetRecord]) -> tuple[dict[str, Any], list[_Found]]:
    values, problems = check_fields(raw.record.data, RUN_FIELDS, RUN_REQUIRED)
    found: list[_Found] = [(None, name, message) for name, message in problems]
    if "set" in values and "host" in values:
        found += set_problems(values["set"], values["host"], sets)
    start, end = values.get("start"), values.get("end")
    if start is not None and end is not None and end < start:
        found.append((None, "end", "the run ends before it starts"))
    return values, found


def set_problems(name: str, host: str, sets: dict[str, SetRecord]) -> list[_Found]:
    record = sets.get(name)
    if record is None:
        message = (
            f"unknown backup set {name!r}: declare it under backup_sets in the inventory "
            "or create it with `dr set add`"
        )
        return [(None, "set", message)]
    if record.definition.host.casefold() != host.casefold():
        message = f"set {name!r} belongs to host {record.definition.host}, not {host}"
        return [(None, "host", message)]
    return []


def _problems(raw: RawRun, found: list[_Found], file: str) -> list[Problem]:
    if found and raw.locate is not None:
        raw.locate(raw)
    problems = []
    for index, name, message in found:
        record = raw.record if index is None else raw.artifacts[index]
        shown = name if index is None else f"artifacts[{index}].{name}"
        problems.append(Problem(message, file, record.line_of(name), field=shown))
    return problems


def _new_run(values: dict[str, Any], line: int, artifacts: list[NewArtifact]) -> NewRun:
    return NewRun(
        set_name=values["set"],
        host=values["host"],
        backup_type=values["type"],
        started=values["start"],
        ended=values["end"],
        status=values.get("status", "success"),
        error=values.get("error"),
        source=values.get("source", "import"),
        compression=values.get("compression"),
        artifacts=tuple(artifacts),
        line=line,
    )


def _artifact(
    raw: RawRecord, index: int, host: str | None, resolve: Resolver
) -> tuple[NewArtifact | None, list[_Found]]:
    values, problems = check_fields(raw.data, ARTIFACT_FIELDS, ARTIFACT_REQUIRED)
    found: list[_Found] = [(index, name, message) for name, message in problems]
    if problems or host is None:
        return None, found
    found += [(index, name, message) for name, message in _range_problems(values)]
    try:
        sg, db = resolve(host, values.pop("storage_group", None), values.pop("database", None))
    except ManifestError as exc:
        found.append((index, str(exc.details.get("field", "storage_group")), exc.message))
        return None, found
    if found:
        return None, found
    return _new_artifact(values, sg, db, resolve, raw.line), []


def _new_artifact(
    values: dict[str, Any], sg: str | None, db: str | None, resolve: Resolver, line: int
) -> NewArtifact:
    prefix = values.get("log_prefix")
    if prefix is not None:
        values["log_prefix"] = prefix.upper()
    if sg is not None and values.get("circular_logging") is None:
        values["circular_logging"] = resolve.circular_logging(sg)
    mounted = values.pop("mounted", True)
    return NewArtifact(storage_group=sg, database=db, database_mounted=mounted, line=line, **values)


_PAIRS = (("first_gen", "last_gen"), ("log_required_first", "log_required_last"))


def _range_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    for lo_name, hi_name in _PAIRS:
        lo, hi = values.get(lo_name), values.get(hi_name)
        if (lo is None) != (hi is None):
            missing = hi_name if hi is None else lo_name
            problems.append((missing, f"give both {lo_name} and {hi_name}, or neither"))
        elif lo is not None and hi < lo:
            problems.append((hi_name, f"{hi_name} ({hi}) is before {lo_name} ({lo})"))
    kind = values["kind"]
    if kind == "logs" and (values.get("first_gen") is None or values.get("log_prefix") is None):
        problems.append(("kind", "a logs artifact needs log_prefix, first_gen and last_gen"))
    if kind in STREAM_KINDS and not values.get("storage_group"):
        problems.append(
            ("storage_group", f"a {kind} artifact needs storage_group (SG or SERVER/SG)")
        )
    return problems
