"""Detached SSH signatures (OpenSSH ``PROTOCOL.sshsig``), so ``ssh-keygen -Y verify`` suffices.

The signed blob is ``"SSHSIG" || string(namespace) || string(reserved) || string(hash_alg)
|| string(H(message))`` with SHA-512; the armored signature carries the public key, the
namespace, the hash algorithm and the Ed25519 signature of that blob. The ``sshsig``
package (PyPI) supplies the blob, the armor and verification; it does not sign, so the
signature itself is made here through our :class:`~dr.evidence.signing.Signer`.
"""

from __future__ import annotations

import hashlib
import io

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dr.errors import EvidenceInvalid
from dr.evidence.signing import Signer, public_openssh, public_raw

NAMESPACE = "dr-evidence"  # over an envelope file
CHECKPOINT_NAMESPACE = "dr-evidence-checkpoint"  # over a log checkpoint
_HASH = b"sha512"
_KEY_TYPE = b"ssh-ed25519"


def sign(message: bytes, signer: Signer, namespace: str = NAMESPACE) -> str:
    """The armored signature (``-----BEGIN SSH SIGNATURE-----`` ...) of ``message``."""
    from sshsig.binary_io import SshWriter
    from sshsig.sshsig import SshsigSignature, SshsigWrapper

    wrapper = SshsigWrapper(
        namespace=namespace.encode(), hash_algo=_HASH, hash=hashlib.sha512(message).digest()
    )
    raw = signer.sign(bytes(wrapper))
    out = SshWriter(io.BytesIO())
    out.write(b"SSHSIG")
    out.write_uint32(SshsigSignature.VERSION)
    out.write_string(_ssh_string_pair(_KEY_TYPE, public_raw(signer.public_key)))
    out.write_string(namespace.encode())
    out.write_string(b"")
    out.write_string(_HASH)
    out.write_string(_ssh_string_pair(_KEY_TYPE, raw))
    return SshsigSignature(out.output_fh.getvalue()).to_armored()


def verify(message: bytes, armored: str, key: Ed25519PublicKey, namespace: str = NAMESPACE) -> None:
    """Raise :class:`EvidenceInvalid` unless ``armored`` is ``key``'s signature of ``message``."""
    import sshsig

    try:
        signer = sshsig.PublicKey.from_openssh_str(public_openssh(key))
        sshsig.verify(io.BytesIO(message), armored, [signer], namespace=namespace)
    except (sshsig.InvalidSignature, ValueError, NotImplementedError) as exc:
        raise EvidenceInvalid(
            f"signature: the SSH signature ({namespace}) does not verify ({exc})"
        ) from exc


def _ssh_string_pair(first: bytes, second: bytes) -> bytes:
    from sshsig.binary_io import SshWriter

    out = SshWriter(io.BytesIO())
    out.write_string(first)
    out.write_string(second)
    return out.output_fh.getvalue()
