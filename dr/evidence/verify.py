"""Offline verification of an exported record, or of a workspace's whole evidence log.

Each check is reported with its category, so a failure says exactly what failed:

* ``signature``  the DSSE signature of the Statement, the SSH signature of the envelope file
* ``digest``     a subject file against the Statement; the envelope against its log entry
* ``chain``      the run journal's hash chain; the evidence log's chain of entries
* ``checkpoint`` the signed checkpoint: its signatures, and that it names the log's head

Nothing here needs the network, the workspace's catalog or dr's own key: only the files
and the public key (``--pubkey``, else the one shipped beside the record).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dr.errors import EvidenceError, EvidenceInvalid
from dr.evidence import dsse, intoto, sshsig
from dr.evidence.log import GENESIS, Checkpoint, EvidenceLog, SignedCheckpoint, entry_hash
from dr.evidence.signing import keyid, load_public_key
from engine.journal import record_hash


@dataclass(frozen=True)
class Check:
    category: str
    ok: bool
    what: str


@dataclass
class Report:
    path: str
    key: str = ""
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, category: str, ok: bool, what: str) -> bool:
        self.checks.append(Check(category, ok, what))
        return ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "key": self.key,
            "checks": [c.__dict__ for c in self.checks],
            "failed": [c.__dict__ for c in self.checks if not c.ok],
        }


def verify_path(path: Path, pubkey: Path | None = None) -> Report:
    """An export directory (``envelope.json`` + ``log/``) or an evidence-log directory."""
    if (path / "log.jsonl").exists():
        return verify_log(path, _key(path, pubkey, "the workspace key"))
    if (path / "envelope.json").exists():
        return verify_export(path, _key(path, pubkey, "the key shipped in the export"))
    raise EvidenceError(
        f"{path}: neither an exported record (envelope.json) nor an evidence log (log.jsonl)",
        hint="pass the directory `dr evidence export` wrote, or <workspace>/evidence",
    )


def _key(path: Path, pubkey: Path | None, fallback: str) -> tuple[Ed25519PublicKey, str]:
    if pubkey is not None:
        return load_public_key(pubkey), str(pubkey)
    shipped = path / "evidence.pub.pem"
    if shipped.exists():
        return load_public_key(shipped), f"{shipped} ({fallback}: pass --pubkey to pin yours)"
    from dr.evidence.signing import public_key_path

    return load_public_key(public_key_path()), str(public_key_path())


# -- one exported record ----------------------------------------------------------------


def verify_export(path: Path, key: tuple[Ed25519PublicKey, str]) -> Report:
    report = Report(str(path), key[1])
    envelope_bytes = (path / "envelope.json").read_bytes()
    statement = guarded(report, "signature", "envelope.json", check_record, path,
                        envelope_bytes, key[0], report)  # fmt: skip
    if statement is not None:
        guarded(report, "chain", "journal.json", _check_journal, path, statement, report)
    guarded(report, "chain", "log/", _check_proof, path / "log", envelope_bytes, statement,
            key[0], report)  # fmt: skip
    return report


_DAMAGE = (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError)


def guarded(report: Report, category: str, label: str, check: Any, *args: Any) -> Any:
    """Run one check; a file too damaged to read is a failed check, not a crash."""
    try:
        return check(*args)
    except _DAMAGE as exc:
        report.add(category, False, f"{label}: unreadable ({type(exc).__name__}: {exc})")
        return None


def check_record(
    path: Path, envelope_bytes: bytes, key: Ed25519PublicKey, report: Report
) -> dict[str, Any] | None:
    """Both signatures and the subjects of one record directory; the Statement if signed."""
    _check_sshsig(path, envelope_bytes, key, report)
    try:
        payload = dsse.verify(json.loads(envelope_bytes), key)
    except (EvidenceInvalid, ValueError) as exc:
        report.add("signature", False, f"{path.name}/envelope.json: {exc}")
        return None
    report.add("signature", True, f"{path.name}/envelope.json: DSSE signature verifies")
    statement = json.loads(payload)
    problems = intoto.check_shape(statement)
    if problems:
        report.add("digest", False, f"statement: {'; '.join(problems)}")
        return None
    for subject in statement["subject"]:
        _check_subject(path, subject, report)
    return dict(statement)


def _check_sshsig(path: Path, data: bytes, key: Ed25519PublicKey, report: Report) -> None:
    sig = path / "envelope.sig"
    if not sig.exists():
        report.add("signature", False, f"{path.name}/envelope.sig is missing")
        return
    try:
        sshsig.verify(data, sig.read_text(encoding="ascii"), key)
    except EvidenceInvalid as exc:
        report.add("signature", False, f"{path.name}/envelope.sig: {exc.message}")
        return
    report.add("signature", True, f"{path.name}/envelope.sig: SSH signature verifies")


def _check_subject(path: Path, subject: dict[str, Any], report: Report) -> None:
    name, want = str(subject["name"]), subject["digest"]["sha256"]
    target = path / Path(name).name
    if not target.exists():
        report.add("digest", False, f"subject {name}: the file is missing")
        return
    got = hashlib.sha256(target.read_bytes()).hexdigest()
    ok = got == want
    report.add(
        "digest", ok, f"subject {name}: sha256 {'matches' if ok else f'is {got}, not {want}'}"
    )


def _check_journal(path: Path, statement: dict[str, Any], report: Report) -> None:
    """Re-derive the run journal's chain from its export; tie it to the plan and record."""
    journal = json.loads((path / "journal.json").read_text(encoding="utf-8"))
    problems = journal_problems(journal["run"]["id"], journal["records"])
    plan_sha = hashlib.sha256((path / "plan.json").read_bytes()).hexdigest()
    records = journal["records"]
    if not records or records[0]["body"].get("plan_sha256") != plan_sha:
        problems.append("the journal's first record does not name this plan.json")
    head = statement["predicate"]["run"]["journal_head"]
    if records and records[-1]["hash"] != head:
        problems.append("the record's journal_head is not the journal's last record")
    what = "; ".join(problems) or f"run journal: {len(records)} records, chain intact"
    report.add("chain", not problems, what)


