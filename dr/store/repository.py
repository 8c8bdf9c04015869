"""A repository: a directory holding a config, packs, index files and version manifests.

Opening one needs its key file and passphrase; everything else (backup, restore, verify,
prune) works through :class:`Repository` and :class:`BlobSink`. The on-disk format is in
docs/repository-format.md.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import socket
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

from dr.errors import IntegrityError, KeyMismatch, NotFoundError, ParameterError, StoreError
from dr.store import keyfile
from dr.store.chunking import CDC_AVG, CDC_MAX, CDC_MIN
from dr.store.crypto import AuthenticationFailed, Compressor, MasterKeys, framed, unpack
from dr.store.crypto import open_object as _open
from dr.store.crypto import seal_object as _seal
from dr.store.format import (
    CONFIG_NAME,
    DATA_DIR,
    DEFAULT_PACK_SIZE,
    FORMAT_VERSION,
    INDEX_DIR,
    LOCK_DIR,
    MANIFEST_DIR,
    TMP_SUFFIX,
    dumps,
    fsync_dir,
    iso,
    utcnow,
    write_atomic,
)
from dr.store.index import Index, load_index, write_index
from dr.store.packs import BlobEntry, PackReader, PackWriter, pack_path
from dr.store.passphrase import find_passphrase

REPO_FORMAT = "dr-repository"
_READERS_LOCK = threading.Lock()  # restore reads blobs from several threads
MAX_INFLIGHT = 8  # batches being compressed at once
BATCH_BYTES = 1 << 20  # blobs handed to a compression thread at a time (one 1 MiB super-block)
MANIFEST_LEVEL = 1  # zstd level of manifests: mostly hex ids, which level 3 packs no better
PACKS_IN_FLIGHT = 1  # finished packs waiting to be written while the next one fills


@dataclass(frozen=True)
class _Queued:
    """A blob waiting for compression."""

    blob_id: bytes
    blob_type: int
    data: bytes | memoryview
    owner: str


@dataclass
class Repository:
    root: Path
    config: dict[str, Any]
    keys: MasterKeys
    key_file: Path
    _index: Index | None = None
    _readers: dict[str, PackReader] = field(default_factory=dict)
    _pack_sizes: dict[str, int | None] = field(default_factory=dict)

    @property
    def repo_id(self) -> str:
        return str(self.config["id"])

    @property
    def pack_size(self) -> int:
        return int(self.config.get("pack_size", DEFAULT_PACK_SIZE))

    # ---------------------------------------------------------------- index and blobs

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = load_index(self.root, self.keys)
        return self._index

    def reload_index(self) -> Index:
        self._index = None
        self._pack_sizes.clear()
        return self.index

    def pack_file_size(self, pack: str) -> int | None:
        """The size of a pack file (None if missing), asked of the disk once per pack."""
        if pack not in self._pack_sizes:
            try:
                self._pack_sizes[pack] = pack_path(self.root, pack).stat().st_size
            except FileNotFoundError:
                self._pack_sizes[pack] = None
        return self._pack_sizes[pack]

    def read_blob(self, blob_id: bytes) -> bytes:
        """The plaintext of one blob; IntegrityError naming the pack if it is damaged."""
        entry = self.index.blobs.get(blob_id)
        if entry is None:
            raise IntegrityError(
                f"blob {blob_id.hex()[:16]} is not in the index of {self.root}",
                hint="an index file is missing or damaged; run `dr store verify`",
            )
        return self.read_entry(entry)

    def read_entry(self, entry: BlobEntry, record: bytes | None = None) -> bytes:
        """The plaintext of the blob at ``entry`` (``record``: its bytes, when already read)."""
        try:
            reader = self._reader(entry.pack)
            if record is None:
                opened = reader.read_record(entry)
            else:
                opened = reader.open_record(entry, record)
            data = unpack(opened, entry.plain_len)
        except (AuthenticationFailed, zstandard.ZstdError, OSError) as exc:
            raise IntegrityError(
                f"pack {entry.pack[:16]} in {self.root}: blob {entry.blob_id.hex()[:16]} is "
                f"damaged ({exc})",
                hint="run `dr store verify --read-data` to list the damaged versions",
            ) from exc
        if len(data) != entry.plain_len:
            raise IntegrityError(f"pack {entry.pack[:16]}: blob {entry.blob_id.hex()[:16]} size")
        return data

    def _reader(self, pack: str) -> PackReader:
        reader = self._readers.get(pack)  # the common case: no lock for the restore threads
        if reader is not None:
            return reader
        with _READERS_LOCK:
            reader = self._readers.get(pack)
            if reader is None:
                path = pack_path(self.root, pack)
                if not path.is_file():
                    raise AuthenticationFailed("pack file missing")
                reader = self._readers[pack] = PackReader(self.keys, path)
            return reader

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------- manifests

    def version_ids(self) -> list[str]:
        folder = self.root / MANIFEST_DIR
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))

    def read_manifest(self, version_id: str) -> dict[str, Any]:
        path = self.root / MANIFEST_DIR / version_id
        try:
            sealed = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"no version {version_id!r} in {self.root}", hint="list them: `dr store ls`"
            ) from exc
        try:
            plain = _open(self.keys, "manifest", version_id.encode(), sealed)
            return json.loads(zstandard.ZstdDecompressor().decompress(plain))  # type: ignore[no-any-return]
        except (AuthenticationFailed, zstandard.ZstdError, ValueError) as exc:
            raise IntegrityError(f"manifest of version {version_id} is damaged ({exc})") from exc

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """The commit point of a backup: a version exists once its manifest does."""
        vid = str(manifest["id"])
        plain = zstandard.ZstdCompressor(level=MANIFEST_LEVEL).compress(dumps(manifest))
        write_atomic(
            self.root / MANIFEST_DIR / vid, _seal(self.keys, "manifest", vid.encode(), plain)
        )

    def resolve_version(self, given: str) -> str:
        """A version as a person names it: its id, a unique prefix of it (as `dr store ls`
        shows ids), or ``latest`` (the newest by start time)."""
        ids = self.version_ids()
        if given == "latest":
            if not ids:
                raise NotFoundError(
                    f"no version in {self.root} yet", hint="back something up first"
                )
            readable = [(m["started"], vid) for vid, m, _ in self.manifests() if m is not None]
            if not readable:
                raise IntegrityError(f"no readable version in {self.root}")
            return max(readable)[1]
        if given in ids:
            return given
        found = [vid for vid in ids if vid.startswith(given)] if len(given) >= 4 else []
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ParameterError(
                f"{given!r} names {len(found)} versions: " + ", ".join(found[:5]),
                hint="give more of the id (`dr store ls` lists them)",
            )
        raise NotFoundError(
            f"no version {given!r} in {self.root}",
            hint="list them: `dr store ls` (an id, a unique prefix of 4 or more, or latest)",
        )

    def manifests(self) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
        """Every version as (id, manifest or None, error or None)."""
        for vid in self.version_ids():
            try:
                yield vid, self.read_manifest(vid), None
            except (IntegrityError, NotFoundError) as exc:
                yield vid, None, exc.message


class BlobSink:
    """Writes new blobs into packs during one backup or repack; dedupes against the index.

    Compression (the expensive part) runs on a small thread pool — zstd releases the GIL —
    while the caller reads and hashes the next data; sealing and pack order stay on the
    caller's thread, so packs are written in a deterministic order. Blobs go to the pool in
    batches of about BATCH_BYTES: one task per small file would cost more in handing work
    between threads than compressing it does. A full pack is hashed, written and synced on
    one more thread while the caller fills the next; :meth:`flush` waits for all of them,
    so packs are still durable before the index file that names them.
    """

    def __init__(self, repo: Repository, level: int) -> None:
        self.repo = repo
        self.level = level
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))
        self.batch: list[_Queued] = []
        self.batch_bytes = 0
        self.inflight: deque[tuple[list[_Queued], Future[Sequence[Any]]]] = deque()
        self.writer: PackWriter | None = None
        self.pack_pool = ThreadPoolExecutor(max_workers=1)  # writes finished packs, in order
        self.writing: deque[Future[list[BlobEntry]]] = deque()
        self.pending: set[bytes] = set()
        self.written: list[BlobEntry] = []
        self.added = 0
        self.added_by: dict[str, int] = {}  # bytes added, by the file (owner) that added them

    def has(self, blob_id: bytes) -> bool:
        return blob_id in self.pending or blob_id in self.repo.index.blobs

    def put(
        self, blob_id: bytes, blob_type: int, data: bytes | memoryview, owner: str = ""
    ) -> None:
        """Queue ``data`` for storing unless it is already there.

        What it adds is counted in ``added`` and ``added_by[owner]`` once it is written.
        """
        if self.has(blob_id):
            return
        self.pending.add(blob_id)
        self.batch.append(_Queued(blob_id, blob_type, data, owner))
        self.batch_bytes += len(data)
        if self.batch_bytes >= BATCH_BYTES:
            self._submit()

    def _submit(self) -> None:
        batch, self.batch, self.batch_bytes = self.batch, [], 0
        self.inflight.append((batch, self.pool.submit(self._compress, batch)))
        while len(self.inflight) > MAX_INFLIGHT:
            self._complete_one()

    def _compress(self, batch: list[_Queued]) -> Sequence[Any]:
        compressor = getattr(self.local, "compressor", None)
        if compressor is None:
            compressor = self.local.compressor = Compressor(self.level)
        return compressor.compress_many([q.data for q in batch])

    def _complete_one(self) -> None:
        """Seal the oldest batch into the pack (framing here: the compression thread then
        holds the interpreter lock only to start and end a batch)."""
        batch, future = self.inflight.popleft()
        for q, frame in zip(batch, future.result(), strict=True):
            self.put_packed(q.blob_id, q.blob_type, framed(q.data, frame), len(q.data), q.owner)

    def drain(self) -> None:
        """Wait for queued blobs; afterwards ``added`` includes them."""
        if self.batch:
            self._submit()
        while self.inflight:
            self._complete_one()

    def put_packed(
        self, blob_id: bytes, blob_type: int, packed: bytes, plain_len: int, owner: str = ""
    ) -> int:
        if self.writer is None:
            self.writer = PackWriter(self.repo.keys)
        size = self.writer.add(blob_id, blob_type, packed, plain_len)
        self.pending.add(blob_id)
        self.added += size
        self.added_by[owner] = self.added_by.get(owner, 0) + size
        if self.writer.size >= self.repo.pack_size:
            self._finish_pack()
        return size

    def flush(self) -> None:
        """Write every queued blob and the pack being filled; return once all are durable."""
        self.drain()
        self._finish_pack()
        while self.writing:
            self.written += self.writing.popleft().result()

    def _finish_pack(self) -> None:
        """Hand the full pack to the pack thread: sealing, hashing, writing and ``fsync``
        run there while this thread fills the next one (at most PACKS_IN_FLIGHT wait)."""
        if self.writer is not None and len(self.writer):
            self.writing.append(self.pack_pool.submit(self.writer.finish, self.repo.root))
            while len(self.writing) > PACKS_IN_FLIGHT:
                self.written += self.writing.popleft().result()
        self.writer = None

    def close(self) -> None:
        """Stop the threads (queued work is dropped after an error)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pack_pool.shutdown(wait=True, cancel_futures=True)

    def finish(self) -> str | None:
        """Write the last pack, then the index file covering this sink's packs."""
        self.flush()
        if not self.written:
            return None
        name = write_index(self.repo.root, self.repo.keys, self.written)
        self.repo.index.add(self.written)
        return name


