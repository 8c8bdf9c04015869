"""The in-file delta at a real database size, dr beside borg with fixed 64 KiB chunks.

    .venv/bin/python benchmarks/bench_store_big.py [--size-gib 20] [--rounds 2] [--work DIR]

One database file of 8 KiB pages (the store benchmark's ``PagedDatabase``: a 20-byte page
header with number, version and CRC32, a body of pseudo-text that zstd -3 shrinks about
2.6x), backed up in full by each tool, then ``--rounds`` times with 1 % of its pages
rewritten at random places. For every round: the bytes each repository grew by (``du``),
the command's wall and CPU time, and the compressed size of the changed pages themselves
(the pages concatenated in file order, zstd level 3 in 256 KiB frames, as dr groups a
delta's blocks): the floor any tool storing changed pages has to pay. Then dr restores the
last round and the restored file's SHA-256 is compared with the source's.

Disk: the source (``--size-gib``), each repository (about 0.4 x the source), and the
restored copy (the source's size again): about 2.8 x ``--size-gib`` in ``--work``
(default: a new directory under /tmp), which is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _store_tools as tools
import _store_workloads as workloads

MIB = workloads.MIB
TOOLS = ("dr", "borg-fixed")


def changed_floor(db: workloads.PagedDatabase, pages: list[int]) -> int:
    """zstd -3 of the changed pages in file order, in 256 KiB frames."""
    cctx = zstandard.ZstdCompressor(level=3)
    per_frame = (256 << 10) // workloads.PAGE
    ordered = sorted(pages)
    total = 0
    with open(db.path, "rb") as fh:
        for start in range(0, len(ordered), per_frame):
            data = b"".join(
                os.pread(fh.fileno(), workloads.PAGE, p * workloads.PAGE)
                for p in ordered[start : start + per_frame]
            )
            total += len(cctx.compress(data))
    return total


def backup_all(chosen: list[tools.Tool], rnd: int, root: Path) -> dict[str, dict[str, float]]:
    found = {}
    for tool in chosen:
        before = tools.du_bytes(tool.repo)
        m = tool.backup(rnd, root)
        added = tools.du_bytes(tool.repo) - before
        found[tool.name] = {"wall": m.wall, "cpu": m.cpu, "added": added, "rss": m.rss_mib or 0}
        rss = m.rss_mib or 0
        print(f"round {rnd} {tool.name:10s} wall {m.wall:7.1f} s  cpu {m.cpu:7.1f} s  "
              f"added {added / MIB:9.1f} MiB  peak RSS {rss:6.0f} MiB", flush=True)  # fmt: skip
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gib", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument(
        "--restore-rounds", default="", help="rounds dr restores (default: the last), e.g. 1,10"
    )
    a = parser.parse_args()
    a.restore = [int(r) for r in a.restore_rounds.split(",") if r] or [a.rounds]
    missing = tools.missing_programs(list(TOOLS))
    if missing:
        raise SystemExit("\n".join(missing))
    work = a.work or Path(tempfile.mkdtemp(prefix="dr-bigdb-"))
    try:
        return run(work, a)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, a: argparse.Namespace) -> int:
    env = tools.tool_env(work)
    print(f"dr: {tools.snapshot_dr(work, env)}; load {os.getloadavg()[0]:.2f}", flush=True)
    root = work / "data" / "db"
    root.mkdir(parents=True)
    db = workloads.PagedDatabase(root / "priv1.edb", int(a.size_gib * 1024), seed=1)
    began = time.perf_counter()
    db.create()
    print(f"generated {db.npages} pages ({db.npages * workloads.PAGE / 2**30:.1f} GiB) in "
          f"{time.perf_counter() - began:.0f} s", flush=True)  # fmt: skip
    chosen = [tools.TOOLS[name](work, "bigdb", env) for name in TOOLS]
    for tool in chosen:
        tool.init()
    rounds = [backup_all(chosen, 0, root)]
    expected = {0: workloads.file_sha256(db.path)} if 0 in a.restore else {}
    for rnd in range(1, a.rounds + 1):
        pages = db.random_pages(0.01, rnd)
        db.rewrite(pages)
        if rnd in a.restore:
            expected[rnd] = workloads.file_sha256(db.path)
        floor = changed_floor(db, pages)
        print(f"round {rnd}: {len(pages)} pages changed, {floor / MIB:.1f} MiB compressed "
              f"(zstd -3, 256 KiB frames)", flush=True)  # fmt: skip
        rounds.append(backup_all(chosen, rnd, root))
        dr_round, borg_round = rounds[-1]["dr"], rounds[-1]["borg-fixed"]
        print(f"round {rnd}: dr bytes / changed pages compressed {dr_round['added'] / floor:.2f}, "
              f"dr / borg-fixed bytes {dr_round['added'] / borg_round['added']:.3f}, "
              f"wall {dr_round['wall'] / borg_round['wall']:.2f}, "
              f"CPU {dr_round['cpu'] / borg_round['cpu']:.2f}", flush=True)  # fmt: skip
    shutil.rmtree(work / "repos" / "bigdb" / "borg-fixed")  # room for the restored copy
    shutil.rmtree(root)
    return 0 if all(restore(chosen[0], work, rnd, want) for rnd, want in expected.items()) else 1


def restore(dr_tool: tools.Tool, work: Path, rnd: int, expected: str) -> bool:
    """dr restores round ``rnd`` (its chain depth is ``rnd``); True when the SHA-256 matches."""
    target = work / f"restore-{rnd}"
    target.mkdir()
    m = dr_tool.restore(rnd, target)
    same = workloads.file_sha256(target / "priv1.edb") == expected
    print(f"dr restore of round {rnd} (chain depth {rnd}): wall {m.wall:.1f} s  "
          f"cpu {m.cpu:.1f} s  SHA-256 {'ok' if same else 'MISMATCH'}", flush=True)  # fmt: skip
    shutil.rmtree(target)
    return same


if __name__ == "__main__":
    raise SystemExit(main())
