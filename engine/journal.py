"""The run journal: every transition of every run, durable before it is acted on, hash-chained.

One SQLite file (WAL, ``synchronous=FULL``) in the workspace. A run is a row in ``runs`` (the
plan's digest, path and a copy of its JSON) plus an append-only list of records:

* ``run``    the run's own transitions (created, running, waiting, succeeded, ...)
* ``step``   a step's transition (state, attempt, message)
* ``output`` what an attempt printed: sizes and SHA-256 digests (the bytes are in ``outputs``)
* ``ack``    a person's acknowledgement or approval: who, when, why, what they decided
* ``option`` a run-wide setting changed, e.g. the two-person rule turned off, and by whom

* ``started`` what a transport started for an attempt (a pid and its start time, a WinRM
  shell and command id): what a resume stops before it re-checks the step
* ``stop``   an earlier attempt made sure of as stopped (on resume, or by ``dr run abort``)

Each record carries ``prev`` (the previous record's hash in the same run) and ``hash`` =
SHA-256(prev + canonical JSON of the record), so editing, inserting or reordering records
is detectable by :meth:`Journal.verify_chain`. Appends happen in ``BEGIN IMMEDIATE``
transactions, so two processes (the runner and ``dr run ack``) never fork the chain.

Group commit: threads appending at the same time share one transaction (and one fsync).
The first to arrive leads: it takes every append queued so far, writes them in one
transaction (each in its own savepoint, so one bad append fails alone) and commits; the
others wait until the commit that holds their records has returned. No caller returns
before its records are durable, so "durable before acted on" holds as with one commit each.

``synchronous=FULL`` is the default: a commit survives a power cut. ``normal`` (WAL) survives
a crash or kill of any process but may lose the last commits on a power cut; it is offered
for journals on slow disks and must be asked for (``dr run start --journal-sync normal``).

Output is redacted by the caller, capped (head and tail kept, the cut noted), compressed with
zstd, and digested twice: the SHA-256 of the full output and of the bytes kept.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard

from engine.errors import JournalError, RunNotFound

GENESIS = "0" * 64
SYNC_MODES = ("full", "normal")
OUTPUT_CAP = 1024 * 1024  # bytes kept per stream per attempt: half head, half tail

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    plan_path TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    started_by TEXT NOT NULL,
    options TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL REFERENCES runs(id),
    n INTEGER NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    step_id TEXT,
    body TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, n)
);
CREATE TABLE IF NOT EXISTS outputs (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    stream TEXT NOT NULL,
    size INTEGER NOT NULL,
    cut INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    kept_sha256 TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, step_id, attempt, purpose, stream)
);
"""


@dataclass(frozen=True)
class RunInfo:
    id: str
    created: str
    plan_digest: str
    plan_path: str
    plan_json: str
    started_by: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Entry:
    """A record to append: its kind, the step it is about (if any) and its body."""

    kind: str
    body: dict[str, Any]
    step_id: str | None = None


@dataclass(frozen=True)
class Record:
    run_id: str
    n: int
    at: str
    kind: str
    step_id: str | None
    body: dict[str, Any]
    prev: str
    hash: str


@dataclass(frozen=True)
class Output:
    """One stream of one attempt, as it goes into the journal (already redacted)."""

    step_id: str
    attempt: int
    purpose: str  # command | verify | idempotency | reboot
    stream: str  # stdout | stderr
    data: bytes


class JournalView:
    """What an append may read inside its own transaction (see :meth:`Journal.append_checked`):
    the state it decides on cannot change before its records are written."""

    def __init__(self, cur: sqlite3.Cursor, run_id: str) -> None:
        self._cur, self.run_id = cur, run_id

    def last_step(self, step_id: str) -> Record | None:
        row = self._cur.execute(
            "SELECT * FROM records WHERE run_id=? AND kind='step' AND step_id=?"
            " ORDER BY n DESC LIMIT 1",
            (self.run_id, step_id),
        ).fetchone()
        return _record(row) if row else None

    def run_state(self) -> str:
        row = self._cur.execute(
            "SELECT body FROM records WHERE run_id=? AND kind='run' ORDER BY n DESC LIMIT 1",
            (self.run_id,),
        ).fetchone()
        return str(json.loads(row[0])["state"]) if row else "created"


Build = Callable[[JournalView], Sequence[Entry]]


