"""The evidence log: every record, in order, hash-chained, with a signed checkpoint after each.

``<workspace>/evidence/`` holds::

    log.jsonl              one entry per record (one line of canonical JSON each)
    checkpoints.jsonl      every checkpoint ever signed (text and both signatures)
    checkpoint.txt         the latest checkpoint, with
    checkpoint.txt.sig       its SSH signature (namespace dr-evidence-checkpoint)
    checkpoint.txt.ed25519   its raw Ed25519 signature, base64
    records/<seq>-<run>/   envelope.json, envelope.sig, plan.json, journal.json

An entry's hash is the SHA-256 of its line *including* the newline (``sha256sum`` of the
line as a file), and each entry carries the hash of the one before it (``prev``; the first
carries 64 zeros). A checkpoint names the log's size and the hash of its last entry, so
editing or reordering entries breaks the chain, and removing the last ones no longer
matches the checkpoint. Appends take an exclusive lock on ``log.lock``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dr.errors import EvidenceError
from dr.evidence import sshsig
from dr.evidence.signing import Signer
from dr.store.format import write_atomic

GENESIS = "0" * 64
ORIGIN = "dr-evidence-log"


def line_of(entry: dict[str, Any]) -> bytes:
    """An entry's bytes in the log: canonical JSON and a newline."""
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def entry_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    size: int
    head: str
    time: str
    keyid: str

    def text(self) -> str:
        return (
            f"{ORIGIN}\nsize {self.size}\nhead {self.head}\ntime {self.time}\nkeyid {self.keyid}\n"
        )

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.splitlines()
        if len(lines) != 5 or lines[0] != ORIGIN:
            raise ValueError("not a dr evidence-log checkpoint")
        fields = dict(line.split(" ", 1) for line in lines[1:])
        return cls(int(fields["size"]), fields["head"], fields["time"], fields["keyid"])


@dataclass(frozen=True)
class SignedCheckpoint:
    text: str
    sshsig: str
    ed25519: str  # base64 of the raw signature of ``text``

    def to_dict(self) -> dict[str, str]:
        return {"text": self.text, "sshsig": self.sshsig, "ed25519": self.ed25519}


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> SignedCheckpoint:
    data = cp.text().encode()
    raw = base64.b64encode(signer.sign(data)).decode()
    return SignedCheckpoint(cp.text(), sshsig.sign(data, signer, sshsig.CHECKPOINT_NAMESPACE), raw)


class EvidenceLog:
    """The log directory of one workspace."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def path(self) -> Path:
        return self.root / "log.jsonl"

    def record_dir(self, name: str) -> Path:
        return self.root / "records" / name

    def lines(self) -> list[bytes]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        return [line + b"\n" for line in data.split(b"\n")[:-1]]

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def checkpoints(self) -> list[SignedCheckpoint]:
        path = self.root / "checkpoints.jsonl"
        if not path.exists():
            return []
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
        return [SignedCheckpoint(r["text"], r["sshsig"], r["ed25519"]) for r in rows]

    @contextmanager
    def locked(self) -> Iterator[None]:
        from engine.filelock import lock, unlock

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "log.lock", "a+") as fh:
            lock(fh.fileno())
            try:
                yield
            finally:
                unlock(fh.fileno())

    def append(self, fields: dict[str, Any], signer: Signer, at: str) -> dict[str, Any]:
        """Add an entry after the current head and sign a checkpoint (caller holds the lock).

        ``fields`` must not hold ``seq`` or ``prev``; they are set here."""
        lines = self.lines()
        prev = entry_hash(lines[-1]) if lines else GENESIS
        entry = {**fields, "seq": len(lines) + 1, "prev": prev}
        line = line_of(entry)
        with open(self.path, "ab") as fh:
            fh.write(line)
            fh.flush()
            _fsync(fh.fileno())
        cp = Checkpoint(len(lines) + 1, entry_hash(line), at, signer.keyid)
        self._write_checkpoint(sign_checkpoint(cp, signer))
        return entry

    def _write_checkpoint(self, signed: SignedCheckpoint) -> None:
        with open(self.root / "checkpoints.jsonl", "ab") as fh:
            fh.write(line_of(signed.to_dict()))
            fh.flush()
            _fsync(fh.fileno())
        write_files(self.root, signed)

    def latest_checkpoint(self) -> SignedCheckpoint:
        found = self.checkpoints()
        if not found:
            raise EvidenceError(f"{self.root}: the evidence log has no checkpoint")
        return found[-1]


def write_files(directory: Path, signed: SignedCheckpoint) -> None:
    """``checkpoint.txt`` and its two signature files in ``directory``."""
    write_atomic(directory / "checkpoint.txt", signed.text.encode())
    write_atomic(directory / "checkpoint.txt.sig", signed.sshsig.encode())
    write_atomic(directory / "checkpoint.txt.ed25519", (signed.ed25519 + "\n").encode())


def _fsync(fd: int) -> None:
    import os

    os.fsync(fd)