def journal_problems(run_id: str, records: list[dict[str, Any]]) -> list[str]:
    problems, prev = [], GENESIS
    for i, rec in enumerate(records, 1):
        again = record_hash(
            rec["prev"], run_id, rec["n"], rec["at"], rec["kind"], rec["step"], rec["body"]
        )
        if rec["n"] != i or rec["prev"] != prev or again != rec["hash"]:
            problems.append(f"run journal record {rec['n']}: broken chain (edited or moved?)")
        prev = rec["hash"]
    return problems


# -- the log ----------------------------------------------------------------------------


def _check_proof(
    path: Path,
    envelope: bytes,
    statement: dict[str, Any] | None,
    key: Ed25519PublicKey,
    report: Report,
) -> None:
    lines = _lines(path / "entries.jsonl")
    if not lines:
        report.add("chain", False, "log/entries.jsonl is missing or empty")
        return
    first = json.loads(lines[0])
    ok = first.get("envelope_sha256") == hashlib.sha256(envelope).hexdigest()
    said = "matches" if ok else "does not match envelope.json"
    report.add("digest", ok, f"log entry {first.get('seq')}: envelope sha256 {said}")
    if statement is not None:
        run = statement["predicate"]["run"]["id"]
        report.add("digest", first.get("run") == run, f"log entry names run {first.get('run')}")
    _chain(lines, first.get("prev", ""), int(first.get("seq", 0)), report)
    signed = _read_checkpoint(path, report)
    if signed is not None:
        _check_checkpoint(signed, lines, int(first.get("seq", 1)) - 1, key, report)


def verify_log(root: Path, key: tuple[Ed25519PublicKey, str]) -> Report:
    """The whole workspace log: chain, every record, every checkpoint."""
    report, log = Report(str(root), key[1]), EvidenceLog(root)
    lines = log.lines()
    _chain(lines, GENESIS, 1, report)
    for n, line in enumerate(lines, 1):
        guarded(report, "chain", f"log line {n}", _check_logged, log, line, key[0], report)
    checkpoints = guarded(report, "checkpoint", "checkpoints.jsonl", log.checkpoints) or []
    if not checkpoints:
        report.add("checkpoint", False, "the log has no readable signed checkpoint")
    for signed in checkpoints:
        _check_checkpoint(signed, lines, 0, key[0], report, latest=signed is checkpoints[-1])
    return report