# ------------------------------------------------------------------ init and open


def init_repository(
    root: Path,
    passphrase: str,
    *,
    key_file: Path | None = None,
    pack_size: int = 0,
    format_version: int = FORMAT_VERSION,
) -> tuple[Repository, Path]:
    """Create an empty repository and its key file (the key file before the config: no
    keyless repository). An interrupted init is recognised and finished by running it again
    (with an explicit ``key_file`` the retry keeps the key the first attempt wrote).
    ``format_version`` below the current one makes a repository as an earlier dr did (for
    the tests that prove such repositories still work)."""
    if (root / CONFIG_NAME).exists():
        raise StoreError(f"{root} already holds a dr repository")
    resume = root.exists() and any(root.iterdir())
    if resume and not is_partial_init(root):
        raise StoreError(f"{root} is not empty", hint="choose a new or empty directory")
    for sub in REPO_DIRS:  # first: a crash from here on is recognised as our partial init
        (root / sub).mkdir(parents=True, exist_ok=True)
    _clear_temp_config(root)
    repo_id, keys, kpath = _init_keys(key_file, passphrase, resume=resume)
    config = _new_config(repo_id, keys, pack_size or DEFAULT_PACK_SIZE, format_version)
    write_atomic(root / CONFIG_NAME, json.dumps(config, indent=2).encode())
    fsync_dir(root)
    return Repository(root, config, keys, kpath), kpath


