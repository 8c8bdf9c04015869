"""The Exchange backup rules: what each backup type holds, and which runs may be recorded.

A restore replays an unbroken sequence of transaction logs on top of a full backup. The
rules below keep the catalog from recording a run that could not take part in such a
restore, so that the planner never has to discover a broken chain at 3 a.m.
Sources (research/exchange-and-winrm.md, seeds/000 §3):

* §1.3 — Full and Copy hold the database, the logs and the checkpoint; Full truncates the
  logs, Copy does not and never becomes the base of a later incremental or differential.
  Incremental holds the logs since the last full or incremental and truncates; Differential
  holds the logs since the last full and does not truncate.
* §1.2 — incremental and differential are impossible while circular logging is on, and
  after it is turned off a full must come first (seeds/000 §3.2).
* seeds/000 §3 — a full of a dismounted database does not truncate: it is a copy.
* seeds/000 §3.2 (FEATURES A9) — log backups must be synchronous with the database: a
  missing generation or a log from another stream fails the backup.

Everything here is pure: callers pass the recorded history of one log stream.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from dr.errors import (
    ChainViolation,
    CircularLoggingViolation,
    LogSequenceViolation,
    ParameterError,
)

BackupType = Literal["full", "copy", "incremental", "differential"]
LogsCopied = Literal["all", "since-full", "since-full-or-incremental"]

BACKUP_TYPES: tuple[BackupType, ...] = ("full", "copy", "incremental", "differential")


@dataclass(frozen=True)
class Effect:
    """What one backup type copies and what it does to the server's logs (§1.3)."""

    copies_database: bool
    copies_logs: LogsCopied
    truncates: bool
    resets_marker: bool
    restore_needs: str


EFFECTS: dict[BackupType, Effect] = {
    "full": Effect(True, "all", True, True, "this backup alone"),
    "copy": Effect(True, "all", False, False, "this backup alone (for tests and diagnosis)"),
    "incremental": Effect(
        False,
        "since-full-or-incremental",
        True,
        True,
        "the last full and every incremental since, in order",
    ),
    "differential": Effect(False, "since-full", False, False, "the last full and this backup"),
}


@dataclass(frozen=True)
class LogRange:
    """Generations ``first``..``last`` (inclusive) of the log stream ``prefix``."""

    prefix: str
    first: int
    last: int
    signature: str | None = None


@dataclass(frozen=True)
class StreamBackup:
    """One backup of one log stream (a storage group; a database on 2010+)."""

    backup_type: BackupType
    at: datetime
    logs: LogRange | None
    circular_logging: bool = False
    database_mounted: bool = True


@dataclass(frozen=True)
class Gap:
    """Generations ``first_missing``..``last_missing`` of ``prefix`` are nowhere."""

    first_missing: int
    last_missing: int
    prefix: str

    def describe(self) -> str:
        return f"{self.prefix} {gens(self.first_missing, self.last_missing)}"


@dataclass(frozen=True)
class SignatureMismatch:
    """A range whose log signature is not the stream's: logs of another stream or epoch."""

    range: LogRange
    expected: str


def gens(first: int, last: int) -> str:
    """Generations as a responder reads them next to the hex file names."""
    if first == last:
        return f"generation {first} (0x{first:X})"
    return f"generations {first}–{last} (0x{first:X}–0x{last:X})"


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M %Z").strip()


def _label(backup: StreamBackup) -> str:
    return f"the {backup.backup_type} backup of {_stamp(backup.at)}"


def _details(rule: str, stream: str, **extra: object) -> dict[str, object]:
    return {"rule": rule, "stream": stream, **extra}


# --------------------------------------------------------------------------- chains


def direct_needs(history: Sequence[StreamBackup]) -> list[tuple[int, ...]]:
    """For each backup, the indices of the backups it directly needs to be restored.

    One rule, by generations (:func:`needs_by_range`); retention and the planner's chain
    both follow it. One pass, so it scales to long histories.
    """
    return needs_by_range(
        [
            (b.backup_type, b.logs.first if b.logs else None, b.logs.last if b.logs else None)
            for b in history
        ]
    )


