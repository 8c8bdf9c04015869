"""The lab's Exchange store files: ESE-layout databases and logs that carry real mail.

A database file is page-structured the way ESE lays it out: the header in page 0 with its
shadow copy in page 1 (:mod:`dr.exchange.ese`, the real field offsets), then data pages
``1..N`` at ``(N + 1) × page size``. Each data page holds the messages whose key hashes to
it, with the *dbtime* of the last transaction applied to it and a CRC, so a flipped byte is
found by ``eseutil /k`` and refused on replay (-1018), as ESE does with a page checksum.

A log generation is a real ESE log-file header (generation, log signature, creation time)
followed by redo records, one JSON line each behind its CRC. A record names the database,
the page and the transaction (deliver, move, delete) and carries the dbtime it produces.
Replay applies a record only to a page whose dbtime is lower — what makes ESE's redo
idempotent — so replaying the logs is what brings a restored database forward, and a
database restored from a full backup plus its logs ends with exactly the messages that
existed when the last replayed log closed.

Nothing here knows about hosts or commands: :mod:`dr.lab.exhost` drives these files.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dr.exchange import ese

__all__ = [
    "LOG_SIZE",
    "DatabaseFile",
    "LogFile",
    "Message",
    "RecoveryError",
    "Txn",
    "apply_transactions",
    "contents",
    "new_database",
    "page_for",
    "read_log",
    "write_log",
]

LOG_SIZE = 64 * 1024  # the lab's log files; Exchange's are 1 MiB (2007+) and 5 MiB (2000/2003)
PAGE_MAGIC = b"DRLP"
_PAGE_HEAD = struct.Struct("<4sIQII")  # magic, page number, dbtime, payload length, crc32


class RecoveryError(Exception):
    """What ESE reports when recovery cannot go on: its error number and text."""

    def __init__(self, code: int, name: str, text: str, detail: str = "") -> None:
        super().__init__(f"{code} ({name}, {text})")
        self.code, self.name, self.text, self.detail = code, name, text, detail

    @property
    def status_line(self) -> str:
        return f"Operation terminated with error {self.code} ({self.name}, {self.text})"


def missing_log(generation: int) -> RecoveryError:
    return RecoveryError(
        -543, "JET_errRequiredLogFilesMissing", "The required log files for recovery is missing.",
        f"generation {generation}",
    )  # fmt: skip


def bad_signature(name: str) -> RecoveryError:
    return RecoveryError(-530, "JET_errBadLogSignature", "Bad signature for a log file", name)


def page_checksum(page: int) -> RecoveryError:
    return RecoveryError(
        -1018, "JET_errReadVerifyFailure", "Checksum error on a database page", f"page {page}"
    )


def corrupt_log(name: str) -> RecoveryError:
    return RecoveryError(-501, "JET_errLogFileCorrupt", "Log file is corrupt", name)


@dataclass(frozen=True)
class Message:
    """One message as the lab's truth and a database's pages hold it."""

    mailbox: str
    id: str
    folder: str
    subject: str

    @property
    def key(self) -> str:
        return f"{self.mailbox}/{self.id}"

    def row(self) -> list[str]:
        return [self.mailbox, self.id, self.folder, self.subject]


@dataclass(frozen=True)
class Txn:
    """One logged transaction: what happened to which message, when, at which dbtime."""

    at: datetime
    dbtime: int
    db: str
    op: str  # deliver | move | delete
    message: Message

    def record(self, page: int) -> dict[str, Any]:
        return {"t": self.at.isoformat(), "dbt": self.dbtime, "db": self.db, "op": self.op,
                "p": page, "m": self.message.row()}  # fmt: skip

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Txn:
        mailbox, mid, folder, subject = rec["m"]
        return cls(datetime.fromisoformat(rec["t"]), int(rec["dbt"]), rec["db"], rec["op"],
                   Message(mailbox, mid, folder, subject))  # fmt: skip


def page_for(message: Message, data_pages: int) -> int:
    """The data page (1-based) holding ``message``: by its key, so moves stay on the page."""
    return 1 + zlib.crc32(message.key.encode()) % data_pages


# -- databases ------------------------------------------------------------------------------


@dataclass
class DatabaseFile:
    """A database file's header and pages, read whole (lab databases are small)."""

    header: ese.DatabaseHeader
    pages: dict[int, tuple[int, list[Message]]] = field(default_factory=dict)
    data_pages: int = 0

    @property
    def dbtime(self) -> int:
        return max([self.header.dbtime, *(t for t, _ in self.pages.values())])


def _page_bytes(number: int, dbtime: int, messages: Sequence[Message], size: int) -> bytes:
    payload = json.dumps([m.row() for m in messages], separators=(",", ":")).encode()
    if len(payload) + _PAGE_HEAD.size > size:
        raise ValueError(f"lab page {number} is full ({len(messages)} messages)")
    body = payload.ljust(size - _PAGE_HEAD.size, b"\0")
    crc = zlib.crc32(struct.pack("<IQI", number, dbtime, len(payload)) + body)
    return _PAGE_HEAD.pack(PAGE_MAGIC, number, dbtime, len(payload), crc) + body


def _parse_page(raw: bytes, number: int) -> tuple[int, list[Message]]:
    magic, stored, dbtime, length, crc = _PAGE_HEAD.unpack_from(raw)
    body = raw[_PAGE_HEAD.size :]
    ok = magic == PAGE_MAGIC and stored == number
    if not ok or zlib.crc32(struct.pack("<IQI", stored, dbtime, length) + body) != crc:
        raise page_checksum(number)
    rows = json.loads(body[:length]) if length else []
    return dbtime, [Message(*row) for row in rows]


