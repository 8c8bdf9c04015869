"""How a file is cut: fixed blocks for files updated in place, content-defined chunks otherwise.

Databases and disk images change page by page without moving the rest, so fixed blocks
aligned to the page find exactly the changed pages; content-defined chunking (FastCDC)
would re-store a whole 1 MiB chunk for every changed 8 KiB page. Files whose content
shifts (a system-state ``.bkf``, archives, dumps) need content-defined chunking so an
insertion does not change every later block.
"""

from __future__ import annotations

import fnmatch
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyfastcdc

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
    """The page size an ESE database header declares, or None if ``head`` is not ESE."""
    if len(head) < ESE_PAGE_SIZE_OFFSET + 4 or head[4:8] != ESE_SIGNATURE:
        return None
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


def auto_block_size(size: int, head: bytes) -> int:
    """Block size "Auto": the page size (ESE header, else 8 KiB), doubled for huge files.

    Page-sized blocks store exactly the pages that changed; the doubling keeps a block map
    under about half a million entries.
    """
    block = ese_page_size(head) or DEFAULT_PAGE
    while size // block > MAX_BLOCKS:
        block *= 2
    return block


def cdc_chunks(path: Path, seed: int) -> Iterator[memoryview]:
    """FastCDC 2020 chunks (256 KiB / 1 MiB / 4 MiB), gear table keyed by the repository."""
    chunker = pyfastcdc.FastCDC(
        CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX, normalized_chunking=2, seed=seed
    )
    size = path.stat().st_size
    if size <= CDC_MIN:  # a single chunk: skip the mmap and the chunker
        if size:
            yield memoryview(path.read_bytes())
        return
    for chunk in chunker.cut_file(str(path)):
        yield chunk.data


def check_compiled() -> bool:
    """True when pyfastcdc runs compiled code (its pure-Python fallback is ~100x slower)."""
    return pyfastcdc.FastCDC.__module__.startswith("pyfastcdc.cy")
