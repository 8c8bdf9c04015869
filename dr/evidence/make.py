"""Making, keeping and exporting records: the I/O around the pure :mod:`dr.evidence.record`.

``make_record`` gathers a finished run's facts (journal, plan, step library, catalog),
signs the Statement (DSSE) and the envelope file (SSH signature), writes the record's
directory and appends it to the evidence log with a new signed checkpoint.
``export`` copies one record with everything an auditor needs to check it offline.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dr import __version__
from dr.errors import EvidenceError
from dr.evidence import dsse, intoto, sshsig
from dr.evidence.log import EvidenceLog, write_files
from dr.evidence.record import TERMINAL, RunFacts, journal_export, kind_of, predicate, run_state
from dr.evidence.signing import (
    Signer,
    allowed_signers,
    keyid,
    load_public_key,
    public_openssh,
    public_pem,
)
from dr.store.format import write_atomic
from dr.suggest import suggest
from dr.workspace import Workspace
from engine.journal import Journal, now
from engine.plan import Plan

EVIDENCE_DIR = "evidence"
_BACKUP_ID = re.compile(r"^(run|artifact)-(\d+)$")


@dataclass(frozen=True)
class Made:
    entry: dict[str, Any]
    directory: Path
    created: bool  # False: the run's latest record already covers its journal as it stands


def evidence_log(ws: Workspace) -> EvidenceLog:
    return EvidenceLog(ws.root / EVIDENCE_DIR)


def make_record(
    ws: Workspace,
    journal: Journal,
    run_ref: str,
    signer: Signer,
    corrective: Sequence[str] = (),
    sampling: dict[str, Any] | None = None,
    verification: Sequence[dict[str, Any]] = (),
) -> Made:
    """Sign and log the record of a finished run (once per state of its journal).

    Drills pass ``sampling`` (method, seed, population, sample) and ``verification`` (one
    dict per check on the restored data: what, expected, found, passed)."""
    info = journal.run(run_ref)
    records = journal.records(info.id)
    state = run_state(records)
    if state not in TERMINAL:
        raise EvidenceError(
            f"run {info.id} is {state}, not finished",
            hint="records are made for runs that succeeded, failed or were aborted",
        )
    log = evidence_log(ws)
    with log.locked():
        latest = latest_entry(log, info.id)
        news = corrective or sampling or verification
        if latest and latest["journal_head"] == records[-1].hash and not news:
            return Made(latest, log.record_dir(latest["record"]), False)
        plan = Plan.model_validate_json(info.plan_json)
        facts = RunFacts(
            info=info,
            records=records,
            chain=journal.verify_chain(info.id),
            plan=plan,
            dr_version=__version__,
            record_id=str(uuid.uuid4()),
            backups=catalog_backups(ws, plan),
            corrective_actions=list(corrective),
            sampling=sampling,
            verification=list(verification),
            **library_facts(plan, info.options.get("library_dirs") or []),
        )
        return _write(log, facts, signer)


def _write(log: EvidenceLog, facts: RunFacts, signer: Signer) -> Made:
    plan_bytes = facts.info.plan_json.encode("utf-8")
    journal_bytes = journal_export(facts.info, facts.records)
    subjects = [
        intoto.subject("plan.json", plan_bytes),
        intoto.subject("journal.json", journal_bytes),
    ]
    body = predicate(facts)
    envelope = dsse.dumps(dsse.sign(intoto.dumps(intoto.statement(subjects, body)), signer))
    name = f"{len(log.lines()) + 1:06d}-{facts.info.id}"
    directory = log.record_dir(name)
    signature = sshsig.sign(envelope, signer).encode("ascii")
    files = {"plan.json": plan_bytes, "journal.json": journal_bytes,
             "envelope.json": envelope, "envelope.sig": signature}  # fmt: skip
    for file, data in files.items():
        write_atomic(directory / file, data)
    fields = {
        "record": name,
        "run": facts.info.id,
        "kind": kind_of(facts.plan),
        "outcome": body["results"]["outcome"],
        "verdict": body["results"]["verdict"],
        "envelope_sha256": hashlib.sha256(envelope).hexdigest(),
        "journal_head": facts.records[-1].hash,
        "keyid": signer.keyid,
        "recorded_at": now(),
    }
    entry = log.append(fields, signer, fields["recorded_at"])
    return Made(entry, directory, True)


def latest_entry(log: EvidenceLog, run_id: str) -> dict[str, Any] | None:
    mine = [e for e in log.entries() if e.get("run") == run_id]
    return mine[-1] if mine else None


def find_entry(log: EvidenceLog, run_ref: str, seq: int | None = None) -> dict[str, Any]:
    """The latest record of a run (by id or unique prefix), or the one with ``seq``."""
    entries = log.entries()
    runs = sorted({str(e["run"]) for e in entries if str(e["run"]).startswith(run_ref)})
    if len(runs) != 1 or not run_ref:
        many = "matches several runs" if runs and run_ref else "has no evidence record"
        raise EvidenceError(
            f"run {run_ref!r} {many}", hint="`dr evidence record RUN` makes one for a finished run"
        )
    mine = [e for e in entries if e["run"] == runs[0] and (seq is None or e["seq"] == seq)]
    if not mine:
        raise EvidenceError(f"run {runs[0]} has no evidence record with seq {seq}")
    return mine[-1]


def read_statement(directory: Path) -> dict[str, Any]:
    """The Statement inside a record's envelope (not verified: see :mod:`verify`)."""
    import base64

    path = directory / "envelope.json"
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
        return dict(json.loads(base64.b64decode(envelope["payload"])))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvidenceError(
            f"{path}: cannot read the record ({exc})",
            hint=f"`{suggest('dr', 'evidence', 'verify', directory.parent.parent)}` says what "
            "is wrong",
        ) from exc


