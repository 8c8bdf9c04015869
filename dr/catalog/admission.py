"""Exchange backup rules applied to runs before they enter the catalog (FEATURES A8, A9).

A run touches one or more log streams (a storage group on 2000/2003/2007, a database on
2010+). For each stream the catalog builds the history of earlier recorded backups of that
stream and asks :func:`dr.exchange.rules.admit` whether the new backup is allowed and how it
must be recorded (a full of a dismounted database is recorded as a copy). The rules live in
``dr.exchange.rules``; this module only gathers the facts and stores the answer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dr.catalog.model import STREAM_KINDS, NewArtifact, NewRun, from_epoch
from dr.errors import CatalogError, RuleViolation


@dataclass(frozen=True)
class StreamFacts:
    """What one run says about one log stream."""

    storage_group: str
    log_prefix: str | None
    first_gen: int | None
    last_gen: int | None
    log_signature: str | None
    circular_logging: bool
    database_mounted: bool


def _rules() -> Any:
    try:
        from dr.exchange import rules
    except ImportError as exc:  # pragma: no cover - only while the module is being written
        raise CatalogError(
            "the Exchange backup rules (dr.exchange.rules) are not available",
            hint="reinstall dr; runs of Exchange sets cannot be checked without them",
        ) from exc
    return rules


def stream_facts(artifacts: Sequence[NewArtifact]) -> list[StreamFacts]:
    """Group a run's Exchange artifacts by stream and merge their log ranges."""
    grouped: dict[str, list[NewArtifact]] = {}
    for artifact in artifacts:
        if artifact.kind in STREAM_KINDS and artifact.storage_group:
            grouped.setdefault(artifact.storage_group, []).append(artifact)
    return [_merge(sg, items) for sg, items in grouped.items()]


def _merge(storage_group: str, items: list[NewArtifact]) -> StreamFacts:
    logs = [a for a in items if a.first_gen is not None and a.last_gen is not None]
    prefix = next((a.log_prefix for a in items if a.log_prefix), None)
    signature = next((a.log_signature for a in logs if a.log_signature), None)
    return StreamFacts(
        storage_group=storage_group,
        log_prefix=prefix,
        first_gen=min((a.first_gen for a in logs), default=None),  # type: ignore[type-var]
        last_gen=max((a.last_gen for a in logs), default=None),  # type: ignore[type-var]
        log_signature=signature,
        circular_logging=any(bool(a.circular_logging) for a in items),
        database_mounted=all(a.database_mounted for a in items if a.kind == "database"),
    )


class Histories:
    """Per-stream history for one transaction, loaded once and extended as runs are added.

    Only the backups from the newest full taken with circular logging off are kept: every
    rule ``admit`` applies (order, base, circular logging, continuity) is decided within
    that window, and it keeps a year of 15-minute log backups from costing quadratic time.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.cache: dict[str, list[Any]] = {}
        self.sets: dict[str, Any] = {}  # set records, read once per transaction

    def get(self, storage_group: str) -> list[Any]:
        if storage_group not in self.cache:
            self.cache[storage_group] = _load(self.conn, storage_group)
        return self.cache[storage_group]

    def add(self, storage_group: str, backup: Any) -> None:
        if backup.backup_type == "full" and not backup.circular_logging:
            self.cache[storage_group] = [backup]
        else:
            self.get(storage_group).append(backup)


def _load(conn: sqlite3.Connection, storage_group: str) -> list[Any]:
    row = conn.execute(
        "SELECT MAX(at) FROM stream_backups WHERE storage_group = ? AND backup_type = 'full' "
        "AND circular_logging = 0",
        (storage_group,),
    ).fetchone()
    rows = conn.execute(
        "SELECT backup_type, at, log_prefix, first_gen, last_gen, log_signature, "
        "circular_logging, database_mounted FROM stream_backups "
        "WHERE storage_group = ? AND at >= ? ORDER BY at, run_id",
        (storage_group, row[0] if row[0] is not None else -(2**62)),
    ).fetchall()
    return [_stream_backup(*r) for r in rows]


def _stream_backup(
    backup_type: str,
    at: int | datetime,
    prefix: str | None,
    first: int | None,
    last: int | None,
    signature: str | None,
    circular: bool | int,
    mounted: bool | int,
) -> Any:
    rules = _rules()
    logs = None
    if prefix is not None and first is not None and last is not None:
        logs = rules.LogRange(prefix=prefix, first=first, last=last, signature=signature)
    when = from_epoch(at) if isinstance(at, int) else at
    return rules.StreamBackup(
        backup_type=backup_type,
        at=when,
        logs=logs,
        circular_logging=bool(circular),
        database_mounted=bool(mounted),
    )


def admit_run(
    histories: Histories, run: NewRun, where: Callable[[NewRun], str]
) -> dict[str, tuple[str, StreamFacts]]:
    """Admit every stream of ``run``; returns, per stream, the type to record and its facts.

    A refusal is re-raised as the same :class:`RuleViolation` class, prefixed with
    ``where(run)`` (the manifest file and line) so the user knows which record to fix.
    """
    admitted: dict[str, tuple[str, StreamFacts]] = {}
    for facts in stream_facts(run.artifacts):
        new = _stream_backup(
            run.backup_type,
            run.ended,
            facts.log_prefix,
            facts.first_gen,
            facts.last_gen,
            facts.log_signature,
            facts.circular_logging,
            facts.database_mounted,
        )
        earlier = histories.get(facts.storage_group)
        try:
            result = _rules().admit(earlier, new, stream=facts.storage_group)
        except RuleViolation as exc:
            raise type(exc)(
                f"{where(run)}: {exc.message}", hint=exc.hint, details=exc.details
            ) from exc
        admitted[facts.storage_group] = (result.backup_type, facts)
    for storage_group, (backup_type, facts) in admitted.items():
        histories.add(storage_group, _as_recorded(backup_type, run, facts))
    return admitted


def _as_recorded(backup_type: str, run: NewRun, facts: StreamFacts) -> Any:
    return _stream_backup(
        backup_type,
        run.ended,
        facts.log_prefix,
        facts.first_gen,
        facts.last_gen,
        facts.log_signature,
        facts.circular_logging,
        facts.database_mounted,
    )
