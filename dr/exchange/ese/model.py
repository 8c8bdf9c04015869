"""What an ESE file header says: database, log and checkpoint headers as plain values.

Field meanings and offsets are those of the ESE source (``daedef.hxx``, ``log.hxx``), as
listed in docs/exchange-rules.md, "Reading ESE headers". Nothing here reads or writes bytes
except the small 8-byte LOGTIME / LGPOS codecs, which belong with their types.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum


class DbState(IntEnum):
    """``JET_dbstate*`` (jethdr.w), offset 52 of a database header."""

    JUST_CREATED = 1
    DIRTY_SHUTDOWN = 2
    CLEAN_SHUTDOWN = 3
    BEING_CONVERTED = 4
    FORCE_DETACH_REPLAY_ERROR = 5
    INCREMENTAL_RESEED_IN_PROGRESS = 6
    DIRTY_AND_PATCHED_SHUTDOWN = 7
    REVERT_IN_PROGRESS = 8

    @property
    def text(self) -> str:
        """The words ``eseutil /mh`` prints after ``State:`` (``rgszDBState``, dbdump.cxx)."""
        return _STATE_TEXT[self]


_STATE_TEXT = {
    DbState.JUST_CREATED: "Just Created",
    DbState.DIRTY_SHUTDOWN: "Dirty Shutdown",
    DbState.CLEAN_SHUTDOWN: "Clean Shutdown",
    DbState.BEING_CONVERTED: "Being Converted",
    DbState.FORCE_DETACH_REPLAY_ERROR: "Force Detach Replay Error",
    DbState.INCREMENTAL_RESEED_IN_PROGRESS: "Incremental Reseed In Progress",
    DbState.DIRTY_AND_PATCHED_SHUTDOWN: "Dirty and Patched Shutdown",
    DbState.REVERT_IN_PROGRESS: "Database Revert in Progress",
}


class BackupKind(IntEnum):
    """How a previous backup was taken (``bkinfoType*``): printed after ``Log Gen:``."""

    NORMAL = 0
    OS_SNAPSHOT = 1  # VSS
    SNAPSHOT = 2


@dataclass(frozen=True)
class LogTime:
    """An ESE LOGTIME: 8 bytes, month 1-12 as real dumps show, year from 1900."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    millisecond: int = 0
    utc: bool = True

    @classmethod
    def from_datetime(cls, dt: datetime) -> LogTime:
        """A LOGTIME for ``dt``; an aware datetime is converted to UTC, a naive one is local."""
        utc = dt.tzinfo is not None
        if utc:
            dt = dt.astimezone(UTC)
        return cls(
            dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond // 1000, utc
        )

    def to_datetime(self) -> datetime:
        """The time as a datetime (aware when UTC); ValueError for an impossible date."""
        tz = UTC if self.utc else None
        return datetime(
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.millisecond * 1000,
            tzinfo=tz,
        )

    def pack(self) -> bytes:
        """The 8 bytes; ValueError when a part does not fit its bits."""
        parts = (self.second, self.minute, self.hour, self.day, self.month, self.year - 1900)
        if not all(0 <= p <= 255 for p in parts) or not 0 <= self.millisecond <= 1023:
            raise ValueError(f"{self!r} does not fit an ESE LOGTIME")
        low = (self.millisecond & 0x7F) << 1 | int(self.utc)
        high = (self.millisecond >> 7) << 1
        return bytes((*parts, low, high))

    @classmethod
    def decode(cls, raw: bytes) -> LogTime:
        """The 8 bytes as they are, zero included (``00/00/1900 00:00:00``)."""
        sec, minute, hour, day, month, year, low, high = raw[:8]
        millisecond = (low >> 1) | ((high >> 1) & 0x7) << 7
        return cls(1900 + year, month, day, hour, minute, sec, millisecond, bool(low & 1))

    @classmethod
    def unpack(cls, raw: bytes) -> LogTime | None:
        """The time, or None when all 8 bytes are zero (unset)."""
        return None if not any(raw[:8]) else cls.decode(raw)

    def text(self, *, millis: bool = True) -> str:
        """As eseutil prints it: ``MM/DD/YYYY HH:MM:SS[.mmm]``."""
        base = (
            f"{self.month:02d}/{self.day:02d}/{self.year:04d} "
            f"{self.hour:02d}:{self.minute:02d}:{self.second:02d}"
        )
        return f"{base}.{self.millisecond:03d}" if millis else base

    def iso(self) -> str:
        """ISO 8601, with ``Z`` when the time is UTC (local times carry no zone)."""
        return (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d}T{self.hour:02d}:"
            f"{self.minute:02d}:{self.second:02d}.{self.millisecond:03d}"
            + ("Z" if self.utc else "")
        )


UNSET_TIME = LogTime.decode(bytes(8))