# -- export -------------------------------------------------------------------------------


def export(
    ws: Workspace, run_ref: str, out: Path, pubkey: Path | None = None, seq: int | None = None
) -> Path:
    """Copy a run's record (latest, or ``seq``), the public key and the log proof to ``out``."""
    log = evidence_log(ws)
    entry = find_entry(log, run_ref, seq)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("envelope.json", "envelope.sig", "plan.json", "journal.json"):
        shutil.copyfile(log.record_dir(entry["record"]) / name, out / name)
    key = load_public_key(pubkey) if pubkey else _signing_key(entry)
    if keyid(key) != entry["keyid"]:
        raise EvidenceError(f"the public key given is not the key that signed {entry['record']}")
    (out / "evidence.pub.pem").write_bytes(public_pem(key))
    (out / "evidence.pub").write_text(public_openssh(key) + "\n", encoding="ascii")
    namespaces = (sshsig.NAMESPACE, sshsig.CHECKPOINT_NAMESPACE)
    (out / "allowed_signers").write_text(allowed_signers(key, namespaces), encoding="ascii")
    _export_proof(log, entry, out / "log")
    return out


def _signing_key(entry: dict[str, Any]) -> Any:
    from dr.evidence.signing import public_key_path

    path = public_key_path()
    if not path.exists():
        raise EvidenceError(
            f"no public key at {path}", hint="pass --pubkey with the key that signed the record"
        )
    return load_public_key(path)


def _export_proof(log: EvidenceLog, entry: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = log.lines()[entry["seq"] - 1 :]
    (out / "entries.jsonl").write_bytes(b"".join(lines))
    write_files(out, log.latest_checkpoint())


# -- facts from the step library and the catalog ----------------------------------------


def library_facts(plan: Plan, dirs: Sequence[str]) -> dict[str, Any]:
    """Digest of each step kind the plan uses, as the library defines it now."""
    from engine.errors import EngineError
    from engine.runbook import Library

    try:
        library = Library.load(extra_dirs=[Path(d) for d in dirs])
    except (EngineError, OSError):  # the library cannot be read now: say so, sign the rest
        return {"library": {"(library)": "unreadable"}, "library_digest": None}
    digests = {}
    for kind in sorted({s.kind for s in plan.steps}):
        try:
            text = library.kind(kind).model_dump_json()
        except Exception:  # a kind gone from the library since the run: say so
            digests[kind] = "missing"
            continue
        digests[kind] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    whole = json.dumps(digests, sort_keys=True, separators=(",", ":")).encode()
    return {"library": digests, "library_digest": hashlib.sha256(whole).hexdigest()}


def backup_ids(value: Any) -> Iterator[str]:
    """Every catalog backup id (``run-N``, ``artifact-N``) named in a plan's facts."""
    if isinstance(value, str):
        if _BACKUP_ID.match(value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from backup_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from backup_ids(item)


def catalog_backups(ws: Workspace, plan: Plan) -> list[dict[str, Any]]:
    ids = list(dict.fromkeys(backup_ids(plan.facts)))
    if not ids:
        return []
    if not ws.catalog_path.exists():
        return [{"id": i, "catalog": "no catalog in this workspace"} for i in ids]
    from dr.catalog.catalog import Catalog

    with Catalog.open(ws.catalog_path) as catalog:
        return [_backup(catalog, i) for i in ids]


def _backup(catalog: Any, ident: str) -> dict[str, Any]:
    from dr.catalog.store import ARTIFACT_COLUMNS, row_to_artifact
    from dr.errors import NotFoundError

    kind, number = ident.split("-", 1)
    if kind == "artifact":
        row = catalog.conn.execute(
            f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE id = ?", (int(number),)
        ).fetchone()
        found = [row_to_artifact(row)] if row else []
        return {"id": ident, "artifacts": [_artifact(a) for a in found]}
    try:
        run = catalog.run(int(number))
    except NotFoundError:
        return {"id": ident, "catalog": "not in the catalog"}
    arts = catalog.artifacts(run_id=run.id, include_expired=True)
    return {
        "id": ident, "set": run.set_name, "host": run.host, "type": run.backup_type,
        "ended": run.ended.isoformat(), "status": run.status,
        "artifacts": [_artifact(a) for a in arts],
    }  # fmt: skip


def _artifact(a: Any) -> dict[str, Any]:
    return {"name": a.name, "kind": a.kind, "database": a.database, "size": a.size,
            "sha256": a.sha256, "location": a.location, "expired": a.expired}  # fmt: skip