def new_database(path: Path, header: ese.DatabaseHeader, data_pages: int) -> None:
    """An empty database: the header pages, then ``data_pages`` empty pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = header.page_size
    with path.open("wb") as fh:
        fh.write(ese.database_header_bytes(header))
        for number in range(1, data_pages + 1):
            fh.write(_page_bytes(number, 0, [], size))


def read_database(path: Path) -> DatabaseFile:
    """Header and every data page; a bad page checksum raises -1018."""
    data = path.read_bytes()
    header = ese.read_header(data)
    if not isinstance(header, ese.DatabaseHeader):
        raise ValueError(f"{path.name} is not a database")
    size = header.page_size
    count = len(data) // size - 2
    db = DatabaseFile(header, data_pages=count)
    for number in range(1, count + 1):
        start = (number + 1) * size
        db.pages[number] = _parse_page(data[start : start + size], number)
    return db


def check_pages(path: Path) -> tuple[int, list[int]]:
    """``eseutil /k``: pages seen and the numbers of pages whose checksum is wrong."""
    data = path.read_bytes()
    header = ese.read_header(data)
    assert isinstance(header, ese.DatabaseHeader)
    size = header.page_size
    count = len(data) // size - 2
    bad = []
    for number in range(1, count + 1):
        try:
            _parse_page(data[(number + 1) * size : (number + 2) * size], number)
        except RecoveryError:
            bad.append(number)
    return count + 2, bad


def write_header(path: Path, header: ese.DatabaseHeader) -> None:
    with path.open("r+b") as fh:
        fh.write(ese.database_header_bytes(header))


def read_db_header(path: Path) -> ese.DatabaseHeader:
    with path.open("rb") as fh:
        header = ese.read_header(fh.read(8192))
    if not isinstance(header, ese.DatabaseHeader):
        raise ValueError(f"{path.name} is not a database")
    return header


def apply_transactions(path: Path, txns: Iterable[Txn]) -> int:
    """Redo: apply each transaction whose page is older; return the database's dbtime."""
    header = read_db_header(path)
    size = header.page_size
    count = path.stat().st_size // size - 2
    high = header.dbtime
    with path.open("r+b") as fh:
        for txn in txns:
            number = page_for(txn.message, count)
            fh.seek((number + 1) * size)
            dbtime, messages = _parse_page(fh.read(size), number)
            if txn.dbtime > dbtime:
                messages = _apply(messages, txn)
                fh.seek((number + 1) * size)
                fh.write(_page_bytes(number, txn.dbtime, messages, size))
            high = max(high, txn.dbtime, dbtime)
    return high


def _apply(messages: list[Message], txn: Txn) -> list[Message]:
    kept = [m for m in messages if m.key != txn.message.key]
    if txn.op in ("deliver", "move"):
        kept.append(txn.message)
    return sorted(kept, key=lambda m: m.key)


def contents(path: Path) -> dict[str, Message]:
    """Every message in a database file, by key."""
    db = read_database(path)
    return {m.key: m for _, messages in db.pages.values() for m in messages}


# -- logs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFile:
    header: ese.LogHeader
    records: tuple[dict[str, Any], ...]

    @property
    def generation(self) -> int:
        return self.header.generation

    def txns(self) -> Iterator[Txn]:
        return (Txn.from_record(r) for r in self.records)


def log_bytes(header: ese.LogHeader, records: Sequence[dict[str, Any]], size: int) -> bytes:
    head = ese.log_header_bytes(header)
    lines = b"".join(_record_line(r) for r in records)
    if len(head) + len(lines) > size:
        raise ValueError("lab log generation is full")
    return (head + lines).ljust(size, b"\0")


def _record_line(rec: dict[str, Any]) -> bytes:
    body = json.dumps(rec, separators=(",", ":"), sort_keys=True).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def write_log(
    path: Path, header: ese.LogHeader, records: Sequence[dict[str, Any]], size: int
) -> None:
    path.write_bytes(log_bytes(header, records, size))


def read_log(path: Path) -> LogFile:
    """A log's header and records; a damaged record raises -501 (JET_errLogFileCorrupt)."""
    data = path.read_bytes()
    try:
        header = ese.read_header(data)
    except Exception as exc:
        raise corrupt_log(path.name) from exc
    if not isinstance(header, ese.LogHeader):
        raise corrupt_log(path.name)
    body = data[4096:].rstrip(b"\0")
    records = []
    for line in body.split(b"\n"):
        if not line:
            continue
        crc, _, text = line.partition(b" ")
        if len(crc) != 8 or int(crc, 16) != zlib.crc32(text):
            raise corrupt_log(path.name)
        records.append(json.loads(text))
    return LogFile(header, tuple(records))


def log_room(records: Sequence[dict[str, Any]], extra: dict[str, Any], size: int) -> bool:
    used = 4096 + sum(len(_record_line(r)) for r in [*records, extra])
    return used <= size


def now_logtime(at: datetime) -> ese.LogTime:
    return ese.LogTime.from_datetime(at.astimezone(UTC))


def with_state(header: ese.DatabaseHeader, **changes: Any) -> ese.DatabaseHeader:
    return replace(header, **changes)
