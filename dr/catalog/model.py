"""What the catalog holds, as frozen values: runs, artifacts, registered sets, reports.

Every datetime here is timezone-aware UTC. The catalog stores them as whole seconds since
the epoch so that range queries and sorting stay cheap on a million rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from dr.model.sets import BackupSet

BackupType = Literal["full", "copy", "incremental", "differential"]
RunStatus = Literal["success", "warning", "failed"]

BACKUP_TYPES: tuple[str, ...] = ("full", "copy", "incremental", "differential")
RUN_STATUSES: tuple[str, ...] = ("success", "warning", "failed")
ARTIFACT_KINDS: tuple[str, ...] = (
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
    "mailbox-counts",
    "server-config",
    "disk-image",
    "files",
)
#: Kinds that are facts recorded with a run, not files: nothing of theirs is stored, fetched
#: or restored (``mailbox-counts``: a mailbox's item count when the backup was taken).
FACT_KINDS: frozenset[str] = frozenset({"mailbox-counts"})
#: Kinds that belong to an Exchange log stream (they carry a storage group key).
STREAM_KINDS: frozenset[str] = frozenset({"database", "stm", "logs", "checkpoint"})


def to_epoch(value: datetime) -> int:
    """Whole seconds since the epoch; refuses naive datetimes (they hide a timezone bug)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: the catalog only stores timezone-aware times")
    return int(value.timestamp())


def from_epoch(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


@dataclass(frozen=True)
class Run:
    """One backup run of one set on one host."""

    id: int
    set_name: str
    host: str
    backup_type: BackupType
    started: datetime
    ended: datetime
    status: RunStatus
    error: str | None
    source: str
    compression: str


@dataclass(frozen=True)
class Artifact:
    """One thing a run stored: a database file, a log range, a system-state image, ...

    ``backup_type`` is the type this artifact was recorded as: the run's type, except that a
    full of a dismounted database is recorded as a copy for that stream.
    """

    id: int
    run_id: int
    kind: str
    host: str
    storage_group: str | None
    database: str | None
    name: str
    size: int
    stored_size: int
    sha256: str | None
    location: str | None
    state: str | None
    log_required_first: int | None
    log_required_last: int | None
    db_signature: str | None
    log_prefix: str | None
    first_gen: int | None
    last_gen: int | None
    log_signature: str | None
    mailbox: str | None
    item_count: int | None
    expired: bool
    backup_type: BackupType = "full"

    @property
    def is_media(self) -> bool:
        """An NTBackup media file (``.bkf``) of a storage group: one file holding every
        database of the group and the logs from ``first_gen`` to ``last_gen``."""
        return self.database is None and self.name.lower().endswith(".bkf")

    @property
    def holds_logs(self) -> bool:
        """Carries a range of log generations: a log backup, or a media file with its logs."""
        return (
            (self.kind == "logs" or self.is_media)
            and self.first_gen is not None
            and self.last_gen is not None
        )


@dataclass(frozen=True, slots=True)
class NewArtifact:
    """An artifact to record (no id yet). ``line`` is where it came from, for errors."""

    kind: str
    name: str
    size: int
    stored_size: int | None = None
    storage_group: str | None = None
    database: str | None = None
    sha256: str | None = None
    location: str | None = None
    state: str | None = None
    log_required_first: int | None = None
    log_required_last: int | None = None
    db_signature: str | None = None
    log_prefix: str | None = None
    first_gen: int | None = None
    last_gen: int | None = None
    log_signature: str | None = None
    mailbox: str | None = None
    item_count: int | None = None
    database_mounted: bool = True
    circular_logging: bool | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to record. ``compression`` None means: the set's compression at ``started``."""

    set_name: str
    host: str
    backup_type: BackupType
    started: datetime
    ended: datetime
    status: RunStatus = "success"
    error: str | None = None
    source: str = "dr"
    compression: str | None = None
    artifacts: tuple[NewArtifact, ...] = ()
    line: int | None = None

    @property
    def key(self) -> str:
        """What makes a run the same run when a manifest is imported again."""
        return f"{self.set_name}|{self.host.upper()}|{to_epoch(self.started)}|{self.backup_type}"


@dataclass(frozen=True)
class CompressionChange:
    """A compression setting and the time from which runs use it (A4)."""

    compression: str
    effective: datetime


@dataclass(frozen=True)
class SetRecord:
    """A backup set as registered: its definition, when, and its compression history."""

    definition: BackupSet
    created: datetime
    compression_history: tuple[CompressionChange, ...] = ()

    @property
    def name(self) -> str:
        return self.definition.name

    def compression_at(self, when: datetime) -> str:
        """The compression a run starting at ``when`` used: later changes do not apply."""
        current = self.compression_history[0].compression if self.compression_history else "fast"
        for change in self.compression_history:
            if change.effective <= when:
                current = change.compression
        return current


@dataclass(frozen=True)
class ImportReport:
    """What an import did: runs added, runs already present, artifacts added, sets added."""

    file: str
    format: str
    runs_added: int = 0
    runs_skipped: int = 0
    artifacts_added: int = 0
    sets_registered: tuple[str, ...] = field(default_factory=tuple)
    converted_to_copy: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "format": self.format,
            "runs_added": self.runs_added,
            "runs_skipped": self.runs_skipped,
            "artifacts_added": self.artifacts_added,
            "sets_registered": list(self.sets_registered),
            "converted_to_copy": list(self.converted_to_copy),
        }
