"""Manifest records: the shape every import format is checked against, with line numbers.

JSON, CSV and wbadmin inputs are first turned into :class:`RawRun` values (plain dicts that
remember where each field was written), then validated here with pydantic and resolved
against the inventory. Every problem is reported as ``file:line: field: what is wrong``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from dr.catalog.model import NewArtifact, NewRun
from dr.errors import ManifestError, Problem

ArtifactKind = Literal[
    "database",
    "stm",
    "logs",
    "checkpoint",
    "system-state",
    "system-image",
    "iis-metabase",
    "kms-database",
    "ca-database",
    "ca-certificates",
    "mailbox-items",
    "server-config",
    "disk-image",
    "files",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestArtifact(_Strict):
    kind: ArtifactKind
    name: str = Field(min_length=1)
    size: int = Field(ge=0)
    stored_size: int | None = Field(default=None, ge=0)
    storage_group: str | None = None
    database: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    location: str | None = None
    state: str | None = None
    log_required_first: int | None = Field(default=None, ge=0)
    log_required_last: int | None = Field(default=None, ge=0)
    db_signature: str | None = None
    log_prefix: str | None = Field(default=None, pattern=r"^[Ee][0-9A-Fa-f]{2}$")
    first_gen: int | None = Field(default=None, ge=1)
    last_gen: int | None = Field(default=None, ge=1)
    log_signature: str | None = None
    mailbox: str | None = None
    item_count: int | None = Field(default=None, ge=0)
    mounted: bool = True
    circular_logging: bool | None = None


class ManifestRun(_Strict):
    set: str = Field(min_length=1)
    host: str = Field(min_length=1)
    type: Literal["full", "copy", "incremental", "differential"]
    start: AwareDatetime
    end: AwareDatetime
    status: Literal["success", "warning", "failed"] = "success"
    error: str | None = None
    source: str = "import"
    compression: Literal["fast", "normal"] | None = None
    artifacts: list[ManifestArtifact] = Field(default_factory=list)


@dataclass
class RawRecord:
    """One record as read: its values and the line each field was written on."""

    data: dict[str, Any]
    line: int
    field_lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, name: str | None) -> int:
        return self.field_lines.get(name or "", self.line)


@dataclass
class RawRun:
    record: RawRecord
    artifacts: list[RawRecord] = field(default_factory=list)


def _message(error: Any) -> str:
    text = str(error.get("msg", "invalid"))
    if error.get("type") == "timezone_aware":
        return "a time needs a time zone: write it like 2024-05-01T21:00:00Z (UTC)"
    if error.get("type") == "extra_forbidden":
        return "unknown field (see docs/catalog.md for the fields a record may have)"
    if error.get("type") == "literal_error":
        return text.replace("Input should be", "must be")
    return text


def validate_run(raw: RawRun, file: str) -> tuple[ManifestRun | None, list[Problem]]:
    """The run as a model, or the problems with their file:line and field."""
    data = dict(raw.record.data)
    data["artifacts"] = [a.data for a in raw.artifacts]
    try:
        return ManifestRun.model_validate(data), []
    except ValidationError as exc:
        return None, [_problem(raw, error, file) for error in exc.errors()]


def _problem(raw: RawRun, error: Any, file: str) -> Problem:
    loc = list(error.get("loc", ()))
    record, prefix = raw.record, ""
    if len(loc) >= 2 and loc[0] == "artifacts" and isinstance(loc[1], int):
        record = raw.artifacts[loc[1]]
        prefix = f"artifacts[{loc[1]}]."
        loc = loc[2:]
    name = str(loc[0]) if loc else None
    shown = f"{prefix}{name}" if name else prefix.rstrip(".") or None
    return Problem(_message(error), file=file, line=record.line_of(name), field=shown)


def fail(problems: list[Problem], file: str) -> ManifestError:
    count = len(problems)
    return ManifestError(
        f"{file}: {count} invalid record{'s' if count != 1 else ''}; nothing was imported",
        hint="fix the lines named and import the file again",
        problems=problems,
    )


Resolver = Callable[[str, str | None, str | None], tuple[str | None, str | None]]


def to_new_run(
    model: ManifestRun, raw: RawRun, resolve: Resolver, file: str
) -> tuple[NewRun | None, list[Problem]]:
    """Resolve storage groups / databases to canonical keys and build the NewRun."""
    problems: list[Problem] = []
    artifacts: list[NewArtifact] = []
    for index, (item, where) in enumerate(zip(model.artifacts, raw.artifacts, strict=True)):
        artifact, found = _artifact(item, where, index, model.host, resolve, file)
        problems.extend(found)
        if artifact is not None:
            artifacts.append(artifact)
    if model.end < model.start:
        line = raw.record.line_of("end")
        problems.append(Problem("the run ends before it starts", file, line, field="end"))
    if problems:
        return None, problems
    return _new_run(model, raw, artifacts), []


def _new_run(model: ManifestRun, raw: RawRun, artifacts: list[NewArtifact]) -> NewRun:
    return NewRun(
        set_name=model.set,
        host=model.host,
        backup_type=model.type,
        started=_utc(model.start),
        ended=_utc(model.end),
        status=model.status,
        error=model.error,
        source=model.source,
        compression=model.compression,
        artifacts=tuple(artifacts),
        line=raw.record.line,
    )


def _utc(value: datetime) -> datetime:
    from datetime import UTC

    return value.astimezone(UTC)


def _artifact(
    item: ManifestArtifact, raw: RawRecord, index: int, host: str, resolve: Resolver, file: str
) -> tuple[NewArtifact | None, list[Problem]]:
    try:
        sg, db = resolve(host, item.storage_group, item.database)
    except ManifestError as exc:
        name = str(exc.details.get("field", "storage_group"))
        where = raw.line_of(name)
        return None, [Problem(exc.message, file, where, field=f"artifacts[{index}].{name}")]
    problems = _range_problems(item, raw, index, file)
    if problems:
        return None, problems
    values = item.model_dump(exclude={"storage_group", "database", "mounted"})
    values["log_prefix"] = item.log_prefix.upper() if item.log_prefix else None
    return (
        NewArtifact(
            storage_group=sg, database=db, database_mounted=item.mounted, line=raw.line, **values
        ),
        [],
    )


def _range_problems(item: ManifestArtifact, raw: RawRecord, index: int, file: str) -> list[Problem]:
    problems = []
    pairs = (("first_gen", "last_gen"), ("log_required_first", "log_required_last"))
    for lo_name, hi_name in pairs:
        lo, hi = getattr(item, lo_name), getattr(item, hi_name)
        if (lo is None) != (hi is None):
            missing = hi_name if hi is None else lo_name
            message = f"give both {lo_name} and {hi_name}, or neither"
            field = f"artifacts[{index}].{missing}"
            problems.append(Problem(message, file, raw.line_of(missing), field=field))
        elif lo is not None and hi < lo:
            message = f"{hi_name} ({hi}) is before {lo_name} ({lo})"
            field = f"artifacts[{index}].{hi_name}"
            problems.append(Problem(message, file, raw.line_of(hi_name), field=field))
    if item.kind == "logs" and (item.first_gen is None or item.log_prefix is None):
        message = "a logs artifact needs log_prefix, first_gen and last_gen"
        problems.append(Problem(message, file, raw.line, field=f"artifacts[{index}].kind"))
    if item.kind in ("database", "stm", "logs", "checkpoint") and not item.storage_group:
        message = f"a {item.kind} artifact needs storage_group (SG or SERVER/SG)"
        field = f"artifacts[{index}].storage_group"
        problems.append(Problem(message, file, raw.line, field=field))
    return problems
