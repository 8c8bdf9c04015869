"""The DSSE envelope (secure-systems-lab/dsse, protocol v1) around an in-toto Statement.

The signature covers the pre-authentication encoding, not the JSON::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

(``LEN`` is the byte length in ASCII decimal, ``SP`` one space.) Envelopes are built and
checked with securesystemslib's :class:`~securesystemslib.dsse.Envelope`; the bytes are
signed by our :class:`~dr.evidence.signing.Signer`, and the signature's ``keyid`` is the
securesystemslib key id, which its verifier requires.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dr.errors import EvidenceInvalid
from dr.evidence.signing import Signer

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The bytes a DSSE signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign(payload: bytes, signer: Signer, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
    """The envelope as a JSON-ready dict, signed once by ``signer``."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import Signature  # type: ignore[attr-defined]

    raw = signer.sign(pae(payload_type, payload))
    sig = Signature(keyid=signer.keyid, sig=raw.hex())
    envelope = Envelope(payload=payload, payload_type=payload_type, signatures={sig.keyid: sig})
    return dict(envelope.to_dict())


def dumps(envelope: dict[str, Any]) -> bytes:
    """The envelope file's bytes (what the SSH signature and the log entry cover)."""
    return (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode("utf-8")


def verify(envelope: dict[str, Any], key: Ed25519PublicKey) -> bytes:
    """Check the envelope's signature by ``key``; return the payload it covers."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    try:
        parsed = Envelope.from_dict(copy.deepcopy(envelope))
    except (KeyError, TypeError, ValueError) as exc:
        raise EvidenceInvalid(f"signature: not a DSSE envelope ({exc})") from exc
    if parsed.payload_type != PAYLOAD_TYPE:
        raise EvidenceInvalid(f"signature: payloadType is {parsed.payload_type!r}")
    try:
        parsed.verify([SSlibKey.from_crypto(key)], 1)
    except VerificationError as exc:
        raise EvidenceInvalid(
            "signature: the DSSE signature does not verify with this public key",
            hint="the envelope was changed after signing, or it was signed by another key",
        ) from exc
    return bytes(parsed.payload)
