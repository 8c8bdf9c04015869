"""Check a repository and name the versions that can no longer be restored.

Without ``read_data``: every manifest decrypts, every blob a version needs (chunks, block
maps and the super-blocks the maps name) is in the index, and its pack exists and is long
enough. With ``read_data``: additionally every pack's SHA-256 matches its name and every
blob decrypts, decompresses and has the keyed id it is stored under.

Always: the repository config is authenticated (``config_mac``) and its chunker is the one
backups are cut with; the CLI adds the catalog cross-check (``dr.store.reconcile``): a
catalog run whose version is gone is damage, named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dr.errors import IntegrityError
from dr.store.blockmap import MapFormatError, load_map, map_blob_ids, used_supers
from dr.store.format import PACK_END_MAGIC
from dr.store.packs import TRAILER, BlobEntry, list_packs, pack_path
from dr.store.repository import Repository

Progress = Callable[[int], None]
CHECKERS = 2  # threads reading packs: decompression and hashing run outside the interpreter lock


@dataclass
class VerifyReport:
    versions: dict[str, list[str]] = field(default_factory=dict)  # id -> problems
    damaged_index_files: dict[str, str] = field(default_factory=dict)
    damaged_packs: dict[str, str] = field(default_factory=dict)
    unindexed_packs: list[str] = field(default_factory=list)
    blobs_checked: int = 0
    config_problems: list[str] = field(default_factory=list)
    catalog_problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def damaged_versions(self) -> list[str]:
        return sorted(v for v, problems in self.versions.items() if problems)

    @property
    def ok(self) -> bool:
        return not (
            self.damaged_versions
            or self.damaged_index_files
            or self.damaged_packs
            or self.config_problems
            or self.catalog_problems
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "versions": {v: {"ok": not p, "problems": p} for v, p in self.versions.items()},
            "damaged_versions": self.damaged_versions,
            "damaged_index_files": self.damaged_index_files,
            "damaged_packs": self.damaged_packs,
            "unindexed_packs": self.unindexed_packs,
            "blobs_checked": self.blobs_checked,
            "config_problems": self.config_problems,
            "catalog_problems": self.catalog_problems,
            "warnings": self.warnings,
        }


def verify(
    repo: Repository, *, read_data: bool = False, progress: Progress | None = None
) -> VerifyReport:
    report = VerifyReport()
    check_config(repo, report)
    index = repo.reload_index()
    report.damaged_index_files = dict(index.damaged_files)
    on_disk = list_packs(repo.root)
    report.unindexed_packs = sorted(set(on_disk) - set(index.packs()))
    bad_blobs: dict[bytes, str] = {}
    check_trailers(repo, report)
    if read_data:
        bad_blobs = check_packs(repo, report, progress or (lambda n: None))
    intact: set[str] = set()
    for vid, manifest, error in repo.manifests():
        if manifest is None:
            report.versions[vid] = [error or "manifest unreadable"]
        else:
            report.versions[vid] = version_problems(repo, manifest, bad_blobs, intact)
    return report


def check_config(repo: Repository, report: VerifyReport) -> None:
    """The config is the one this key wrote, and its chunker the one backups use."""
    from dr.store.chunking import CDC_AVG, CDC_MAX, CDC_MIN
    from dr.store.repository import CONFIG_MAC_FIELD, config_problem

    problem = config_problem(repo.keys, repo.config)
    if problem and repo.config.get(CONFIG_MAC_FIELD) is None:
        report.warnings.append(problem)
    elif problem:
        report.config_problems.append(problem)
    expected = {"name": "fastcdc2020", "min": CDC_MIN, "avg": CDC_AVG, "max": CDC_MAX}
    if repo.config.get("chunker") != expected:
        report.config_problems.append(
            f"the config's chunker {repo.config.get('chunker')!r} is not the one this "
            f"repository's backups are cut with ({expected!r})"
        )


def version_problems(
    repo: Repository,
    manifest: dict[str, Any],
    bad_blobs: dict[bytes, str],
    intact: set[str] | None = None,
) -> list[str]:
    """The version's problems, at most one per file. ``intact`` carries the chunk ids (hex)
    already found sound from one version to the next: versions share most of their chunks."""
    intact = set() if intact is None else intact
    problems: list[str] = []
    for entry in manifest["files"]:
        if entry["mode"] == "block":
            problem = _blocks_problem(repo, entry, problems, bad_blobs)
        else:
            problem = _chunks_problem(repo, entry["chunks"], bad_blobs, intact)
        if problem:
            problems.append(f"{entry['path']}: {problem}")
    return problems


def _blocks_problem(
    repo: Repository, entry: dict[str, Any], problems: list[str], bad_blobs: dict[bytes, str]
) -> str | None:
    for blob_id in file_blobs(repo, entry, problems, bad_blobs):
        problem = blob_problem(repo, blob_id, bad_blobs)
        if problem:
            return problem
    return None


def _chunks_problem(
    repo: Repository, chunks: list[list[Any]], bad_blobs: dict[bytes, str], intact: set[str]
) -> str | None:
    for blob_hex, _ in chunks:
        if blob_hex in intact:
            continue
        problem = blob_problem(repo, bytes.fromhex(blob_hex), bad_blobs)
        if problem:
            return problem
        intact.add(blob_hex)
    return None


def file_blobs(
    repo: Repository, entry: dict[str, Any], problems: list[str], bad_blobs: dict[bytes, str]
) -> list[bytes]:
    if entry["mode"] != "block":
        return [bytes.fromhex(c[0]) for c in entry["chunks"]]
    for map_id in map_blob_ids(entry):
        problem = blob_problem(repo, map_id, bad_blobs)
        if problem:
            problems.append(f"{entry['path']}: block map {problem}")
            return []
    try:
        block_map = load_map(repo.read_blob, entry)
    except (IntegrityError, MapFormatError) as exc:
        problems.append(f"{entry['path']}: block map unreadable ({exc})")
        return []
    return used_supers(block_map)


def blob_problem(repo: Repository, blob_id: bytes, bad_blobs: dict[bytes, str]) -> str | None:
    entry = repo.index.blobs.get(blob_id)
    if entry is None:
        return f"blob {blob_id.hex()[:16]} missing from the index"
    if blob_id in bad_blobs:
        return f"blob {blob_id.hex()[:16]} in pack {entry.pack[:16]}: {bad_blobs[blob_id]}"
    size = repo.pack_file_size(entry.pack)
    if size is None:
        return f"pack {entry.pack[:16]} is missing"
    if size < entry.offset + entry.length:
        return f"pack {entry.pack[:16]} is truncated"
    return None


def check_trailers(repo: Repository, report: VerifyReport) -> None:
    """A pack that lost its end (truncated) can no longer rebuild the index: say so."""
    for pack in repo.index.packs():
        path = pack_path(repo.root, pack)
        try:
            with open(path, "rb") as fh:
                fh.seek(-TRAILER.size, 2)
                _, magic = TRAILER.unpack(fh.read(TRAILER.size))
        except FileNotFoundError:
            continue  # reported per version
        except OSError:
            magic = b""
        if magic != PACK_END_MAGIC:
            report.damaged_packs[pack] = "truncated: the pack header at its end is gone"


def check_packs(repo: Repository, report: VerifyReport, progress: Progress) -> dict[bytes, str]:
    """Read every indexed pack in full, CHECKERS packs at a time; return the blobs that
    failed, with why."""
    packs = sorted(repo.index.packs().items())
    bad: dict[bytes, str] = {}
    with ThreadPoolExecutor(max_workers=CHECKERS) as pool:
        results = pool.map(lambda item: check_pack(repo, item[0], item[1], progress), packs)
        for (pack, _), result in zip(packs, results, strict=True):
            if result is None:
                continue  # reported per version as a missing pack
            if result.damaged:
                report.damaged_packs[pack] = result.damaged
            report.blobs_checked += result.checked
            bad.update(result.bad)
    return bad


@dataclass
class PackCheck:
    damaged: str | None  # why the pack as a whole is damaged
    bad: dict[bytes, str]  # blob id -> why it is unusable
    checked: int


def check_pack(
    repo: Repository, pack: str, entries: list[BlobEntry], progress: Progress
) -> PackCheck | None:
    """One pack read in full: its SHA-256 against its name, then every blob (None: missing)."""
    path = pack_path(repo.root, pack)
    if not path.is_file():
        return None
    data = path.read_bytes()
    progress(len(data))
    damaged = None
    if hashlib.sha256(data).hexdigest() != pack:
        damaged = "content does not match its name (SHA-256)"
    bad = {}
    for entry in entries:
        problem = check_blob(repo, entry, data[entry.offset : entry.offset + entry.length])
        if problem:
            bad[entry.blob_id] = problem
    return PackCheck(damaged, bad, len(entries))


def check_blob(repo: Repository, entry: BlobEntry, record: bytes | None = None) -> str | None:
    """Why the blob is unusable, or None (``record``: its bytes, when already read)."""
    try:
        data = repo.read_entry(entry, record)
    except IntegrityError as exc:
        return exc.message
    if repo.keys.blob_id(data) != entry.blob_id:
        return "content does not match its id"
    return None