def time_text(t: LogTime | None, *, millis: bool = True) -> str:
    """A time or the unset one, as eseutil prints both."""
    return (t or UNSET_TIME).text(millis=millis)


_LGPOS = struct.Struct("<HHi")  # ib (byte offset), isec (sector), lGeneration


@dataclass(frozen=True)
class LgPos:
    """A log position: generation, sector within it, byte offset within the sector."""

    generation: int
    sector: int = 0
    offset: int = 0

    def pack(self) -> bytes:
        return _LGPOS.pack(self.offset, self.sector, self.generation)

    @classmethod
    def decode(cls, raw: bytes) -> LgPos:
        offset, sector, generation = _LGPOS.unpack_from(raw)
        return cls(generation, sector, offset)

    @classmethod
    def unpack(cls, raw: bytes) -> LgPos | None:
        """The position, or None when all 8 bytes are zero."""
        return None if not any(raw[:8]) else cls.decode(raw)

    def __str__(self) -> str:
        return f"(0x{self.generation:X},{self.sector:X},{self.offset:X})"


def lgpos_text(pos: LgPos | None) -> str:
    return str(pos or LgPos(0))


@dataclass(frozen=True)
class Signature:
    """A SIGNATURE: random number, creation time, NetBIOS name (blank in Exchange files)."""

    random: int
    created: LogTime
    computer: str = ""

    def text(self, *, millis: bool = True) -> str:
        """``Create time:MM/DD/YYYY HH:MM:SS.mmm Rand:N Computer:NAME`` (SigToSz, daedef.hxx)."""
        created = self.created.text(millis=millis)
        return f"Create time:{created} Rand:{self.random} Computer:{self.computer}"

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class BackupInfo:
    """A BKINFO: where and when a backup was marked and the log generations it holds."""

    mark: LgPos
    time: LogTime | None
    gen_low: int
    gen_high: int
    kind: BackupKind = BackupKind.NORMAL


@dataclass(frozen=True)
class DatabaseHeader:
    """Page 0 of an ESE database (``DBFILEHDR``), the fields ``eseutil /mh`` shows."""

    state: DbState
    page_size: int
    db_signature: Signature
    log_signature: Signature | None
    gen_min_required: int
    gen_max_required: int
    gen_max_committed: int
    dbtime: int = 0
    format_version: int = 0x620
    update_major: int = 20
    streaming: bool = False  # the database has a streaming file (.stm): Exchange 2000 / 2003
    last_consistent: LgPos | None = None
    consistent_time: LogTime | None = None
    last_attach: LgPos | None = None
    attach_time: LogTime | None = None
    last_detach: LgPos | None = None
    detach_time: LogTime | None = None
    repair_count: int = 0
    repair_time: LogTime | None = None
    previous_full: BackupInfo | None = None
    previous_incremental: BackupInfo | None = None
    previous_copy: BackupInfo | None = None
    previous_differential: BackupInfo | None = None
    current_full: BackupInfo | None = None
    os_version: tuple[int, int, int, int] = (10, 0, 14393, 0)  # major, minor, build, SP
    current_snapshot: BackupInfo | None = None
    update_minor: int = 0
    shadowed: bool = True
    dbid: int = 1
    last_objid: int = 0
    create_version: int = 0x620
    create_update: int = 20
    gen_min_consistent: int = 0
    gen_recovering: int = 0
    gen_max_required_time: LogTime | None = None
    gen_max_committed_time: LogTime | None = None
    pre_redo_min_required: int = 0
    pre_redo_min_consistent: int = 0
    attached_by: int = 0

    @property
    def log_required(self) -> tuple[int, int]:
        return (self.gen_min_required, self.gen_max_required)


@dataclass(frozen=True)
class LogHeader:
    """The header of a transaction log (``LGFILEHDR_FIXED``), the fields ``/ml`` uses."""

    generation: int
    signature: Signature
    created: LogTime
    previous_created: LogTime | None
    page_size: int
    sector_size: int = 512
    sectors: int = 2048  # a 1 MiB log of 512-byte sectors (Exchange 2007+)
    circular_logging: bool = False
    version: tuple[int, int, int] = (8, 4000, 90)  # major, minor, update major
    header_sectors: int = 8
    circular_logging_history: bool = False
    reserve_log_in_use: bool = False
    checkpoint: LgPos | None = None  # the checkpoint when the log was created
    update_minor: int = 0


@dataclass(frozen=True)
class CheckpointHeader:
    """A checkpoint file (``CHECKPOINT_FIXED``): where replay would start, backup positions."""

    checkpoint: LgPos
    signature: Signature
    full_backup: LgPos | None = None
    full_backup_time: LogTime | None = None
    incremental_backup: LgPos | None = None
    incremental_backup_time: LogTime | None = None
    db_consistency: LgPos | None = None
    last_full_backup_checkpoint: LgPos | None = None


Header = DatabaseHeader | LogHeader | CheckpointHeader
