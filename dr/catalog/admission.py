"""Exchange backup rules applied to runs before they enter the catalog (FEATURES A8, A9).

A run touches one or more log streams (a storage group on 2000/2003/2007, a database on
2010+). For each stream the catalog builds the history of earlier recorded backups of that
stream and asks :func:`dr.exchange.rules.admit_row` whether the new backup is allowed and how it
must be recorded (a full of a dismounted database is recorded as a copy). The rules live in
``dr.exchange.rules``; this module only gathers the facts and stores the answer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from dr.catalog.model import STREAM_KINDS, NewRun
from dr.errors import CatalogError, RuleViolation

if TYPE_CHECKING:
    from dr.catalog.loader import Prepared

# Positions in an artifact row (dr.catalog.loader.ART_FIELDS; checked by a test).
KIND, SG, PREFIX, FIRST, LAST, SIGNATURE, MOUNTED, CIRCULAR = 0, 1, 12, 13, 14, 15, 18, 19


class StreamFacts(NamedTuple):
    """What one run says about one log stream (built as a plain tuple in this order)."""

    storage_group: str
    log_prefix: str | None
    first_gen: int | None
    last_gen: int | None
    log_signature: str | None
    circular_logging: bool
    database_mounted: bool


_RULES: Any = None


def _rules() -> Any:
    global _RULES
    if _RULES is None:
        try:
            from dr.exchange import rules
        except ImportError as exc:  # pragma: no cover - only while the module is being written
            raise CatalogError(
                "the Exchange backup rules (dr.exchange.rules) are not available",
                hint="reinstall dr; runs of Exchange sets cannot be checked without them",
            ) from exc
        _RULES = rules
    return _RULES


def stream_facts(artifacts: Sequence[tuple[Any, ...]]) -> list[StreamFacts]:
    """Group a run's Exchange artifact rows (``loader.ART_FIELDS`` order) by stream and
    merge their log ranges."""
    if len(artifacts) == 1:  # most log backups: one logs artifact
        a = artifacts[0]
        if a[KIND] in STREAM_KINDS and a[SG]:
            return [_merge(a[SG], artifacts)]
        return []
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for a in artifacts:
        if a[KIND] in STREAM_KINDS and a[SG]:
            grouped.setdefault(a[SG], []).append(a)
    return [_merge(sg, items) for sg, items in grouped.items()]


def _merge(storage_group: str, items: Sequence[tuple[Any, ...]]) -> StreamFacts:
    """One pass: the stream's prefix, the widest log range, its signature and its flags."""
    prefix = signature = None
    first: int | None = None
    last: int | None = None
    circular, mounted = False, True
    for a in items:
        prefix = prefix or a[PREFIX]
        if a[FIRST] is not None and a[LAST] is not None:
            first = a[FIRST] if first is None else min(first, a[FIRST])
            last = a[LAST] if last is None else max(last, a[LAST])
            signature = signature or a[SIGNATURE]
        circular = circular or bool(a[CIRCULAR])
        if a[KIND] == "database" and not a[MOUNTED]:
            mounted = False
    # a plain tuple in StreamFacts order: no Python-level constructor per run
    return (storage_group, prefix, first, last, signature, circular, mounted)  # type: ignore[return-value]


class Histories:
    """Per-stream rule state for one transaction, loaded once and extended as runs are added.

    The rules need constant state per stream (:class:`dr.exchange.rules.StreamState`), so
    it is built from the backups since the newest full taken with circular logging off —
    every rule is decided within that window — and then updated run by run: a year of
    15-minute log backups costs linear time. ``get`` returns that window as
    :class:`~dr.exchange.rules.StreamBackup` values for callers that look at the backups
    themselves (a backup's preflight).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.states: dict[str, Any] = {}
        self.sets: dict[str, Any] = {}  # set records, read once per transaction

    def get(self, storage_group: str) -> list[Any]:
        """The recorded window (as the catalog holds it when called)."""
        return [row.backup() for row in _load(self.conn, storage_group)]

    def state(self, storage_group: str) -> Any:
        found = self.states.get(storage_group)
        if found is None:
            history = _load(self.conn, storage_group)
            found = self.states[storage_group] = _rules().StreamState.of(history)
        return found


def _load(conn: sqlite3.Connection, storage_group: str) -> list[Any]:
    """The stream's recorded backups since its newest full with circular logging off, as
    ``BackupRow`` values (the form :func:`dr.exchange.rules.admit_row` decides fastest)."""
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
    backup_row = _rules().BackupRow
    return [backup_row(*r[:6], bool(r[6]), bool(r[7])) for r in rows]


def admit_run(
    histories: Histories, run: NewRun, where: Callable[[NewRun], str]
) -> tuple[tuple[str, str, StreamFacts], ...]:
    """Admit every stream of ``run``; returns (storage group, type to record, facts) for each.

    A refusal is re-raised as the same :class:`RuleViolation` class, prefixed with
    ``where(run)`` (the manifest file and line) so the user knows which record to fix.
    Nothing is taken into ``histories`` unless every stream of the run is admitted.
    """
    from dr.catalog.loader import prepare

    return admit_prepared(histories, prepare(run), lambda _: where(run))


def admit_prepared(
    histories: Histories, run: Prepared, where: Callable[[Prepared], str]
) -> tuple[tuple[str, str, StreamFacts], ...]:
    """:func:`admit_run` for a run in the loader's :class:`~dr.catalog.loader.Prepared` form."""
    found = stream_facts(run.artifacts)
    if len(found) == 1:  # most runs: one stream, recorded at once
        return (_admit(histories.state(found[0][0]), run, found[0], where),)
    states = [histories.state(facts[0]) for facts in found]
    admitted = tuple(
        _admit(state, run, facts, where, record=False)
        for state, facts in zip(states, found, strict=True)
    )
    for state, (_, kind, facts) in zip(states, admitted, strict=True):  # all admitted
        state.record(_rules().BackupRow(kind, run.ended, *facts[1:]))
    return admitted


def _admit(
    state: Any,
    run: Prepared,
    facts: StreamFacts,
    where: Callable[[Prepared], str],
    record: bool = True,
) -> tuple[str, str, StreamFacts]:
    """One stream's answer: (storage group, type to record, facts); ``record``: take the
    backup into the stream's state at once (a run of several streams records them only
    when all were admitted)."""
    rules = _RULES or _rules()
    sg = facts[0]
    new = rules.BackupRow(run.backup_type, run.ended, *facts[1:])
    try:
        kind = rules.admit_row(state, new, stream=sg)
    except RuleViolation as exc:
        raise type(exc)(f"{where(run)}: {exc.message}", hint=exc.hint, details=exc.details) from exc
    if record:
        state.record(new if kind == new.backup_type else new._replace(backup_type=kind))
    return sg, kind, facts