def _init_keys(
    key_file: Path | None, passphrase: str, *, resume: bool
) -> tuple[str, MasterKeys, Path]:
    """A new master key, written to its key file before anything else.

    A retried init whose explicit ``key_file`` an interrupted init already wrote takes that
    key (it opens with the same passphrase), so the retry finishes the same repository.
    """
    if resume and key_file is not None and key_file.exists():
        doc = keyfile.read_key_file(key_file)
        return str(doc["repository"]), keyfile.unwrap(doc, passphrase, source=key_file), key_file
    repo_id = secrets.token_hex(16)
    keys = MasterKeys.generate()
    kpath = key_file or keyfile.key_path(repo_id)
    keyfile.write_key_file(kpath, keyfile.wrap(keys, repo_id, passphrase))
    return repo_id, keys, kpath


REPO_DIRS = (DATA_DIR, INDEX_DIR, MANIFEST_DIR, LOCK_DIR)


def is_partial_init(root: Path) -> bool:
    """True when ``root`` holds only what an interrupted ``init`` leaves: the empty
    repository folders and a temporary config, no config. Anything else is someone's data."""
    for entry in root.iterdir():
        if entry.name in REPO_DIRS and entry.is_dir() and not any(entry.iterdir()):
            continue
        if entry.name.startswith(f".{CONFIG_NAME}.") and entry.name.endswith(TMP_SUFFIX):
            continue
        return False
    return True


