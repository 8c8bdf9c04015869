"""in-toto Statement v1 (in-toto/attestation ``spec/v1/statement.md``) with dr's predicate.

A Statement binds a predicate to its subjects by digest. dr's subjects are the files a
record is about — the plan as saved and the run journal's export — so an auditor can
recompute their SHA-256 with ``sha256sum`` and compare.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://dr.dev/evidence/restore-run/v1"


def subject(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "digest": {"sha256": hashlib.sha256(data).hexdigest()}}


def statement(subjects: list[dict[str, Any]], predicate: dict[str, Any]) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def dumps(doc: dict[str, Any]) -> bytes:
    """Canonical bytes of a statement: sorted keys, compact, UTF-8."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def check_shape(doc: Any) -> list[str]:
    """What is wrong with a decoded statement's outer shape (empty: nothing)."""
    if not isinstance(doc, dict):
        return ["the payload is not a JSON object"]
    problems = []
    if doc.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type is {doc.get('_type')!r}, not {STATEMENT_TYPE}")
    if doc.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"predicateType is {doc.get('predicateType')!r}")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        problems.append("subject is missing or empty")
    elif not all(isinstance(s, dict) and "sha256" in s.get("digest", {}) for s in subjects):
        problems.append("a subject has no sha256 digest")
    return problems
