"""The data sets of the store benchmark, generated deterministically from a seed.

Every workload is a directory of files plus a list of change rounds. Each tool backs up the
same directory after the same change, so the figures compare like with like. Content is
reproducible from (seed, position, version) alone, which keeps generation fast and lets a
rerun produce byte-identical data.

- ``db``: one database file of 8 KiB pages (header + rows of pseudo-words, ~2.6x zstd ratio);
  rounds rewrite 1 % of the pages at random places, then 1 % as one contiguous run
  (clustered), then 60 %, then insert 100 bytes in the middle (shifts the second half).
- ``container``: one archive-like file of members with headers; rounds insert and remove
  data at random offsets, so everything after each edit shifts.
- ``files``: many small files (1–16 KiB); rounds rewrite, add and delete a few percent.
- ``random``: incompressible data; the raw pipeline ceiling (hash, compress, encrypt, I/O).
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

KIB = 1024
MIB = 1 << 20
PAGE = 8 * KIB
PAGE_HEADER = struct.Struct("<4sIIII")  # magic, page number, version, reserved, crc32(body)
PAGE_BODY = PAGE - PAGE_HEADER.size
MEMBER_HEADER = struct.Struct("<4sIQI")  # magic, member number, length, crc32(data)
POOL_LINES = 1 << 16
ROWS_PER_DRAW = 160


def _line_pool(seed: int) -> list[bytes]:
    """2^16 rows of pseudo-words and numbers from a 2048-word vocabulary."""
    r = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(r.choices(letters, k=r.randint(3, 10))) for _ in range(2048)]
    return [
        f"{n}|{r.getrandbits(16)}|{' '.join(r.choices(vocab, k=r.randint(4, 10)))}|"
        f"{r.randint(0, 99999)}\n".encode()
        for n in range(POOL_LINES)
    ]


class TextSource:
    """Compressible text whose every piece is a pure function of (seed, key).

    A piece is a random draw of rows from a fixed pool: drawing whole rows (not words)
    keeps generation fast enough for gigabytes, and zstd -3 still shrinks it about 2.6x
    because the pool (~4 MiB) is larger than the compression window.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.pool = _line_pool(seed)

    def body(self, key: int, length: int = PAGE_BODY) -> bytes:
        r = random.Random((self.seed << 64) ^ key)
        parts: list[bytes] = []
        have = 0
        while have < length:
            chunk = b"".join(r.choices(self.pool, k=ROWS_PER_DRAW))
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)[:length]


@dataclass
class Round:
    """One change applied to the data set before every tool backs it up again."""

    label: str  # e.g. "1 % random"
    kind: str  # "full", "random", "clustered", "bulk", "insert", "shift", "files", "none"
    apply: Callable[[], None]


@dataclass
class Workload:
    name: str
    description: str
    root: Path  # the directory every tool backs up
    size: int = 0  # bytes in the data set after generation
    rounds: list[Round] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def digest(self) -> str:
        return tree_digest(self.root)


def tree_digest(root: Path) -> str:
    """SHA-256 over every regular file's relative path and content, in sorted order."""
    h = hashlib.sha256()
    for rel, path in sorted(_files(root)):
        h.update(rel.encode() + b"\0")
        h.update(file_sha256(path).encode() + b"\n")
    return h.hexdigest()


def _files(root: Path) -> list[tuple[str, Path]]:
    found = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                found.append((path.relative_to(root).as_posix(), path))
    return found


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def total_size(root: Path) -> int:
    return sum(p.stat().st_size for _, p in _files(root))


# ------------------------------------------------------------------------ database


