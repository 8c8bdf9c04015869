"""The byte layout of ESE headers: small codecs and one field table per header kind.

Offsets are those of the ESE source (``daedef.hxx`` DBFILEHDR, ``log.hxx`` LGFILEHDR_FIXED
and CHECKPOINT_FIXED), all values little-endian. The same table reads and writes a header,
so what is read is exactly what is written.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Protocol

from dr.exchange.ese.model import BackupInfo, BackupKind, LgPos, LogTime, Signature


class Codec(Protocol):
    def read(self, data: bytes, offset: int) -> Any: ...
    def write(self, buf: bytearray, offset: int, value: Any) -> None: ...


@dataclass(frozen=True)
class _Int:
    fmt: str

    def read(self, data: bytes, offset: int) -> int:
        return int(struct.unpack_from(self.fmt, data, offset)[0])

    def write(self, buf: bytearray, offset: int, value: int) -> None:
        struct.pack_into(self.fmt, buf, offset, value)


@dataclass(frozen=True)
class _Ints:
    fmt: str

    def read(self, data: bytes, offset: int) -> tuple[int, ...]:
        return tuple(struct.unpack_from(self.fmt, data, offset))

    def write(self, buf: bytearray, offset: int, value: tuple[int, ...]) -> None:
        struct.pack_into(self.fmt, buf, offset, *value)


@dataclass(frozen=True)
class _Time:
    optional: bool = True

    def read(self, data: bytes, offset: int) -> LogTime | None:
        raw = data[offset : offset + 8]
        return LogTime.unpack(raw) if self.optional else LogTime.decode(raw)

    def write(self, buf: bytearray, offset: int, value: LogTime | None) -> None:
        buf[offset : offset + 8] = value.pack() if value else bytes(8)


@dataclass(frozen=True)
class _Pos:
    optional: bool = True

    def read(self, data: bytes, offset: int) -> LgPos | None:
        raw = data[offset : offset + 8]
        return LgPos.unpack(raw) if self.optional else LgPos.decode(raw)

    def write(self, buf: bytearray, offset: int, value: LgPos | None) -> None:
        buf[offset : offset + 8] = value.pack() if value else bytes(8)


SIGNATURE_BYTES = 28


@dataclass(frozen=True)
class _Sig:
    optional: bool = True

    def read(self, data: bytes, offset: int) -> Signature | None:
        raw = data[offset : offset + SIGNATURE_BYTES]
        if self.optional and not any(raw):
            return None
        (random,) = struct.unpack_from("<I", raw)
        name = raw[12:28].split(b"\0", 1)[0].decode("latin-1")
        return Signature(random, LogTime.decode(raw[4:12]), name)

    def write(self, buf: bytearray, offset: int, value: Signature | None) -> None:
        if value is None:
            buf[offset : offset + SIGNATURE_BYTES] = bytes(SIGNATURE_BYTES)
            return
        name = value.computer.encode("latin-1")
        if len(name) > 15 or b"\0" in name:
            raise ValueError(f"computer name {value.computer!r} does not fit 15 bytes")
        packed = struct.pack("<I", value.random) + value.created.pack() + name.ljust(16, b"\0")
        buf[offset : offset + SIGNATURE_BYTES] = packed


@dataclass(frozen=True)
class _Backup:
    """A 24-byte BKINFO, with its backup type kept at ``kind_offset`` (if the header has one)."""

    kind_offset: int | None = None

    def read(self, data: bytes, offset: int) -> BackupInfo | None:
        raw = data[offset : offset + 24]
        kind = _Int("<I").read(data, self.kind_offset) if self.kind_offset is not None else 0
        if not any(raw) and kind == 0:
            return None
        low, high = struct.unpack_from("<II", raw, 16)
        return BackupInfo(LgPos.decode(raw), LogTime.unpack(raw[8:16]), low, high, BackupKind(kind))

    def write(self, buf: bytearray, offset: int, value: BackupInfo | None) -> None:
        if value is None:
            return
        buf[offset : offset + 8] = value.mark.pack()
        buf[offset + 8 : offset + 16] = value.time.pack() if value.time else bytes(8)
        struct.pack_into("<II", buf, offset + 16, value.gen_low, value.gen_high)
        if self.kind_offset is not None:
            struct.pack_into("<I", buf, self.kind_offset, int(value.kind))
        elif value.kind != BackupKind.NORMAL:
            raise ValueError("this backup record has no backup type field")


U16, U32, S32, U64 = _Int("<H"), _Int("<I"), _Int("<i"), _Int("<Q")

DB_FIELDS: tuple[tuple[str, int, Codec], ...] = (
    ("format_version", 8, U32),
    ("dbtime", 16, U64),
    ("db_signature", 24, _Sig(optional=False)),
    ("last_consistent", 56, _Pos()),
    ("consistent_time", 64, _Time()),
    ("attach_time", 72, _Time()),
    ("last_attach", 80, _Pos()),
    ("detach_time", 88, _Time()),
    ("last_detach", 96, _Pos()),
    ("dbid", 104, U32),
    ("log_signature", 108, _Sig()),
    ("previous_full", 136, _Backup(356)),
    ("previous_incremental", 160, _Backup(360)),
    ("current_full", 184, _Backup()),
    ("last_objid", 212, U32),
    ("os_version", 216, _Ints("<IIII")),
    ("update_major", 232, U32),
    ("repair_count", 240, U32),
    ("repair_time", 244, _Time()),
    ("gen_min_required", 296, U32),
    ("gen_max_required", 300, U32),
    ("current_snapshot", 316, _Backup()),
    ("create_version", 340, U32),
    ("create_update", 344, U32),
    ("gen_max_committed_time", 348, _Time()),
    ("gen_max_committed", 416, U32),
    ("previous_copy", 420, _Backup(468)),
    ("previous_differential", 444, _Backup(472)),
    ("gen_recovering", 536, U32),
    ("gen_min_consistent", 640, U32),
    ("update_minor", 644, U32),
    ("attached_by", 648, U32),
    ("gen_max_required_time", 672, _Time()),
    ("pre_redo_min_consistent", 680, U32),
    ("pre_redo_min_required", 684, U32),
)
DB_STATE, DB_FLAGS, DB_PAGE_SIZE = 52, 208, 236
FLAG_SHADOWING_DISABLED, FLAG_SLV_EXISTS = 0x01, 0x04

LOG_FIELDS: tuple[tuple[str, int, Codec], ...] = (
    ("generation", 4, S32),
    ("sector_size", 8, U16),
    ("header_sectors", 10, U16),
    ("sectors", 12, U16),
    ("created", 16, _Time(optional=False)),
    ("previous_created", 24, _Time()),
    ("version", 32, _Ints("<III")),
    ("signature", 44, _Sig(optional=False)),
    ("checkpoint", 640, _Pos()),
    ("update_minor", 648, U32),
)
LOG_PAGE_SIZE, LOG_FLAGS = 14, 639
LOG_RESERVE, LOG_CIRCULAR, LOG_CIRCULAR_HISTORY = 0x01, 0x02, 0x04

CHK_FIELDS: tuple[tuple[str, int, Codec], ...] = (
    ("last_full_backup_checkpoint", 4, _Pos()),
    ("checkpoint", 12, _Pos(optional=False)),
    ("signature", 20, _Sig(optional=False)),
    ("full_backup", 615, _Pos()),
    ("full_backup_time", 623, _Time()),
    ("incremental_backup", 631, _Pos()),
    ("incremental_backup_time", 639, _Time()),
    ("db_consistency", 648, _Pos()),
)


def read_fields(data: bytes, table: tuple[tuple[str, int, Codec], ...]) -> dict[str, Any]:
    return {name: codec.read(data, offset) for name, offset, codec in table}


def write_fields(buf: bytearray, table: tuple[tuple[str, int, Codec], ...], obj: Any) -> None:
    for name, offset, codec in table:
        codec.write(buf, offset, getattr(obj, name))
