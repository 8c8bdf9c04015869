"""The key file: the repository's master keys, wrapped by a passphrase through Argon2id.

The key file lives on the machine that created the repository — ``$DR_KEY_DIR/<repo-id>.key``
or ``~/.config/dr/keys/<repo-id>.key`` — and never inside the repository: whoever holds the
repository alone cannot read it, and whoever loses the key file and the passphrase has lost
the data. ``dr store key export`` copies it out on purpose.

Argon2id parameters are stored in the key file, so they can be raised later without
breaking old keys. ``DR_KDF_PROFILE=fast`` selects a deliberately cheap setting for test
suites; never use it for real keys.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from dr.errors import KeyMismatch, ParameterError, StoreError
from dr.store.crypto import AAD_PREFIX, MASTER_LEN, MasterKeys
from dr.store.format import iso, utcnow, write_atomic
from dr.store.passphrase import PASSPHRASE_ENV

KEY_DIR_ENV = "DR_KEY_DIR"
# A repository id becomes a file name: letters, digits, '.', '_', '-'; never a path.
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KDF_PROFILE_ENV = "DR_KDF_PROFILE"
KEY_FORMAT = "dr-key"

KDF_PROFILES: dict[str, dict[str, int]] = {
    # RFC 9106 second recommended option; the same as borg 2.
    "default": {"time_cost": 3, "memory_kib": 65536, "parallelism": 4},
    "fast": {"time_cost": 1, "memory_kib": 1024, "parallelism": 1},
}


@dataclass(frozen=True)
class KdfParams:
    time_cost: int
    memory_kib: int
    parallelism: int
    salt: bytes

    def derive(self, passphrase: str) -> bytes:
        kdf = Argon2id(
            salt=self.salt,
            length=32,
            iterations=self.time_cost,
            lanes=self.parallelism,
            memory_cost=self.memory_kib,
        )
        return kdf.derive(passphrase.encode("utf-8"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": "argon2id",
            "time_cost": self.time_cost,
            "memory_kib": self.memory_kib,
            "parallelism": self.parallelism,
            "salt": _b64(self.salt),
        }


def default_key_dir() -> Path:
    env = os.environ.get(KEY_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "dr" / "keys"


def check_repo_id(repo_id: object, where: str = "repository id") -> str:
    """``repo_id`` if it is safe as a file name, else a StoreError naming ``where``."""
    text = str(repo_id) if isinstance(repo_id, str) else ""
    if not _REPO_ID.match(text) or ".." in text:
        raise StoreError(
            f"{where}: {repo_id!r} is not a repository id (letters, digits, '.', '_', '-')",
            hint="the repository config or key file was edited or damaged; restore it",
        )
    return text


def key_path(repo_id: str, key_dir: Path | None = None) -> Path:
    """``<key dir>/<repo-id>.key``; the id is checked, so it can never leave the key dir."""
    return (key_dir or default_key_dir()) / f"{check_repo_id(repo_id)}.key"


def _kdf_profile() -> dict[str, int]:
    name = os.environ.get(KDF_PROFILE_ENV, "default")
    if name not in KDF_PROFILES:
        raise ParameterError(f"${KDF_PROFILE_ENV}={name!r} is not one of {sorted(KDF_PROFILES)}")
    return KDF_PROFILES[name]


def wrap(keys: MasterKeys, repo_id: str, passphrase: str) -> dict[str, Any]:
    """The key file document for ``keys`` under ``passphrase``."""
    kdf = KdfParams(salt=os.urandom(16), **_kdf_profile())
    nonce = os.urandom(12)
    sealed = AESGCM(kdf.derive(passphrase)).encrypt(nonce, keys.to_bytes(), _aad(repo_id))
    return {
        "format": KEY_FORMAT,
        "version": 1,
        "repository": repo_id,
        "created": iso(utcnow()),
        "host": socket.gethostname(),
        "kdf": kdf.to_dict(),
        "cipher": "aes-256-gcm",
        "wrapped": _b64(nonce + sealed),
    }


def write_key_file(path: Path, document: dict[str, Any]) -> None:
    if path.exists():
        raise StoreError(f"{path}: a key file already exists; refusing to overwrite it")
    data = json.dumps(document, indent=2).encode()
    _private_dir(path.parent)
    write_atomic(path, data, mode=0o600)


def _private_dir(directory: Path) -> None:
    """Create the key directory readable by its owner only (0700), whatever the umask."""
    if directory.exists():
        return
    directory.mkdir(parents=True, mode=0o700)
    directory.chmod(0o700)


def read_key_file(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KeyMismatch(
            f"no key file at {path}",
            hint="the key stays on the machine that created the repository; copy an exported "
            f"key there or point ${KEY_DIR_ENV} / --key-file at it",
        ) from exc
    except (OSError, ValueError, RecursionError) as exc:
        raise KeyMismatch(f"{path}: not a dr key file ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise KeyMismatch(f"{path}: not a dr key file (field 'format')")
    return doc


def unwrap(
    doc: dict[str, Any], passphrase: str, *, source: Path, origin: str | None = None
) -> MasterKeys:
    """The master keys in a key file; :class:`KeyMismatch` for a wrong passphrase (naming
    where the passphrase came from, when the caller knows)."""
    try:
        kdf_doc = doc["kdf"]
        kdf = KdfParams(
            time_cost=int(kdf_doc["time_cost"]),
            memory_kib=int(kdf_doc["memory_kib"]),
            parallelism=int(kdf_doc["parallelism"]),
            salt=base64.b64decode(kdf_doc["salt"]),
        )
        blob = base64.b64decode(doc["wrapped"])
        repo_id = str(doc["repository"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyMismatch(f"{source}: damaged key file (field {exc})") from exc
    try:
        raw = AESGCM(kdf.derive(passphrase)).decrypt(blob[:12], blob[12:], _aad(repo_id))
    except InvalidTag as exc:
        raise KeyMismatch(
            f"{source}: wrong passphrase for this key file",
            hint=f"check the passphrase from {origin or '$' + PASSPHRASE_ENV}; "
            "the passphrase cannot be recovered",
        ) from exc
    if len(raw) != MASTER_LEN:
        raise KeyMismatch(f"{source}: damaged key file (key length)")
    return MasterKeys.from_bytes(raw)


def _aad(repo_id: str) -> bytes:
    return AAD_PREFIX + b"key/" + repo_id.encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