def needs_by_range(
    entries: Sequence[tuple[str, int | None, int | None]],
) -> list[tuple[int, ...]]:
    """:func:`direct_needs` from (backup type, first generation, last generation) alone.

    * full / copy → nothing;
    * differential → the last full (it holds every log since then);
    * incremental → the last full when its logs follow the full's directly; else the latest
      differential since that full, when its logs follow the differential's and no
      incremental came after it; else the previous full or incremental. So a restore is the
      full, the latest differential, and only the incrementals after it (§1.3); a copy is
      never a base.
    """
    needs: list[tuple[int, ...]] = []
    full: int | None = None
    chain: int | None = None
    diff: int | None = None
    for index, (backup_type, first, last) in enumerate(entries):
        if backup_type == "incremental":
            needs.append(_incremental_need(entries, first, last, full, diff, chain))
        elif backup_type == "differential":
            needs.append(() if full is None else (full,))
        else:
            needs.append(())
        if backup_type == "full":
            full = chain = index
            diff = None
        elif backup_type == "incremental":
            chain, diff = index, None
        elif backup_type == "differential" and full is not None:
            diff = index
    return needs


def _incremental_need(
    entries: Sequence[tuple[str, int | None, int | None]],
    first: int | None,
    last: int | None,
    full: int | None,
    diff: int | None,
    chain: int | None,
) -> tuple[int, ...]:
    if chain is None:
        return ()
    if full is not None and _follows(entries[full][2], first, last):
        return (full,)
    if diff is not None and full is not None and _diff_follows(entries, full, diff, first, last):
        return (diff,)
    return (chain,)


def _diff_follows(
    entries: Sequence[tuple[str, int | None, int | None]],
    full: int,
    diff: int,
    first: int | None,
    last: int | None,
) -> bool:
    """The differential holds every log since the full, and ``first..last`` follow it."""
    _, diff_first, diff_last = entries[diff]
    return _follows(entries[full][2], diff_first, diff_last) and _follows(diff_last, first, last)


def _follows(base_last: int | None, first: int | None, last: int | None) -> bool:
    """Logs ``first..last`` pick up where a base ending at ``base_last`` stopped."""
    if base_last is None or first is None or last is None:
        return False
    return first <= base_last + 1 and last >= base_last


def needs_by_type(types: Sequence[str]) -> list[tuple[int, ...]]:
    """:func:`needs_by_range` when no log ranges are known (backup types alone)."""
    return needs_by_range([(backup_type, None, None) for backup_type in types])


# --------------------------------------------------------------------------- admit


def admit(history: Sequence[StreamBackup], new: StreamBackup, *, stream: str) -> StreamBackup:
    """The backup as it must be recorded, or the rule it breaks as a RuleViolation.

    ``history`` holds the earlier recorded backups of the same stream, oldest first. A full
    of a dismounted database is returned as a copy (Exchange did not truncate its logs).
    The rules themselves are :func:`admit_next`'s; this folds the history into the
    :class:`StreamState` they read.
    """
    return admit_next(StreamState.of(history), new, stream=stream)


class BackupRow(NamedTuple):
    """A :class:`StreamBackup` in the form an import reads it in: plain values, ``at`` in
    epoch seconds (UTC), the log range as three fields (no range unless all three are set).

    Building two frozen dataclasses and a datetime per run was a third of what the rules
    cost an import; :func:`admit_row` decides the common case on these values and builds
    the :class:`StreamBackup` only when a rule has to speak.
    """

    backup_type: str
    at: int
    prefix: str | None
    first: int | None
    last: int | None
    signature: str | None
    circular_logging: bool
    database_mounted: bool

    def backup(self) -> StreamBackup:
        logs = None
        if self.prefix is not None and self.first is not None and self.last is not None:
            logs = LogRange(self.prefix, self.first, self.last, self.signature)
        return StreamBackup(
            backup_type=self.backup_type,  # type: ignore[arg-type]
            at=datetime.fromtimestamp(self.at, UTC),
            logs=logs,
            circular_logging=bool(self.circular_logging),
            database_mounted=bool(self.database_mounted),
        )


Entry = StreamBackup | BackupRow


def _as_backup(entry: Entry | None) -> StreamBackup | None:
    return entry.backup() if type(entry) is BackupRow else entry  # type: ignore[return-value]


