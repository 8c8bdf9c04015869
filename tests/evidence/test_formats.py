"""The formats against their references: DSSE PAE, securesystemslib key ids, OpenSSH SSHSIG."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sshsig.sshsig import ssh_dearmor_sshsig as dearmor

from dr.errors import EvidenceInvalid
from dr.evidence import dsse, intoto, sshsig
from dr.evidence.log import Checkpoint, EvidenceLog, entry_hash
from dr.evidence.signing import FileSigner, allowed_signers, keyid, public_raw

SEED = bytes(range(32))


@pytest.fixture
def signer() -> FileSigner:
    return FileSigner(Ed25519PrivateKey.from_private_bytes(SEED))


def test_pae_is_the_dsse_spec_example() -> None:
    # secure-systems-lab/dsse protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_keyid_is_securesystemslibs_and_the_shell_recipe_computes_it(signer: FileSigner) -> None:
    from securesystemslib.signer import SSlibKey

    hexkey = public_raw(signer.public_key).hex()
    canonical = '{"keytype":"ed25519","keyval":{"public":"HEX"},"scheme":"ed25519"}'
    canonical = canonical.replace("HEX", hexkey)
    assert keyid(signer.public_key) == hashlib.sha256(canonical.encode()).hexdigest()
    assert keyid(signer.public_key) == SSlibKey.from_crypto(signer.public_key).keyid


def test_an_envelope_verifies_with_securesystemslib_and_not_once_changed(
    signer: FileSigner,
) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    statement = intoto.statement([intoto.subject("plan.json", b"{}")], {"results": "PASSED"})
    env = dsse.sign(intoto.dumps(statement), signer)
    assert env["signatures"][0]["keyid"] == signer.keyid
    Envelope.from_dict(json.loads(dsse.dumps(env))).verify(
        [SSlibKey.from_crypto(signer.public_key)], 1
    )
    assert json.loads(dsse.verify(env, signer.public_key))["_type"] == intoto.STATEMENT_TYPE
    changed = dict(env, payload=env["payload"][:-4] + "AAA=")
    with pytest.raises(EvidenceInvalid, match="signature"):
        dsse.verify(changed, signer.public_key)


def _keygen_verify(tmp: Path, data: bytes, sig: str, namespace: str, signer: FileSigner) -> int:
    (tmp / "msg").write_bytes(data)
    (tmp / "msg.sig").write_text(sig)
    (tmp / "allowed").write_text(allowed_signers(signer.public_key, (namespace,)))
    cmd = ["ssh-keygen", "-Y", "verify", "-f", str(tmp / "allowed"), "-I", "dr", "-n",
           namespace, "-s", str(tmp / "msg.sig")]  # fmt: skip
    with open(tmp / "msg", "rb") as fh:
        return subprocess.run(cmd, stdin=fh, capture_output=True, check=False).returncode


def test_our_ssh_signature_passes_ssh_keygen_verify(tmp_path: Path, signer: FileSigner) -> None:
    sig = sshsig.sign(b"an envelope\n", signer)
    assert _keygen_verify(tmp_path, b"an envelope\n", sig, sshsig.NAMESPACE, signer) == 0
    assert _keygen_verify(tmp_path, b"an envelope!\n", sig, sshsig.NAMESPACE, signer) != 0
    assert _keygen_verify(tmp_path, b"an envelope\n", sig, "other", signer) != 0


def test_a_signature_by_ssh_keygen_verifies_here(tmp_path: Path, signer: FileSigner) -> None:
    key = tmp_path / "id_ed25519"
    key.write_bytes(
        Ed25519PrivateKey.from_private_bytes(SEED).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    (tmp_path / "msg").write_bytes(b"signed by openssh\n")
    subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", sshsig.NAMESPACE,
                    str(tmp_path / "msg")], check=True, capture_output=True)  # fmt: skip
    theirs = (tmp_path / "msg.sig").read_text()
    sshsig.verify(b"signed by openssh\n", theirs, signer.public_key)
    ours = sshsig.sign(b"signed by openssh\n", signer)
    assert dearmor(theirs) == dearmor(ours)  # the same bytes: Ed25519 is deterministic
    with pytest.raises(EvidenceInvalid):
        sshsig.verify(b"signed by openssh\n", theirs, signer.public_key, "other")


def test_log_entries_chain_by_the_sha256_of_their_lines(tmp_path: Path, signer: FileSigner) -> None:
    log = EvidenceLog(tmp_path)
    with log.locked():
        first = log.append({"run": "r1"}, signer, "t1")
        second = log.append({"run": "r2"}, signer, "t2")
    lines = log.lines()
    assert first["prev"] == "0" * 64 and second["prev"] == hashlib.sha256(lines[0]).hexdigest()
    cp = Checkpoint.parse(log.latest_checkpoint().text)
    assert (cp.size, cp.head, cp.keyid) == (2, entry_hash(lines[1]), signer.keyid)
    assert len(log.checkpoints()) == 2
    assert (tmp_path / "checkpoint.txt").read_text() == cp.text()