@dataclass
class _Pending:
    """One caller's append, waiting in the group-commit queue."""

    run_id: str
    entries: Sequence[Entry]
    outputs: Sequence[Output] = ()
    build: Build | None = None
    records: list[Record] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


@dataclass(frozen=True)
class StoredOutput:
    step_id: str
    attempt: int
    purpose: str
    stream: str
    size: int
    cut: int
    sha256: str
    data: bytes  # what was kept (head + note + tail when cut)


@dataclass
class ChainReport:
    run_id: str
    records: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def record_hash(
    prev: str, run_id: str, n: int, at: str, kind: str, step: str | None, body: Any
) -> str:
    """SHA-256 of the previous hash and the record's canonical JSON (what the chain links)."""
    canonical = json.dumps(
        {"run": run_id, "n": n, "at": at, "kind": kind, "step": step, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256((prev + canonical).encode("utf-8")).hexdigest()


def cap(data: bytes, limit: int = OUTPUT_CAP) -> tuple[bytes, int]:
    """Keep the head and the tail of ``data`` within ``limit`` bytes; return (kept, cut)."""
    if len(data) <= limit:
        return data, 0
    half = limit // 2
    cut = len(data) - 2 * half
    note = f"\n[... {cut} bytes cut by dr ...]\n".encode()
    return data[:half] + note + data[-half:], cut


class Journal:
    """The journal file. Safe to share between the runner's threads (one lock per process)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._queue: list[_Pending] = []
        self._cond = threading.Condition()
        self._leading = False
        self.commits = 0  # transactions written by group commit (the benchmark reports it)

    @classmethod
    def open(cls, path: Path, sync: str = "full") -> Journal:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={_sync_mode(sync)}")
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(
                f"{path}: cannot open the run journal ({exc})",
                hint="check the workspace directory is writable and not on a broken share",
            ) from exc
        return cls(conn, path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def set_sync(self, sync: str) -> None:
        """``full`` (survives a power cut) or ``normal`` (survives a crash or kill -9)."""
        with self._lock:
            self._conn.execute(f"PRAGMA synchronous={_sync_mode(sync)}")

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self._conn, self._lock, self.path)

    # -- runs -----------------------------------------------------------------------------

    def create_run(
        self,
        *,
        plan_json: str,
        plan_digest: str,
        plan_path: str,
        started_by: str,
        options: dict[str, Any],
    ) -> RunInfo:
        """Record a new run and its first record (which carries the plan's SHA-256)."""
        run_id = secrets.token_hex(4)
        created = now()
        plan_sha = hashlib.sha256(plan_json.encode("utf-8")).hexdigest()
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO runs VALUES (?,?,?,?,?,?,?)",
                (run_id, created, plan_digest, plan_path, plan_json, started_by,
                 json.dumps(options, sort_keys=True)),
            )  # fmt: skip
            body = {
                "state": "created",
                "plan_digest": plan_digest,
                "plan_path": plan_path,
                "plan_sha256": plan_sha,
                "started_by": started_by,
                "options": options,
            }
            _append(cur, run_id, [Entry("run", body)])
        return self.run(run_id)

    def run(self, ref: str) -> RunInfo:
        """A run by id or unique id prefix."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE id LIKE ? ORDER BY created", (ref + "%",)
            ).fetchall()
        if len(rows) != 1 or not ref:
            many = "matches several runs" if rows and ref else "is not a run in this workspace"
            raise RunNotFound(f"run {ref!r} {many}", hint="`dr run status` lists the runs")
        return _run_info(rows[0])

    def runs(self) -> list[RunInfo]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM runs ORDER BY created").fetchall()
        return [_run_info(r) for r in rows]

    # -- records --------------------------------------------------------------------------

    def append(
        self, run_id: str, entries: Sequence[Entry], outputs: Sequence[Output] = ()
    ) -> list[Record]:
        """Append records (and output blobs) atomically; return once they are durable."""
        return self._submit(_Pending(run_id, list(entries), list(outputs)))

    def append_checked(self, run_id: str, build: Build) -> list[Record]:
        """Append what ``build`` decides from the journal as it stands inside the writing
        transaction; an exception from ``build`` appends nothing and is raised here.
        Two processes deciding on the same state (two acks of one step) cannot both win."""
        return self._submit(_Pending(run_id, [], build=build))

    # -- group commit ---------------------------------------------------------------------

    def _submit(self, pending: _Pending) -> list[Record]:
        with self._cond:
            self._queue.append(pending)
            while not pending.done:
                if self._leading:
                    self._cond.wait()
                    continue
                self._lead()
        if pending.error is not None:
            raise pending.error
        return pending.records

    def _lead(self) -> None:
        """Commit everything queued (called holding ``_cond``; released while writing)."""
        self._leading = True
        batch, self._queue = self._queue, []
        self._cond.release()
        try:
            self._commit_batch(batch)
        finally:
            self._cond.acquire()
            self._leading = False
            for pending in batch:
                pending.done = True
            self._cond.notify_all()

    def _commit_batch(self, batch: list[_Pending]) -> None:
        try:
            with self._tx() as cur:
                for pending in batch:
                    _apply_pending(cur, pending)
            self.commits += 1
        except Exception as exc:
            for pending in batch:
                pending.records = []
                pending.error = pending.error or exc

    def records(
        self, run_id: str, *, after: int = 0, kinds: Sequence[str] | None = None
    ) -> list[Record]:
        sql = "SELECT * FROM records WHERE run_id = ? AND n > ?"
        args: list[Any] = [run_id, after]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY n", args).fetchall()
        return [_record(r) for r in rows]

    def count(self, run_id: str | None = None) -> int:
        """How many records (all runs, or one): what the crash test polls. A run's records
        are numbered 1..n without gaps, so its count is its last number (an index lookup)."""
        with self._lock:
            if run_id is None:
                return int(self._conn.execute("SELECT count(*) FROM records").fetchone()[0])
            row = self._conn.execute(
                "SELECT coalesce(max(n), 0) FROM records WHERE run_id=?", (run_id,)
            )
            return int(row.fetchone()[0])

    def last_step_record(self, run_id: str, step_id: str) -> Record | None:
        """A step's last transition (one index lookup, not a scan of the run)."""
        with self._lock:
            return JournalView(self._conn.cursor(), run_id).last_step(step_id)

    def step_states(self, run_id: str) -> dict[str, str]:
        """Each step's last recorded state."""
        return {sid: rec.body["state"] for sid, rec in self.last_step_records(run_id).items()}

    def last_step_records(self, run_id: str) -> dict[str, Record]:
        last: dict[str, Record] = {}
        for rec in self.records(run_id, kinds=["step"]):
            assert rec.step_id is not None
            last[rec.step_id] = rec
        return last

    def run_state(self, run_id: str) -> str:
        recs = self.records(run_id, kinds=["run"])
        return str(recs[-1].body["state"]) if recs else "created"

    # -- outputs --------------------------------------------------------------------------

    def outputs(self, run_id: str, step_id: str) -> list[StoredOutput]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT step_id, attempt, purpose, stream, size, cut, sha256, data FROM outputs"
                " WHERE run_id=? AND step_id=? ORDER BY attempt, purpose, stream",
                (run_id, step_id),
            ).fetchall()
        return [
            StoredOutput(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _decompress(r[7])) for r in rows
        ]

    # -- verification ---------------------------------------------------------------------

    def verify_chain(self, run_id: str) -> ChainReport:
        """Re-derive every hash of the run's chain and check the plan and output digests."""
        info = self.run(run_id)
        report = ChainReport(info.id)
        prev = GENESIS
        for rec in self.records(info.id):
            report.records += 1
            _check_record(rec, report, prev, expected_n=report.records)
            prev = rec.hash
            if rec.kind == "output":
                self._check_output(rec, report)
        report.head = prev
        _check_plan(info, self.records(info.id, kinds=["run"])[:1], report)
        return report

    def _check_output(self, rec: Record, report: ChainReport) -> None:
        body = rec.body
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM outputs WHERE run_id=? AND step_id=? AND attempt=? AND"
                " purpose=? AND stream=?",
                (rec.run_id, rec.step_id, body["attempt"], body["purpose"], body["stream"]),
            ).fetchone()
        if row is None:
            report.problems.append(f"record {rec.n}: the output it describes is missing")
            return
        kept = hashlib.sha256(_decompress(row[0])).hexdigest()
        if kept != body["kept_sha256"]:
            report.problems.append(f"record {rec.n}: stored output does not match its digest")


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` under the process lock; rollback on any error."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, path: Path) -> None:
        self._conn, self._lock, self._path = conn, lock, path

    def __enter__(self) -> sqlite3.Cursor:
        self._lock.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise JournalError(f"{self._path}: cannot write the run journal ({exc})") from exc
        return self._conn.cursor()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._conn.execute("COMMIT")
            else:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error as err:
            raise JournalError(f"{self._path}: cannot commit to the run journal ({err})") from err
        finally:
            self._lock.release()


def _sync_mode(sync: str) -> str:
    if sync not in SYNC_MODES:
        raise JournalError(f"journal sync mode {sync!r} is not one of {', '.join(SYNC_MODES)}")
    return sync.upper()


def _apply_pending(cur: sqlite3.Cursor, pending: _Pending) -> None:
    """One caller's append inside the group's transaction, in a savepoint of its own."""
    cur.execute("SAVEPOINT append")
    try:
        entries = list(pending.entries)
        if pending.build is not None:
            entries += list(pending.build(JournalView(cur, pending.run_id)))
        for out in pending.outputs:
            body = _store_output(cur, pending.run_id, out)
            entries.append(Entry("output", body, out.step_id))
        pending.records = _append(cur, pending.run_id, entries)
    except Exception as exc:
        cur.execute("ROLLBACK TO append")
        pending.error = exc
    finally:
        cur.execute("RELEASE append")


def _append(cur: sqlite3.Cursor, run_id: str, entries: Sequence[Entry]) -> list[Record]:
    row = cur.execute(
        "SELECT n, hash FROM records WHERE run_id=? ORDER BY n DESC LIMIT 1", (run_id,)
    ).fetchone()
    n, prev = (row[0], row[1]) if row else (0, GENESIS)
    out: list[Record] = []
    for entry in entries:
        n += 1
        at = now()
        digest = record_hash(prev, run_id, n, at, entry.kind, entry.step_id, entry.body)
        body = json.dumps(entry.body, sort_keys=True, ensure_ascii=False)
        cur.execute(
            "INSERT INTO records VALUES (?,?,?,?,?,?,?,?)",
            (run_id, n, at, entry.kind, entry.step_id, body, prev, digest),
        )
        out.append(Record(run_id, n, at, entry.kind, entry.step_id, entry.body, prev, digest))
        prev = digest
    return out


def _store_output(cur: sqlite3.Cursor, run_id: str, out: Output) -> dict[str, Any]:
    kept, cut = cap(out.data)
    body = {
        "attempt": out.attempt,
        "purpose": out.purpose,
        "stream": out.stream,
        "size": len(out.data),
        "cut": cut,
        "sha256": hashlib.sha256(out.data).hexdigest(),
        "kept_sha256": hashlib.sha256(kept).hexdigest(),
    }
    cur.execute(
        "INSERT OR REPLACE INTO outputs VALUES (?,?,?,?,?,?,?,?,?,?)",
        (run_id, out.step_id, out.attempt, out.purpose, out.stream, len(out.data), cut,
         body["sha256"], body["kept_sha256"], _compress(kept)),
    )  # fmt: skip
    return body


def _check_record(rec: Record, report: ChainReport, prev: str, expected_n: int) -> None:
    if rec.n != expected_n:
        report.problems.append(f"record {rec.n}: expected record {expected_n} (one is missing)")
    if rec.prev != prev:
        report.problems.append(f"record {rec.n}: does not link to the record before it")
    again = record_hash(rec.prev, rec.run_id, rec.n, rec.at, rec.kind, rec.step_id, rec.body)
    if again != rec.hash:
        report.problems.append(f"record {rec.n}: its content does not match its hash (edited?)")


def _check_plan(info: RunInfo, first: list[Record], report: ChainReport) -> None:
    if not first:
        report.problems.append("the run has no first record")
        return
    plan_sha = hashlib.sha256(info.plan_json.encode("utf-8")).hexdigest()
    if first[0].body.get("plan_sha256") != plan_sha:
        report.problems.append("the stored copy of the plan does not match the first record")
    if first[0].body.get("plan_digest") != info.plan_digest:
        report.problems.append("the run's plan digest does not match the first record")


def _compress(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def _decompress(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(data)


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    return RunInfo(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))


def _record(row: tuple[Any, ...]) -> Record:
    return Record(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7])


def iter_runs(journal: Journal) -> Iterator[tuple[RunInfo, str]]:
    """Each run with its current state, oldest first."""
    for info in journal.runs():
        yield info, journal.run_state(info.id)