class StreamState:
    """What the rules need to know about a stream's recorded history, in constant space.

    Every rule ``admit`` applies looks at no more than five earlier backups: the newest one
    (order), the newest full (a differential's base), the newest full or incremental and the
    newest differential since them (an incremental's bases) and the newest backup taken with
    circular logging on when no full came after it. Keeping just those lets an import admit
    a year of 15-minute log backups per stream in linear time, and gives the same answers as
    passing the whole history.
    Each may be held as a :class:`BackupRow` (an import's) and is read as a
    :class:`StreamBackup` through the properties.
    """

    __slots__ = ("_circular_pending", "_last", "_last_chain", "_last_diff", "_last_full")

    def __init__(self) -> None:
        self._last: Entry | None = None
        self._last_full: Entry | None = None
        self._last_chain: Entry | None = None
        self._last_diff: Entry | None = None
        self._circular_pending: Entry | None = None

    @classmethod
    def of(cls, history: Sequence[Entry]) -> StreamState:
        state = cls()
        for backup in history:
            state.record(backup)
        return state

    @property
    def last(self) -> StreamBackup | None:
        return _as_backup(self._last)

    @property
    def last_full(self) -> StreamBackup | None:
        return _as_backup(self._last_full)

    @property
    def last_chain(self) -> StreamBackup | None:
        return _as_backup(self._last_chain)

    @property
    def last_diff(self) -> StreamBackup | None:
        """The newest differential since the newest full or incremental (None: none)."""
        return _as_backup(self._last_diff)

    @property
    def circular_pending(self) -> StreamBackup | None:
        return _as_backup(self._circular_pending)

    def record(self, backup: Entry) -> None:
        """Take a backup as recorded (after :func:`admit_next` / :func:`admit_row`)."""
        self._last = backup
        if backup.backup_type == "full":
            self._last_full = self._last_chain = backup
            self._last_diff = None
        elif backup.backup_type == "incremental":
            self._last_chain = backup
            self._last_diff = None
        elif backup.backup_type == "differential" and self._last_full is not None:
            self._last_diff = backup
        if backup.circular_logging:
            self._circular_pending = backup
        elif backup.backup_type == "full":
            self._circular_pending = None

    def base(self, backup_type: BackupType) -> StreamBackup | None:
        """The backup a new incremental / differential builds on (copies never count)."""
        return self.last_chain if backup_type == "incremental" else self.last_full

    def bases(self, backup_type: BackupType) -> list[StreamBackup]:
        """Every backup a new log backup may continue, the one to name in a refusal first.

        A differential continues the last full. An incremental continues the last full or
        incremental, or the latest differential after it: that differential holds every log
        since the full, so full + differential + later incrementals is a chain (§1.3).
        """
        base = self.base(backup_type)
        if base is None:
            return []
        diff = self.last_diff if backup_type == "incremental" else None
        return [base] if diff is None else [diff, base]


def admit_next(state: StreamState, new: StreamBackup, *, stream: str) -> StreamBackup:
    """:func:`admit` against a :class:`StreamState`; the caller records the result in it."""
    _check_shape(state.last, new, stream)
    if new.backup_type == "full" and not new.database_mounted:
        return replace(new, backup_type="copy")
    if new.backup_type in ("full", "copy"):
        return new
    _check_circular_logging(state.circular_pending, new, stream)
    bases = state.bases(new.backup_type)
    if not bases:
        raise _no_full(new, stream)
    refusals: list[LogSequenceViolation] = []
    for base in bases:
        try:
            _check_continuity(base, new, stream)
        except LogSequenceViolation as refusal:
            refusals.append(refusal)
        else:
            return new
    raise refusals[0]


def admit_row(state: StreamState, new: BackupRow, *, stream: str) -> str:
    """:func:`admit_next` for a :class:`BackupRow`: the type to record it as.

    When every rule plainly holds (the backups it is judged against are rows too, the range
    runs forwards and picks up where its base ended) the answer is given here; anything
    else goes through :func:`admit_next`, so every refusal is that function's, word for
    word. A property test holds the two to the same answers.
    """
    if _plainly_admitted(state, new):
        if new.backup_type == "full" and not new.database_mounted:
            return "copy"
        return new.backup_type
    return admit_next(state, new.backup(), stream=stream).backup_type


def _plainly_admitted(state: StreamState, new: BackupRow) -> bool:
    """True only when :func:`admit_next` would admit ``new`` (False: let it decide)."""
    kind, at, prefix, first, last, signature, circular, _ = new
    has_logs = prefix is not None and first is not None and last is not None
    if has_logs and not 1 <= first <= last:  # type: ignore[operator]
        return False
    previous = state._last
    if previous is not None and (type(previous) is not BackupRow or at < previous.at):
        return False
    if kind == "full" or kind == "copy":
        return True
    if kind not in ("incremental", "differential") or not has_logs or circular:
        return False
    base = state._last_chain if kind == "incremental" else state._last_full
    if state._circular_pending is not None or type(base) is not BackupRow:
        return False
    return _continues(base, prefix, first, last, signature)  # type: ignore[arg-type]