def _clear_temp_config(root: Path) -> None:
    """Remove a temporary config an interrupted init left (the retry writes a new one)."""
    for entry in root.iterdir():
        if entry.name.startswith(f".{CONFIG_NAME}.") and entry.name.endswith(TMP_SUFFIX):
            entry.unlink()


def _new_config(
    repo_id: str, keys: MasterKeys, pack_size: int, version: int = FORMAT_VERSION
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "format": REPO_FORMAT,
        "version": version,
        "id": repo_id,
        "created": iso(utcnow()),
        "created_on": socket.gethostname(),
        "cipher": "aes-256-gcm",
        "kdf_object_keys": "hkdf-sha256",
        "id_hash": "hmac-sha256",
        "chunker": {"name": "fastcdc2020", "min": CDC_MIN, "avg": CDC_AVG, "max": CDC_MAX},
        "pack_size": pack_size,
        "key_check": keys.key_check(repo_id),
    }
    return {**config, "config_mac": config_mac(keys, config)}


CONFIG_MAC_FIELD = "config_mac"


def config_mac(keys: MasterKeys, config: dict[str, Any]) -> str:
    """HMAC-SHA256 (id key) of the config's canonical JSON without this field: an edited
    chunker, pack size or id is caught when the repository is opened."""
    body = {k: v for k, v in config.items() if k != CONFIG_MAC_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.digest(keys.id_key, b"dr-config/" + text.encode(), "sha256").hex()


def config_problem(keys: MasterKeys, config: dict[str, Any]) -> str | None:
    """Why the config is not the one this key wrote, or None (a config from before the
    field existed is reported as not authenticated)."""
    mac = config.get(CONFIG_MAC_FIELD)
    if mac is None:
        return "the repository config is not authenticated (made before config_mac existed)"
    if not isinstance(mac, str) or not hmac.compare_digest(mac, config_mac(keys, config)):
        return "the repository config was changed after the repository was made (config_mac)"
    return None


def read_config(root: Path) -> dict[str, Any]:
    path = root / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StoreError(
            f"{root} is not a dr repository (no {CONFIG_NAME})",
            hint="create one with `dr store init PATH`",
        ) from exc
    except (OSError, ValueError, RecursionError) as exc:
        raise IntegrityError(f"{path}: unreadable repository config ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != REPO_FORMAT:
        raise StoreError(f"{path}: not a dr repository config (field 'format')")
    version = config.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise IntegrityError(f"{path}: damaged repository config (field 'version')")
    if version > FORMAT_VERSION:
        raise StoreError(
            f"{path}: repository format {version} is newer than this dr (it reads up to "
            f"{FORMAT_VERSION})",
            hint="use the dr release that made the repository, or a newer one",
        )
    if "id" not in config:
        raise IntegrityError(
            f"{path}: damaged repository config (no field 'id')",
            hint="restore the config from a copy; the id ties the repository to its key",
        )
    keyfile.check_repo_id(config["id"], f"{path}: field 'id'")
    return config


def locate_key(
    root: Path, key_file: Path | None = None
) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    """The repository's config, its key file's path and document — what opening it needs
    before the passphrase; StoreError / KeyMismatch name what is missing or foreign."""
    config = read_config(root)
    repo_id = str(config["id"])
    kpath = key_file or keyfile.key_path(repo_id)
    doc = keyfile.read_key_file(kpath)
    if doc.get("repository") != repo_id:
        raise KeyMismatch(
            f"key file {kpath} belongs to repository {doc.get('repository')}, "
            f"not to {root} ({repo_id})",
            hint="use the key file exported from the machine that created this repository",
        )
    return config, kpath, doc


def open_repository(
    root: Path, passphrase: str | None = None, *, key_file: Path | None = None
) -> Repository:
    """Open with the key file and passphrase; KeyMismatch says exactly which one is wrong."""
    config, kpath, doc = locate_key(root, key_file)
    repo_id = str(config["id"])
    origin = None
    if passphrase is None:
        found = find_passphrase()
        passphrase, origin = found.value, found.origin
    keys = keyfile.unwrap(doc, passphrase, source=kpath, origin=origin)
    if keys.key_check(repo_id) != config.get("key_check"):
        raise KeyMismatch(
            f"key file {kpath} does not open {root}: the repository was made with another key",
        )
    problem = config_problem(keys, config)
    if problem and config.get(CONFIG_MAC_FIELD) is not None:
        raise IntegrityError(
            f"{root / CONFIG_NAME}: {problem}",
            hint="restore the config from a copy; `dr store verify` says what else is wrong",
        )
    return Repository(root, config, keys, kpath)
