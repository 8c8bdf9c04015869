"""Reading and writing ESE header bytes, with the checks ESE makes (magic, type, checksum).

The field tables are in ``layout``. The header checksum is ESE's old format
(``checksum.cxx``): 0x89ABCDEF XOR every 32-bit word of the first 4096 bytes after the
first, which holds the checksum. A database header is written twice (page 0 and its shadow
copy at offset = page size); a checkpoint file is its 4096-byte header and the same again.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from dr.errors import ESEHeaderError, Problem
from dr.exchange.ese.layout import (
    CHK_FIELDS,
    DB_FIELDS,
    DB_FLAGS,
    DB_PAGE_SIZE,
    DB_STATE,
    FLAG_SHADOWING_DISABLED,
    FLAG_SLV_EXISTS,
    LOG_CIRCULAR,
    LOG_CIRCULAR_HISTORY,
    LOG_FIELDS,
    LOG_FLAGS,
    LOG_PAGE_SIZE,
    LOG_RESERVE,
    U16,
    U32,
    read_fields,
    write_fields,
)
from dr.exchange.ese.model import CheckpointHeader, DatabaseHeader, DbState, Header, LogHeader

HEADER_BYTES = 4096
MAGIC = 0x89ABCDEF
PAGE_SIZES = (2048, 4096, 8192, 16384, 32768)
FILE_TYPE_OFFSET = 667
FT_DATABASE, FT_STREAMING, FT_LOG, FT_CHECKPOINT, FT_TEMP_DB, FT_FLUSH_MAP = 1, 2, 3, 4, 5, 7
_FILE_TYPE_NAMES = {
    FT_STREAMING: "streaming file (.stm)",
    FT_TEMP_DB: "temporary database",
    6: "FTL file",
    FT_FLUSH_MAP: "flush map (.jfm)",
}
CHECKPOINT_FILE_BYTES = 2 * HEADER_BYTES


# --------------------------------------------------------------------------- checksum


def checksum(header: bytes) -> int:
    """ESE's old-format header checksum of the first 4096 bytes (word 0 excluded)."""
    words = struct.unpack_from(f"<{HEADER_BYTES // 4}I", header)
    value = MAGIC
    for word in words[1:]:
        value ^= word
    return value


def _seal(buf: bytearray) -> bytes:
    struct.pack_into("<I", buf, 0, checksum(bytes(buf)))
    return bytes(buf)


# --------------------------------------------------------------------------- write


def database_header_bytes(h: DatabaseHeader) -> bytes:
    """Page 0 and its shadow copy: ``2 x page_size`` bytes (2 x 4096 for 2 KiB pages), with a
    valid checksum."""
    if h.page_size not in PAGE_SIZES:
        raise ValueError(f"page size {h.page_size} is not one of {PAGE_SIZES}")
    buf = bytearray(HEADER_BYTES)
    struct.pack_into("<I", buf, 4, MAGIC)
    struct.pack_into("<I", buf, DB_STATE, int(h.state))
    struct.pack_into("<I", buf, DB_PAGE_SIZE, h.page_size)
    flags = (0 if h.shadowed else FLAG_SHADOWING_DISABLED) | (FLAG_SLV_EXISTS if h.streaming else 0)
    buf[DB_FLAGS] = flags
    struct.pack_into("<I", buf, FILE_TYPE_OFFSET, FT_DATABASE)
    write_fields(buf, DB_FIELDS, h)
    page = _seal(buf).ljust(_header_page(h.page_size), b"\0")
    return page + page


def _header_page(page_size: int) -> int:
    """Bytes from page 0 to its shadow copy: the page, but at least the 4096-byte header."""
    return max(page_size, HEADER_BYTES)


def log_header_bytes(h: LogHeader) -> bytes:
    """The 4096-byte header region of a log file, with a valid checksum."""
    buf = bytearray(HEADER_BYTES)
    write_fields(buf, LOG_FIELDS, h)
    struct.pack_into("<H", buf, LOG_PAGE_SIZE, h.page_size)
    flags = (
        (LOG_RESERVE if h.reserve_log_in_use else 0)
        | (LOG_CIRCULAR if h.circular_logging else 0)
        | (LOG_CIRCULAR_HISTORY if h.circular_logging_history else 0)
    )
    buf[LOG_FLAGS] = flags
    struct.pack_into("<I", buf, FILE_TYPE_OFFSET, FT_LOG)
    return _seal(buf)


def checkpoint_bytes(h: CheckpointHeader) -> bytes:
    """A whole checkpoint file: its header and the shadow copy ESE keeps (8192 bytes)."""
    buf = bytearray(HEADER_BYTES)
    write_fields(buf, CHK_FIELDS, h)
    struct.pack_into("<I", buf, FILE_TYPE_OFFSET, FT_CHECKPOINT)
    header = _seal(buf)
    return header + header


# --------------------------------------------------------------------------- read


def _fail(message: str, field: str, offset: int, **details: Any) -> ESEHeaderError:
    return ESEHeaderError(
        message,
        hint="check that the file is a complete ESE database, log or checkpoint",
        details={"field": field, "offset": offset, **details},
    )