def _continues(base: BackupRow, prefix: str, first: int, last: int, signature: str | None) -> bool:
    """:func:`_check_continuity` as a yes or no on plain values."""
    if base.prefix is None or base.first is None or base.last is None:
        return True
    if prefix != base.prefix and prefix.upper() != base.prefix.upper():
        return False
    if signature is not None and base.signature is not None and signature != base.signature:
        return False
    return first <= base.last + 1 and last >= base.last


def _check_shape(last: StreamBackup | None, new: StreamBackup, stream: str) -> None:
    if new.at.tzinfo is None or new.at.utcoffset() is None:
        raise ParameterError(
            f"{stream}: the time of the {new.backup_type} backup has no time zone",
            hint="record backup times as timezone-aware UTC",
        )
    if new.logs is not None:
        check_range(new.logs, stream=stream)
    elif new.backup_type in ("incremental", "differential"):
        raise LogSequenceViolation(
            f"rule A9 (log backups): {_label(new)} of {stream} records no log range, "
            "and log generations are all an incremental or differential backup holds",
            hint="record the first and last log generation the backup copied",
            details=_details("log-range-required", stream),
        )
    if last is not None and new.at < last.at:
        raise ChainViolation(
            f"rule A8 (backup order): {_label(new)} of {stream} is older than "
            f"{_label(last)} already recorded",
            hint="record (or import) the backups of a stream oldest first",
            details=_details("order", stream),
        )


def check_range(logs: LogRange, *, stream: str) -> None:
    """A range must run forwards from generation 1 or later."""
    if logs.first < 1 or logs.first > logs.last:
        raise LogSequenceViolation(
            f"rule A9 (log range): the log range of {stream} runs from generation "
            f"{logs.first} to {logs.last}; a range must start at 1 or later and not end "
            "before it starts",
            hint="check the first and last generation recorded for this backup",
            details=_details("range", stream, first=logs.first, last=logs.last),
        )


def _check_circular_logging(
    circular_pending: StreamBackup | None, new: StreamBackup, stream: str
) -> None:
    if new.circular_logging:
        raise CircularLoggingViolation(
            f"rule A8 (circular logging): {_label(new)} of {stream} was taken while circular "
            "logging is on, so the logs it needs were already deleted",
            hint="turn circular logging off, restart the information store, take a full backup",
            details=_details("circular-logging-on", stream),
        )
    if circular_pending is None:
        return
    raise CircularLoggingViolation(
        f"rule A8 (full after circular logging): {_label(new)} of {stream} is refused "
        f"because circular logging was on at {_label(circular_pending)} and no full "
        "backup has been taken since it was turned off",
        hint="take a full backup (not a copy) first; later log backups build on it",
        details=_details("full-after-circular-logging", stream),
    )


def _no_full(new: StreamBackup, stream: str) -> ChainViolation:
    return ChainViolation(
        f"rule A8 (full base): {_label(new)} of {stream} has no earlier full backup to build "
        "on (a copy backup is never a base)",
        hint="take a full backup of this stream first",
        details=_details("no-full-base", stream),
    )


def _check_continuity(base: StreamBackup, new: StreamBackup, stream: str) -> None:
    """The new log backup must pick up where its base (never a copy) left off."""
    assert new.logs is not None  # _check_shape guarantees it for log backups
    if base.logs is None:
        return  # a base recorded without its logs: nothing to compare against
    logs, before = new.logs, base.logs
    if logs.prefix.upper() != before.prefix.upper():
        raise LogSequenceViolation(
            f"rule A9 (one log stream): {_label(new)} of {stream} holds logs with prefix "
            f"{logs.prefix}, but {_label(base)} it builds on holds {before.prefix}",
            hint="the logs belong to another storage group or database",
            details=_details("prefix", stream, prefix=logs.prefix, expected=before.prefix),
        )
    _check_signature(base, new, stream)
    if logs.first > before.last + 1:
        raise _gap(base, new, stream, before.last + 1, logs.first - 1)
    if logs.last < before.last:
        raise LogSequenceViolation(
            f"rule A9 (log sequence): {_label(new)} of {stream} ends at "
            f"{gens(logs.last, logs.last)}, before {_label(base)} it builds on "
            f"(which ends at {before.last}); log backups only move forwards",
            hint="check that the backups were recorded against the right stream and order",
            details=_details("backwards", stream, last=logs.last, base_last=before.last),
        )


