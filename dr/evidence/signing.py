"""Who signs evidence: a :class:`Signer` (the interface) and the Ed25519 key-file signer.

The evidence key lives where the repository keys live — ``$DR_KEY_DIR`` or
``~/.config/dr/keys`` (directory 0700, private key 0600) — never in the workspace, the
catalog or the artifact repository. ``dr evidence keygen`` makes it and refuses to replace
one. A key held by an external service (a KMS, an HSM, a hardware SSH key) is added by
implementing :class:`Signer`: everything that signs — the DSSE envelope, the SSH signature,
the log checkpoints — goes through its two members.

The key id is the one securesystemslib computes (``SSlibKey.from_crypto(key).keyid``: the
SHA-256 of the canonical JSON of the public-key dictionary), so securesystemslib's DSSE
verifier, which matches signatures to keys by id, accepts our envelopes.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dr.errors import EvidenceError, EvidenceKeyMissing
from dr.store.format import write_atomic
from dr.store.keyfile import KEY_DIR_ENV, default_key_dir

KEY_NAME = "evidence-ed25519"
PRINCIPAL = "dr"  # the identity in allowed_signers (`ssh-keygen -Y verify -I dr`)


class Signer(ABC):
    """Signs bytes with an Ed25519 key; implement it for a key kept by a service."""

    @property
    @abstractmethod
    def public_key(self) -> Ed25519PublicKey:
        """The public half (written into every export, used for verification)."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data`` (RFC 8032, no pre-hash)."""

    @property
    def keyid(self) -> str:
        return keyid(self.public_key)


class FileSigner(Signer):
    """The private key in a PKCS#8 PEM file (unencrypted, mode 0600)."""

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None) -> None:
        self._private = private
        self.path = path

    @classmethod
    def load(cls, path: Path | None = None) -> FileSigner:
        path = path or private_key_path()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise EvidenceKeyMissing(
                f"no evidence signing key at {path}",
                hint=f"create one with `dr evidence keygen` (kept in ${KEY_DIR_ENV})",
            ) from None
        except OSError as exc:
            raise EvidenceError(f"{path}: cannot read the evidence key ({exc.strerror})") from exc
        return cls(_parse_private(data, path), path)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


def key_dir() -> Path:
    return default_key_dir()


def private_key_path(directory: Path | None = None) -> Path:
    return (directory or key_dir()) / f"{KEY_NAME}.pem"


def public_key_path(directory: Path | None = None) -> Path:
    return (directory or key_dir()) / f"{KEY_NAME}.pub.pem"


def keygen(directory: Path | None = None) -> FileSigner:
    """Make a new key pair in the key directory; refuse if one is there already."""
    path = private_key_path(directory)
    if path.exists():
        raise EvidenceError(
            f"{path}: an evidence key already exists; refusing to overwrite it",
            hint="records signed by it could no longer be told apart; move it aside on purpose",
        )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, pem, mode=0o600)
    write_atomic(public_key_path(directory), public_pem(private.public_key()), mode=0o644)
    return FileSigner(private, path)


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_openssh(key: Ed25519PublicKey) -> str:
    """``ssh-ed25519 AAAA...`` (one line, no comment)."""
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode("ascii")


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def allowed_signers(key: Ed25519PublicKey, namespaces: tuple[str, ...]) -> str:
    """The ``allowed_signers`` line for ``ssh-keygen -Y verify -I dr``."""
    return f'{PRINCIPAL} namespaces="{",".join(namespaces)}" {public_openssh(key)}\n'


def keyid(key: Ed25519PublicKey) -> str:
    """The securesystemslib key id of ``key``."""
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    return str(SSlibKey.from_crypto(key).keyid)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM (SubjectPublicKeyInfo) or OpenSSH (``ssh-ed25519``) file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot read the public key ({exc.strerror})") from exc
    key: object
    try:
        if data.lstrip().startswith(b"ssh-ed25519"):
            key = serialization.load_ssh_public_key(data.strip().split(b"\n")[0])
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise EvidenceError(f"{path}: not a public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError(f"{path}: not an Ed25519 public key")
    return key


def _parse_private(data: bytes, path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise EvidenceError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"{path}: not an Ed25519 private key")
    return key