class PagedDatabase:
    """A file of 8 KiB pages changed in place, like an Exchange or SQL database file."""

    def __init__(self, path: Path, size_mib: int, seed: int) -> None:
        self.path = path
        self.seed = seed
        self.text = TextSource(seed)
        self.npages = max(8, size_mib * MIB // PAGE)
        self.versions = array("I", [1]) * self.npages

    def page(self, pno: int, version: int) -> bytes:
        body = self.text.body((pno << 20) | version)
        return PAGE_HEADER.pack(b"PAGE", pno, version, 0, zlib.crc32(body)) + body

    def create(self) -> None:
        with open(self.path, "wb") as fh:
            for pno in range(self.npages):
                fh.write(self.page(pno, 1))

    def rewrite(self, pages: list[int]) -> None:
        with open(self.path, "r+b") as fh:
            for pno in sorted(pages):
                self.versions[pno] += 1
                fh.seek(pno * PAGE)
                fh.write(self.page(pno, self.versions[pno]))

    def random_pages(self, fraction: float, rnd: int) -> list[int]:
        k = max(1, round(self.npages * fraction))
        return random.Random(self.seed * 7919 + rnd).sample(range(self.npages), k)

    def clustered_pages(self, fraction: float, rnd: int) -> list[int]:
        k = max(1, round(self.npages * fraction))
        start = random.Random(self.seed * 7919 + rnd).randrange(0, self.npages - k + 1)
        return list(range(start, start + k))

    def insert_middle(self, nbytes: int, rnd: int) -> None:
        """Insert ``nbytes`` at the middle, shifting the second half (same inode)."""
        data = self.path.read_bytes()
        mid = len(data) // 2
        blob = random.Random(self.seed * 7919 + rnd).randbytes(nbytes)
        with open(self.path, "r+b") as fh:
            fh.seek(mid)
            fh.write(blob + data[mid:])


def db_workload(base: Path, size_mib: int, rounds: int, seed: int) -> Workload:
    root = base / "db"
    root.mkdir(parents=True)
    db = PagedDatabase(root / "priv1.edb", size_mib, seed)
    db.create()
    clustered = max(1, rounds // 2)
    plan: list[Round] = []
    for i in range(rounds):
        plan.append(Round("1 % random", "random", _rewrite(db, db.random_pages, 0.01, i + 1)))
    for i in range(clustered):
        rnd = rounds + i + 1
        plan.append(
            Round("1 % clustered", "clustered", _rewrite(db, db.clustered_pages, 0.01, rnd))
        )
    plan.append(Round("60 % random", "bulk", _rewrite(db, db.random_pages, 0.60, 1000)))
    plan.append(Round("insert 100 B mid", "insert", lambda: db.insert_middle(100, 1001)))
    one_pct = max(1, round(db.npages * 0.01))
    return Workload(
        "db",
        f"one {db.npages * PAGE / MIB:.0f} MiB database file (`priv1.edb`, {db.npages} pages of "
        f"8 KiB: 20-byte header with page number, version, CRC32; body = rows of pseudo-words "
        f"and numbers). Rounds: {rounds} x rewrite 1 % of pages ({one_pct} pages = "
        f"{one_pct * PAGE / MIB:.2f} MiB) at random places; {clustered} x rewrite 1 % as one "
        f"contiguous run; rewrite 60 % at random; insert 100 bytes at the middle.",
        root,
        total_size(root),
        plan,
    )


def _rewrite(
    db: PagedDatabase, pick: Callable[[float, int], list[int]], fraction: float, rnd: int
) -> Callable[[], None]:
    return lambda: db.rewrite(pick(fraction, rnd))


# ----------------------------------------------------------------------- container


class ShiftingContainer:
    """An archive-like file (a .bkf, a tar): members with headers, edited by insert/remove."""

    def __init__(self, path: Path, size_mib: int, seed: int) -> None:
        self.path = path
        self.seed = seed
        self.text = TextSource(seed + 17)
        self.target = size_mib * MIB
        self.members = 0

    def member(self, rng: random.Random) -> bytes:
        self.members += 1
        length = rng.randint(16 * KIB, 256 * KIB)
        pages = [self.text.body((self.members << 16) | i) for i in range(length // PAGE_BODY + 1)]
        data = b"".join(pages)[:length]
        header = MEMBER_HEADER.pack(b"MEMB", self.members, length, zlib.crc32(data))
        return header + data

    def create(self) -> None:
        rng = random.Random(self.seed)
        written = 0
        with open(self.path, "wb") as fh:
            while written < self.target:
                blob = self.member(rng)
                fh.write(blob)
                written += len(blob)

    def shift(self, edits: int, rnd: int) -> None:
        """``edits`` random edits: insert a new member or remove 16–256 KiB, anywhere."""
        rng = random.Random(self.seed * 7919 + rnd)
        data = bytearray(self.path.read_bytes())
        for _ in range(edits):
            at = rng.randrange(0, len(data))
            if rng.random() < 0.5:
                data[at:at] = self.member(rng)
            else:
                del data[at : at + rng.randint(16 * KIB, 256 * KIB)]
        self.path.write_bytes(bytes(data))


def container_workload(base: Path, size_mib: int, rounds: int, seed: int) -> Workload:
    root = base / "container"
    root.mkdir(parents=True)
    box = ShiftingContainer(root / "systemstate.bkf", size_mib, seed)
    box.create()
    edits = max(2, size_mib // 30)
    plan = [
        Round(f"{edits} inserts/removals", "shift", _shift(box, edits, i + 1))
        for i in range(rounds)
    ]
    return Workload(
        "container",
        f"one {size_mib} MiB container file (`systemstate.bkf`: members of 16–256 KiB with "
        f"20-byte headers, compressible text). Rounds: {rounds} x {edits} edits at random "
        "offsets, each inserting a new member or removing 16–256 KiB (content after it shifts).",
        root,
        total_size(root),
        plan,
    )


def _shift(box: ShiftingContainer, edits: int, rnd: int) -> Callable[[], None]:
    return lambda: box.shift(edits, rnd)


# --------------------------------------------------------------------- small files


class SmallFiles:
    """Many small files in 100 folders; rounds rewrite, add and delete a few percent."""

    def __init__(self, root: Path, count: int, seed: int) -> None:
        self.root = root
        self.seed = seed
        self.text = TextSource(seed + 29)
        self.next_id = 0
        self.live: list[int] = []
        self.count = count

    def path(self, fid: int) -> Path:
        return self.root / f"d{fid % 100:02d}" / f"item{fid:06d}.msg"

    def write(self, fid: int, version: int, rng: random.Random) -> None:
        length = rng.randint(1 * KIB, 16 * KIB)
        parts = [self.text.body((fid << 24) | (version << 8) | i) for i in range(2)]
        path = self.path(fid)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"".join(parts)[:length])

    def create(self) -> None:
        rng = random.Random(self.seed)
        for _ in range(self.count):
            self.write(self.next_id, 1, rng)
            self.live.append(self.next_id)
            self.next_id += 1

    def churn(self, rnd: int, changed: float = 0.03, added: float = 0.01) -> None:
        rng = random.Random(self.seed * 7919 + rnd)
        k = max(1, round(len(self.live) * changed))
        for fid in rng.sample(self.live, k):
            self.write(fid, rnd + 1, rng)
        gone = set(rng.sample(self.live, max(1, round(len(self.live) * added))))
        for fid in sorted(gone):
            self.path(fid).unlink()
        self.live = [f for f in self.live if f not in gone]
        for _ in range(len(gone)):
            self.write(self.next_id, 1, rng)
            self.live.append(self.next_id)
            self.next_id += 1


def files_workload(base: Path, count: int, rounds: int, seed: int) -> Workload:
    root = base / "files"
    root.mkdir(parents=True)
    tree = SmallFiles(root, count, seed)
    tree.create()
    plan = [
        Round("3 % rewritten, 1 % replaced", "files", _churn(tree, i + 1)) for i in range(rounds)
    ]
    return Workload(
        "files",
        f"{count} files of 1–16 KiB in 100 folders (compressible text). Rounds: {rounds} x "
        "rewrite 3 % of the files, delete 1 % and add as many new ones.",
        root,
        total_size(root),
        plan,
    )


def _churn(tree: SmallFiles, rnd: int) -> Callable[[], None]:
    return lambda: tree.churn(rnd)


# -------------------------------------------------------------------------- random


def random_workload(base: Path, size_mib: int, seed: int) -> Workload:
    root = base / "random"
    root.mkdir(parents=True)
    rng = random.Random(seed + 41)
    with open(root / "random.bin", "wb") as fh:
        for _ in range(max(1, size_mib // 4)):
            fh.write(rng.randbytes(4 * MIB))
    plan = [Round("unchanged", "none", lambda: None)]
    return Workload(
        "random",
        f"one {size_mib} MiB file of random (incompressible) bytes (`random.bin`). Round 1 "
        "backs it up again unchanged (what a no-change run costs).",
        root,
        total_size(root),
        plan,
    )


WORKLOADS = ("db", "container", "files", "random")