def _file_type(data: bytes) -> int:
    """Which header this is: the file type at 667; an older database header may leave it 0."""
    (magic,) = struct.unpack_from("<I", data, 4)
    ftype = U32.read(data, FILE_TYPE_OFFSET)
    if ftype in (FT_LOG, FT_CHECKPOINT):
        return ftype
    if magic != MAGIC:
        raise _fail(
            f"not an ESE file: no database magic 0x89ABCDEF at offset 4 (found 0x{magic:08X}) "
            f"and no log or checkpoint file type at offset {FILE_TYPE_OFFSET} (found {ftype})",
            "magic",
            4,
        )
    if ftype in (0, FT_DATABASE):
        return FT_DATABASE
    what = _FILE_TYPE_NAMES.get(ftype, "unknown")
    raise _fail(
        f"file type {ftype} ({what}) at offset {FILE_TYPE_OFFSET}: only database, log and "
        "checkpoint headers are read",
        "file type",
        FILE_TYPE_OFFSET,
    )


def _verify_checksum(data: bytes, ftype: int) -> None:
    (stored,) = struct.unpack_from("<I", data, 0)
    actual = checksum(data)
    if stored == actual:
        return
    message = (
        f"bad header checksum at offset 0: expected 0x{stored:08X} (stored), "
        f"actual 0x{actual:08X} (computed)"
    )
    differs = _first_difference_from_shadow(data, ftype)
    if differs is not None:
        message += f"; the shadow copy differs first at byte {differs}"
    raise _fail(message, "checksum", 0, expected=stored, actual=actual, differs_at=differs)


def _first_difference_from_shadow(data: bytes, ftype: int) -> int | None:
    """Where page 0 first differs from an intact shadow copy, if the bytes hold one."""
    if ftype == FT_DATABASE:
        size = _header_page(U32.read(data, DB_PAGE_SIZE))
    elif ftype == FT_CHECKPOINT:
        size = HEADER_BYTES
    else:
        return None
    shadow = data[size : size + HEADER_BYTES]
    if len(shadow) < HEADER_BYTES or struct.unpack_from("<I", shadow)[0] != checksum(shadow):
        return None
    return next((i for i in range(HEADER_BYTES) if data[i] != shadow[i]), None)


def read_header(data: bytes) -> Header:
    """The header in the first 4096+ bytes of an ESE database, log or checkpoint file.

    ESEHeaderError (details: field, offset) when the bytes are not an ESE header, the
    checksum does not match, or a field holds a value ESE never writes.
    """
    if len(data) < HEADER_BYTES:
        raise _fail(
            f"not an ESE file: only {len(data)} bytes, an ESE header needs {HEADER_BYTES}",
            "length",
            len(data),
        )
    ftype = _file_type(data)
    _verify_checksum(data, ftype)
    if ftype == FT_LOG:
        return _read_log(data)
    if ftype == FT_CHECKPOINT:
        return CheckpointHeader(**read_fields(data, CHK_FIELDS))
    return _read_database(data)


def _read_database(data: bytes) -> DatabaseHeader:
    (raw_state,) = struct.unpack_from("<I", data, DB_STATE)
    if raw_state not in DbState._value2member_map_:
        raise _fail(
            f"database state {raw_state} at offset {DB_STATE} is not one ESE uses",
            "state",
            DB_STATE,
        )
    (page_size,) = struct.unpack_from("<I", data, DB_PAGE_SIZE)
    page_size = page_size or 4096  # daedef.hxx: 0 means 4 KiB (older engines)
    if page_size not in PAGE_SIZES:
        raise _fail(
            f"page size {page_size} at offset {DB_PAGE_SIZE} is not one ESE uses",
            "page size",
            DB_PAGE_SIZE,
        )
    flags = data[DB_FLAGS]
    return DatabaseHeader(
        state=DbState(raw_state),
        page_size=page_size,
        shadowed=not flags & FLAG_SHADOWING_DISABLED,
        streaming=bool(flags & FLAG_SLV_EXISTS),
        **read_fields(data, DB_FIELDS),
    )


def _read_log(data: bytes) -> LogHeader:
    values = read_fields(data, LOG_FIELDS)
    flags = data[LOG_FLAGS]
    return LogHeader(
        page_size=U16.read(data, LOG_PAGE_SIZE) or 4096,
        circular_logging=bool(flags & LOG_CIRCULAR),
        circular_logging_history=bool(flags & LOG_CIRCULAR_HISTORY),
        reserve_log_in_use=bool(flags & LOG_RESERVE),
        **values,
    )


def read_file(path: Path) -> Header:
    """The header of the file at ``path``, reading only the header bytes (and a shadow copy).

    Errors name the file and the byte offset; an unreadable file is ESEHeaderError too.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEADER_BYTES)
            more = 2 * max(PAGE_SIZES) if _is_database(head) else 2 * HEADER_BYTES
            data = head + fh.read(more - len(head))
    except OSError as exc:
        raise ESEHeaderError(
            f"cannot read {path}: {exc.strerror or exc}",
            problems=[Problem(f"cannot read the file: {exc.strerror or exc}", str(path))],
        ) from exc
    try:
        return read_header(data)
    except ESEHeaderError as exc:
        where = f"offset {exc.details['offset']} ({exc.details['field']})"
        raise ESEHeaderError(
            exc.message,
            hint=exc.hint,
            problems=[Problem(exc.message, str(path), field=where)],
            details={**exc.details, "file": str(path)},
        ) from None


def stored_checksum(path: Path) -> int:
    """The checksum word a file's header carries (what ``eseutil /mh`` prints)."""
    with open(path, "rb") as fh:
        return int.from_bytes(fh.read(4), "little")


def _is_database(head: bytes) -> bool:
    return len(head) >= 8 and struct.unpack_from("<I", head, 4)[0] == MAGIC