def _check_signature(base: StreamBackup, new: StreamBackup, stream: str) -> None:
    assert new.logs is not None and base.logs is not None
    theirs, ours = new.logs.signature, base.logs.signature
    if theirs is None or ours is None or theirs == ours:
        return
    raise LogSequenceViolation(
        f"rule A9 (log signature): {_label(new)} of {stream} holds logs with signature "
        f"{theirs!r} from {gens(new.logs.first, new.logs.first)}, but the stream's "
        f"signature (from {_label(base)}) is {ours!r}",
        hint="these logs come from another log stream; take a full backup to start a new chain",
        details=_details(
            "signature", stream, signature=theirs, expected=ours, generation=new.logs.first
        ),
    )


def _gap(
    base: StreamBackup, new: StreamBackup, stream: str, first: int, last: int
) -> LogSequenceViolation:
    assert new.logs is not None and base.logs is not None
    return LogSequenceViolation(
        f"rule A9 (log sequence): {_label(new)} of {stream} starts at generation "
        f"{new.logs.first} but {_label(base)} it builds on ends at {base.logs.last}, so "
        f"{gens(first, last)} are missing",
        hint="find the missing log files, or take a full backup to start a new chain",
        details=_details("gap", stream, first_missing=first, last_missing=last),
    )


# --------------------------------------------------------------------------- planner checks


def check_sequence(ranges: Sequence[LogRange]) -> list[Gap]:
    """Every hole between the given ranges, per prefix (overlaps are fine).

    Only holes *between* ranges are reported: what comes before the first range or after
    the last is the caller's question (it knows which generations it needs).
    """
    by_prefix: dict[str, list[LogRange]] = defaultdict(list)
    for logs in ranges:
        check_range(logs, stream=logs.prefix)
        by_prefix[logs.prefix.upper()].append(logs)
    gaps: list[Gap] = []
    for prefix in sorted(by_prefix):
        covered_to: int | None = None
        for logs in sorted(by_prefix[prefix], key=lambda r: r.first):
            if covered_to is not None and logs.first > covered_to + 1:
                gaps.append(Gap(covered_to + 1, logs.first - 1, prefix))
            covered_to = logs.last if covered_to is None else max(covered_to, logs.last)
    return gaps


def check_signatures(
    ranges: Sequence[LogRange], expected: str | None = None
) -> list[SignatureMismatch]:
    """Ranges whose signature is not the stream's, per prefix.

    ``expected`` is the stream's signature when the caller knows it (the ``Log Signature``
    of the database header); otherwise the signature of the newest range of each prefix —
    the live stream — is taken as right. Ranges without a signature are not judged.
    """
    by_prefix: dict[str, list[LogRange]] = defaultdict(list)
    for logs in ranges:
        if logs.signature is not None:
            by_prefix[logs.prefix.upper()].append(logs)
    mismatches: list[SignatureMismatch] = []
    for prefix in sorted(by_prefix):
        group = by_prefix[prefix]
        want = expected if expected is not None else max(group, key=lambda r: r.last).signature
        assert want is not None
        mismatches.extend(
            SignatureMismatch(logs, want)
            for logs in sorted(group, key=lambda r: r.first)
            if logs.signature != want
        )
    return mismatches


def require_continuous(ranges: Sequence[LogRange], *, stream: str) -> None:
    """Raise LogSequenceViolation for the first hole or foreign signature in ``ranges``."""
    gaps = check_sequence(ranges)
    if gaps:
        gap = gaps[0]
        raise LogSequenceViolation(
            f"rule A9 (log sequence): the logs of {stream} have a hole: {gap.prefix} "
            f"{gens(gap.first_missing, gap.last_missing)} are missing",
            hint="find the missing log files; a restore can only reach the point before the hole",
            details=_details(
                "gap", stream, first_missing=gap.first_missing, last_missing=gap.last_missing
            ),
        )
    for mismatch in check_signatures(ranges):
        logs = mismatch.range
        raise LogSequenceViolation(
            f"rule A9 (log signature): the logs of {stream} from "
            f"{gens(logs.first, logs.last)} carry signature {logs.signature!r}, not the "
            f"stream's {mismatch.expected!r}",
            hint="these logs come from another log stream; leave them out of the restore",
            details=_details("signature", stream, signature=logs.signature),
        )
