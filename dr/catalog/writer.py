"""Writing a large import in a second process, while the importing process reads and checks.

An import spends its time in two halves of about equal weight: reading the manifest,
checking every field and applying the Exchange rules (Python), and inserting the rows
(SQLite). On a machine with two or more cores :class:`ProcessWriter` runs the second half in
a child process (``python -m dr.catalog.writer CATALOG``), fed staged runs through a pipe,
so both halves run at once.

Atomicity is the child's transaction: it takes the write lock (``BEGIN IMMEDIATE``) before
it says which run id comes first, and commits only when the importing process says
``finish`` — after every record of the file passed its checks. Anything else ends in a
rollback: the importer raising an error (it closes the pipe), the importer being killed
(the pipe closes with it), the child failing or being killed (SQLite's journal undoes an
unfinished transaction). The importer reads the catalog on its own connection (sets, the
streams' recorded backups, runs already recorded); in WAL mode it sees the catalog as it
was committed before the import, which is what the checks must be judged against, and the
child's uncommitted rows stay invisible to it.

Frames in both directions are a 4-byte big-endian length, a tag and the message: ``m`` and
the :mod:`marshal` form (batches are tuples of plain values), or ``p`` and a pickle. Child
to importer: ``("ready", first_id)``, ``("done",)``, ``("repeat", run, existing_id)`` (the
runs' unique key refused a run: the file lists it twice) or ``("error", message)``. Only the
importer's own child reads its frames (the pipe is private to the two processes).
"""

from __future__ import annotations

import marshal
import os
import pickle
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from dr.catalog.loader import InlineWriter, Repeated, Staged
from dr.catalog.store import connect, cycle_collection_paused
from dr.errors import CatalogError

_HEADER = struct.Struct(">I")
#: Imports of manifests smaller than this stay in one process (starting the child costs
#: about a fifth of a second).
MIN_BYTES = 8 << 20
#: ``DR_CATALOG_WRITER``: ``process`` always writes in a child process, ``inline`` never,
#: ``auto`` (the default) when the manifest is large and the machine has two cores.
ENV = "DR_CATALOG_WRITER"
#: The child's page cache (KiB, negative as SQLite wants it): fewer pages spilled to the
#: log before the commit.
_CACHE = -65536
_HINT = "run the import again; the catalog is as it was before it"


def wanted(path: Path, manifest_bytes: int) -> bool:
    """Whether an import of ``manifest_bytes`` into the catalog at ``path`` should use a
    child process (a file catalog, a POSIX system, two or more cores, a large manifest)."""
    mode = os.environ.get(ENV, "auto").strip().lower()
    if mode not in ("auto", "process", "inline"):
        raise CatalogError(f"{ENV}={mode!r} is not understood", hint="use auto, process or inline")
    if mode == "inline" or os.name != "posix" or str(path) == ":memory:":
        return False
    if mode == "process":
        return True
    return (os.cpu_count() or 1) >= 2 and manifest_bytes >= MIN_BYTES


def _send(stream: IO[bytes], message: Any) -> None:
    try:  # plain values (every batch): marshal writes them twice as fast as pickle
        data = b"m" + marshal.dumps(message, 4)
    except ValueError:
        data = b"p" + pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)