def _check_logged(log: EvidenceLog, line: bytes, key: Ed25519PublicKey, report: Report) -> None:
    """One log entry's record: present, the envelope it names, signed, its subjects."""
    entry = json.loads(line)
    directory = log.record_dir(str(entry.get("record")))
    if not (directory / "envelope.json").exists():
        what = f"log entry {entry.get('seq')}: record {directory.name} is missing"
        report.add("chain", False, what)
        return
    data = (directory / "envelope.json").read_bytes()
    ok = hashlib.sha256(data).hexdigest() == entry.get("envelope_sha256")
    said = "matches" if ok else "does not match"
    report.add("digest", ok, f"log entry {entry.get('seq')}: envelope sha256 {said}")
    check_record(directory, data, key, report)


def _chain(lines: list[bytes], prev: str, seq: int, report: Report) -> None:
    """Each entry links to the one before it and numbers follow on."""
    bad = []
    for i, line in enumerate(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {}
        if entry.get("prev") != prev or entry.get("seq") != seq + i:
            bad.append(
                f"log entry {entry.get('seq')} (line {i + 1}) does not follow the one before it"
            )
        prev = entry_hash(line)
    report.add("chain", not bad, "; ".join(bad) or f"evidence log: {len(lines)} entries chained")


def _check_checkpoint(
    signed: SignedCheckpoint,
    lines: list[bytes],
    offset: int,
    key: Ed25519PublicKey,
    report: Report,
    latest: bool = True,
) -> None:
    """``lines`` hold entries ``offset+1`` .. of the log; the latest checkpoint must name
    the last of them, an earlier one an entry among them."""
    try:
        cp = Checkpoint.parse(signed.text)
    except (ValueError, KeyError) as exc:
        report.add("checkpoint", False, f"checkpoint: unreadable ({exc})")
        return
    _checkpoint_signatures(signed, cp, key, report)
    index, held, where = cp.size - offset - 1, offset + len(lines), f"checkpoint size {cp.size}"
    if latest and cp.size != held:
        why = "one removed, or added without a checkpoint?"
        report.add("checkpoint", False, f"{where}: the log holds {held} entries ({why})")
    elif 0 <= index < len(lines):
        ok = entry_hash(lines[index]) == cp.head
        said = "matches the log" if ok else f"does not match entry {cp.size} (log rewritten?)"
        report.add("checkpoint", ok, f"{where}: head {said}")
    elif offset == 0:
        report.add("checkpoint", False, f"{where}: the log holds only {held} entries")


def _checkpoint_signatures(
    signed: SignedCheckpoint, cp: Checkpoint, key: Ed25519PublicKey, report: Report
) -> None:
    data = signed.text.encode()
    try:
        sshsig.verify(data, signed.sshsig, key, sshsig.CHECKPOINT_NAMESPACE)
        key.verify(base64.b64decode(signed.ed25519), data)
        ok = cp.keyid == keyid(key)
    except (EvidenceInvalid, InvalidSignature, ValueError):
        ok = False
    said = "verify" if ok else "do not verify with this key"
    report.add("checkpoint", ok, f"checkpoint size {cp.size}: signatures {said}")


def _read_checkpoint(path: Path, report: Report) -> SignedCheckpoint | None:
    try:
        return SignedCheckpoint(
            (path / "checkpoint.txt").read_text(encoding="utf-8"),
            (path / "checkpoint.txt.sig").read_text(encoding="ascii"),
            (path / "checkpoint.txt.ed25519").read_text(encoding="ascii").strip(),
        )
    except OSError as exc:
        report.add("checkpoint", False, f"log/checkpoint: {exc.strerror} ({exc.filename})")
        return None


def _lines(path: Path) -> list[bytes]:
    if not path.exists():
        return []
    return [line + b"\n" for line in path.read_bytes().split(b"\n")[:-1]]
