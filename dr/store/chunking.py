"""How a file is cut: fixed blocks for files updated in place, content-defined chunks otherwise.

Databases and disk images change page by page without moving the rest, so fixed blocks
aligned to the page find exactly the changed pages; content-defined chunking (FastCDC)
would re-store a whole 1 MiB chunk for every changed 8 KiB page. Files whose content
shifts (a system-state ``.bkf``, archives, dumps) need content-defined chunking so an
insertion does not change every later block.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pyfastcdc

from dr.errors import ESEHeaderError
from dr.exchange.ese import DatabaseHeader, read_header

KIB = 1024
MIB = 1024 * KIB

BLOCK_MIN_FILE = 1 * MIB  # smaller files are a single chunk anyway
MAX_BLOCKS = 1 << 19  # Auto grows the block size beyond this many blocks (map ~12 MiB)
DEFAULT_PAGE = 8 * KIB  # database page size assumed when the file does not say
DEFAULT_BLOCK_PATTERNS: tuple[str, ...] = (
    "*.edb",
    "*.stm",
    "*.dit",
    "*.mdf",
    "*.ndf",
    "*.ldf",
    "*.vhd",
    "*.vhdx",
    "*.vmdk",
    "*.img",
    "*.sqlite",
    "*.db",
)

CDC_MIN = 256 * KIB
CDC_AVG = 1 * MIB
CDC_MAX = 4 * MIB

ESE_SIGNATURE = b"\xef\xcd\xab\x89"
ESE_PAGE_SIZE_OFFSET = 236
ESE_PAGE_SIZES = (2 * KIB, 4 * KIB, 8 * KIB, 16 * KIB, 32 * KIB)
ESE_LEGACY_PAGE = 4 * KIB  # Exchange 2000 / 2003 headers leave the field at 0


def ese_page_size(head: bytes) -> int | None:
    """The page size an ESE database header declares, or None if ``head`` is not ESE.

    A header that reads cleanly (magic, file type, checksum: ``dr.exchange.ese``) gives its
    page size. One that carries the magic but does not verify (a header caught mid-write, a
    damaged page 0) still gets page-sized blocks from the raw field, 4 KiB when that is 0
    or not a page size.
    """
    if len(head) < ESE_PAGE_SIZE_OFFSET + 4 or head[4:8] != ESE_SIGNATURE:
        return None
    try:
        header = read_header(head)
    except ESEHeaderError:
        header = None
    if isinstance(header, DatabaseHeader):
        return header.page_size
    (value,) = struct.unpack_from("<I", head, ESE_PAGE_SIZE_OFFSET)
    return value if value in ESE_PAGE_SIZES else ESE_LEGACY_PAGE


def read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(4 * KIB)


def uses_blocks(rel_path: str, size: int, head: bytes, patterns: Sequence[str]) -> bool:
    """Fixed blocks for large files that match a pattern or carry an ESE header."""
    if size < BLOCK_MIN_FILE:
        return False
    name = rel_path.rsplit("/", 1)[-1].lower()
    if any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns):
        return True
    return ese_page_size(head) is not None


def auto_block_size(size: int, head: bytes, *, bounded: bool = True) -> int:
    """Block size "Auto": the page size (ESE header, else 8 KiB); in a format-1 repository
    (``bounded``) doubled for huge files.

    Page-sized blocks store exactly the pages that changed. Format 1 stores a complete map
    with every version, so the doubling kept it under about half a million entries; format
    2 stores a delta's map as a patch and keeps the page at any size (the map's block count
    is a u32: 32 TiB of 8 KiB pages).
    """
    block = ese_page_size(head) or DEFAULT_PAGE
    limit = MAX_BLOCKS if bounded else 2**32 - 1
    while size // block > limit:
        block *= 2
    return block


CDC_WINDOW = 64 * MIB  # bytes of a file held at once while chunking (plus one carried chunk)


def cdc_chunks(path: Path, seed: int, window: int = CDC_WINDOW) -> Iterator[memoryview]:
    """FastCDC 2020 chunks (256 KiB / 1 MiB / 4 MiB), gear table keyed by the repository.

    The file is read in windows of ``window`` bytes, so memory stays bounded whatever the
    file's size. A chunk's cut point depends only on the bytes from its own start to at most
    ``CDC_MAX`` further, so every chunk a window cuts is final except its last one, which
    may have been stopped by the window's end: its bytes are carried into the next window
    and cut again. The chunks are the ones whole-file chunking gives, byte for byte.
    """
    if window <= CDC_MAX:
        raise ValueError(f"a chunking window must exceed the largest chunk ({CDC_MAX} bytes)")
    with open(path, "rb", buffering=0) as fh:
        carry = _read_head(fh, os.fstat(fh.fileno()).st_size)
        if len(carry) <= CDC_MIN:  # a single chunk: no chunker, no second buffer
            if carry:
                yield memoryview(carry)
            return
        left = os.fstat(fh.fileno()).st_size - len(carry)  # sizes the buffer only
        chunker = _chunker(seed)
        while True:
            buf = bytearray(len(carry) + min(window, left + 1))
            buf[: len(carry)] = carry
            end = len(carry) + _fill(fh, memoryview(buf)[len(carry) :])
            view = memoryview(buf)[:end]
            if end < len(buf):  # the file ends in this window: every chunk is final
                yield from (c.data for c in chunker.cut_buf(view))
                return
            left = max(0, left - (end - len(carry)))
            chunks = list(chunker.cut_buf(view))
            yield from (c.data for c in chunks[:-1])
            carry = bytes(chunks[-1].data)


def single_chunk(path: Path, size: int) -> list[bytes] | None:
    """The chunks of a file whose status said ``size`` <= ``CDC_MIN`` bytes: its whole
    content as one chunk (none when empty), or None when it has grown past one chunk since.
    Plain descriptor calls: on 20 000 small files the file-object machinery of ``open``
    costs as much as the reads."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        while len(data) != size and len(data) <= CDC_MIN:  # it changed size: read to its end
            more = os.read(fd, CDC_MIN + 1 - len(data))
            if not more:
                break
            data += more
    finally:
        os.close(fd)
    if len(data) > CDC_MIN:
        return None
    return [data] if data else []


def _read_head(fh: BinaryIO, size: int) -> bytes:
    """The first ``CDC_MIN + 1`` bytes (fewer: the whole file). The read asks for what
    ``size`` says is there: asking a small file for 256 KiB costs a 256 KiB buffer per
    file, several times the read itself. A file that grew since is read on."""
    want = min(size, CDC_MIN) + 1
    head = fh.read(want)
    if len(head) == want < CDC_MIN + 1:
        head += fh.read(CDC_MIN + 1 - want)
    return head


@functools.lru_cache(maxsize=8)
def _chunker(seed: int) -> pyfastcdc.FastCDC:
    """One chunker per repository seed (building its gear table is not free)."""
    return pyfastcdc.FastCDC(
        CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX, normalized_chunking=2, seed=seed
    )


def _fill(fh: BinaryIO, target: memoryview) -> int:
    """Read into ``target`` until it is full or the file ends; the bytes read."""
    got = 0
    while got < len(target):
        n = fh.readinto(target[got:])
        if not n:
            break
        got += n
    return got


def check_compiled() -> bool:
    """True when pyfastcdc runs compiled code (its pure-Python fallback is ~100x slower)."""
    return pyfastcdc.FastCDC.__module__.startswith("pyfastcdc.cy")