def _receive(stream: IO[bytes]) -> Any:
    """The next message, or None at the end of the stream (or a torn frame)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return marshal.loads(data[1:]) if data[:1] == b"m" else pickle.loads(data[1:])


class ProcessWriter:
    """The importer's side: a :class:`~dr.catalog.loader.Writer` that hands batches to a
    child process. Use as a context manager; leaving it without :meth:`finish` rolls the
    child's transaction back."""

    def __init__(self, path: Path, bulk: bool = True) -> None:
        self.path = path
        self.bulk = bulk
        self.child: subprocess.Popen[bytes] | None = None
        self.stderr: IO[bytes] | None = None
        self.first_id = 0

    def __enter__(self) -> ProcessWriter:
        self.stderr = tempfile.TemporaryFile()
        self.child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dr.catalog.writer",
                str(self.path),
                "bulk" if self.bulk else "",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            bufsize=1 << 20,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> int:
        reply = self._reply()
        if reply[0] != "ready":
            self._raise(reply)
        self.first_id = int(reply[1])
        return self.first_id

    def write(self, staged: list[Staged]) -> None:
        assert self.child is not None and self.child.stdin is not None
        try:
            _send(self.child.stdin, ("batch", staged))
        except (BrokenPipeError, OSError):
            self._raise(self._reply())
        if self._waiting():
            self._raise(self._reply())

    def finish(self) -> None:
        assert self.child is not None and self.child.stdin is not None
        try:
            _send(self.child.stdin, ("finish",))
            self.child.stdin.flush()
        except (BrokenPipeError, OSError):
            self._raise(self._reply())
        reply = self._reply()
        if reply[0] != "done":
            self._raise(reply)

    def close(self) -> None:
        """Stop the child (a rollback unless it committed) and wait for it."""
        child, self.child = self.child, None
        if child is None:
            return
        try:
            if child.stdin is not None:
                child.stdin.close()
        except OSError:
            pass
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
        if self.stderr is not None:
            self.stderr.close()

    def _waiting(self) -> bool:
        """Has the child said something (an error) without being asked?"""
        assert self.child is not None and self.child.stdout is not None
        readable, _, _ = select.select([self.child.stdout], [], [], 0)
        return bool(readable)

    def _reply(self) -> tuple[Any, ...]:
        assert self.child is not None and self.child.stdout is not None
        try:
            if self.child.stdin is not None:
                self.child.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        reply = _receive(self.child.stdout)
        if reply is None:
            code = self.child.wait()
            raise CatalogError(
                f"{self.path}: the catalog writer stopped (exit code {code}) "
                f"{self._stderr_tail()}; nothing was imported",
                hint=_HINT,
            )
        return tuple(reply)

    def _raise(self, reply: tuple[Any, ...]) -> None:
        if reply[0] == "repeat":
            raise Repeated(reply[1], reply[2])
        message = reply[1] if reply[0] == "error" else f"unexpected reply {reply[0]!r}"
        raise CatalogError(
            f"{self.path}: the import could not be written ({message}); nothing was imported",
            hint=_HINT,
        )

    def _stderr_tail(self) -> str:
        if self.stderr is None:
            return ""
        self.stderr.seek(0)
        lines = self.stderr.read().decode("utf-8", "replace").strip().splitlines()
        return f"({lines[-1]})" if lines else ""


def serve(path: Path, bulk: bool, inp: IO[bytes], out: IO[bytes]) -> int:
    """The child's side: one transaction, committed only on ``finish``."""
    conn = connect(path)
    try:
        conn.execute(f"PRAGMA cache_size={_CACHE}")
        conn.execute("BEGIN IMMEDIATE")
        writer = InlineWriter(conn, bulk=bulk, explain=True)
        _send(out, ("ready", writer.start()))
        out.flush()
        while (message := _receive(inp)) is not None:
            if message[0] == "batch":
                writer.write(message[1])
            elif message[0] == "finish":
                writer.finish()
                conn.execute("COMMIT")
                _send(out, ("done",))
                out.flush()
                return 0
        conn.execute("ROLLBACK")  # the importer gave up or went away
        return 0
    except Repeated as repeated:
        return _fail(conn, out, ("repeat", repeated.run, repeated.existing))
    except (sqlite3.Error, CatalogError) as exc:
        return _fail(conn, out, ("error", str(exc)))
    finally:
        conn.close()


def _fail(conn: sqlite3.Connection, out: IO[bytes], reply: tuple[Any, ...]) -> int:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    try:
        _send(out, reply)
        out.flush()
    except OSError:
        pass
    return 1


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group; the importer decides, and closing the pipe
    # is how it says "stop".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with cycle_collection_paused():
        return serve(Path(argv[1]), argv[2:3] == ["bulk"], sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
