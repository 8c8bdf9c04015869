"""Imports written by a child process (dr.catalog.writer): the same catalog as one process,
and all or nothing whichever side fails or is killed."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dr.catalog import Catalog, writer
from dr.catalog.loader import BATCH
from dr.errors import CatalogError, LogSequenceViolation, ManifestError
from dr.model.sets import BackupSet

START = datetime(2024, 1, 1, tzinfo=UTC)
COLUMNS = [
    "run_id", "set", "host", "type", "start", "end", "status", "error", "kind", "name", "size",
    "stored_size", "sha256", "location", "storage_group", "log_prefix", "first_gen", "last_gen",
    "mounted",
]  # fmt: skip
TABLES = {
    "runs": "SELECT * FROM runs ORDER BY id",
    "artifacts": "SELECT * FROM artifacts ORDER BY id",
    "stream_backups": "SELECT * FROM stream_backups ORDER BY run_id, storage_group",
}


def _rows(days: int, databases: int = 2) -> list[list[Any]]:
    """A realistic mix: per database hourly log backups and a daily full (database, logs,
    checkpoint), a dismounted full recorded as a copy, failed runs with an error, and a
    two-stream run; plus a system-state set of daily fulls."""
    rows: list[list[Any]] = []
    for db in range(databases):
        gen, sg, name = 1, f"SRV/SG{db}", f"ex{db}"
        for hour in range(days * 24):
            at = START + timedelta(hours=hour)
            run = [f"{name}-{hour}", name, "SRV", "full" if hour % 24 == 0 else "incremental"]
            run += [at.isoformat(), (at + timedelta(minutes=2)).isoformat()]
            if hour % 97 == 5:
                rows.append([*run[:4], *run[4:], "failed", "VSS writer timed out"] + [""] * 11)
                continue
            mounted = "false" if hour == 48 else ""
            if run[3] == "full":
                digest = f"{hour:064x}"
                rows.append(
                    [*run, "success", "", "database", "db.edb", 5 << 30, 2 << 30, digest,
                     f"\\\\BACKUP01\\Archive\\{name}\\{hour}.edb", sg, "", "", "", mounted]
                )  # fmt: skip
                rows.append([*run, "success", "", "checkpoint", "E00.chk", 8192, 900] + [""] * 2
                            + [sg, "", "", "", ""])  # fmt: skip
            rows.append([*run, "success", "", "logs", "E00 logs", 40960, 9000, "", "", sg, "E00",
                         gen, gen + 4, ""])  # fmt: skip
            if not mounted:  # a copy truncates no logs: the next backup has them again
                gen += 5
    for day in range(days):
        at = START + timedelta(days=day, hours=3)
        end = (at + timedelta(minutes=9)).isoformat()
        rows.append(
            [f"ss-{day}", "ss", "DC1", "full", at.isoformat(), end, "success", "", "system-state",
             "SystemState.bkf", 600 << 20, 200 << 20, "", "", "", "", "", "", ""]
        )  # fmt: skip
    return rows


def _manifest(path: Path, rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        out.writerows(rows)
    return path


def _catalog(path: Path, databases: int = 2) -> Catalog:
    cat = Catalog.open(path)
    for db in range(databases):
        cat.register_set(BackupSet(name=f"ex{db}", host="SRV", type="exchange"), at=START)
    cat.register_set(BackupSet(name="ss", host="DC1", type="system-state"), at=START)
    return cat


def _dump(cat: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    return {name: cat.conn.execute(sql).fetchall() for name, sql in TABLES.items()}


def _import(cat: Catalog, manifest: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(writer.ENV, mode)
    return cat.import_file(manifest, None, "csv")


def _writers() -> list[int]:
    """Pids of catalog writer processes still running."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"dr.catalog.writer" in cmdline:
                found.append(int(entry.name))
    return found


def _received(parent: int) -> int:
    """Bytes the parent's catalog writer has read so far (0 while there is none)."""
    for pid in _writers():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            io = Path(f"/proc/{pid}/io").read_text()
        except OSError:
            continue
        if f"PPid:\t{parent}\n" in status:
            return int(next(x for x in io.splitlines() if x.startswith("rchar:")).split()[1])
    return 0


def test_a_child_process_writes_the_same_catalog_as_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _manifest(tmp_path / "h.csv", _rows(days=200))
    inline = _catalog(tmp_path / "inline.sqlite")
    child = _catalog(tmp_path / "child.sqlite")
    one = _import(inline, manifest, "inline", monkeypatch)
    two = _import(child, manifest, "process", monkeypatch)
    assert one == two
    assert one.runs_added > 2 * BATCH  # several batches crossed the pipe
    assert one.converted_to_copy == ("SRV/SG0", "SRV/SG1")
    assert _dump(inline) == _dump(child)
    # the indexes a bulk load drops are back, in both
    names = "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name"
    assert inline.conn.execute(names).fetchall() == child.conn.execute(names).fetchall()
    assert child.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert child.conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_second_import_in_a_child_process_skips_what_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(days=30)
    cat = _catalog(tmp_path / "c.sqlite")
    first = _import(
        cat, _manifest(tmp_path / "a.csv", rows[: len(rows) // 2]), "process", monkeypatch
    )
    before = _dump(cat)
    again = _import(
        cat, _manifest(tmp_path / "a.csv", rows[: len(rows) // 2]), "process", monkeypatch
    )
    assert (again.runs_added, again.runs_skipped) == (0, first.runs_added)
    assert _dump(cat) == before
    rest = _import(cat, _manifest(tmp_path / "b.csv", rows), "process", monkeypatch)
    assert rest.runs_skipped == first.runs_added and rest.runs_added > 0
    whole = _catalog(tmp_path / "whole.sqlite")
    _import(whole, _manifest(tmp_path / "w.csv", rows), "inline", monkeypatch)
    assert _dump(cat) == _dump(whole)


def test_a_bad_record_late_in_the_file_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(days=200)
    rows[-40][10] = "lots"  # size of a system-state backup near the end
    manifest = _manifest(tmp_path / "h.csv", rows)
    cat = _catalog(tmp_path / "c.sqlite")
    before = _dump(cat)
    with pytest.raises(ManifestError) as caught:
        _import(cat, manifest, "process", monkeypatch)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.field) == (
        str(manifest),
        len(rows) - 40 + 2,
        "artifacts[0].size",
    )
    assert _dump(cat) == before
    assert _writers() == []


def test_a_run_listed_twice_far_apart_is_refused_by_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(days=120)
    states = [row for row in rows if row[1] == "ss"]
    rows = [*states, *(row for row in rows if row[1] != "ss")]
    rows.append(list(states[0]))  # the first run, again at the very end (no stream rules)
    manifest = _manifest(tmp_path / "h.csv", rows)
    cat = _catalog(tmp_path / "c.sqlite")
    with pytest.raises(ManifestError) as caught:
        _import(cat, manifest, "process", monkeypatch)
    assert str(caught.value).startswith(f"{manifest}:{len(rows) + 1}: run: the same run")
    assert cat.counts()["runs"] == 0
    assert _writers() == []


def test_a_log_gap_is_refused_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(days=60)
    line = next(i for i in range(len(rows) - 1, 0, -1) if rows[i][8] == "logs")
    rows[line][16] += 1000  # first generation far past the previous backup's last
    rows[line][17] += 1000
    manifest = _manifest(tmp_path / "h.csv", rows)
    cat = _catalog(tmp_path / "c.sqlite")
    with pytest.raises(LogSequenceViolation) as caught:
        _import(cat, manifest, "process", monkeypatch)
    assert str(caught.value).startswith(f"{manifest}:")
    assert cat.counts()["runs"] == 0


def test_a_killed_child_is_a_clear_error_and_the_catalog_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _manifest(tmp_path / "h.csv", _rows(days=100))
    cat = _catalog(tmp_path / "c.sqlite")
    sent = 0
    real_write = writer.ProcessWriter.write

    def write(self: writer.ProcessWriter, staged: Any) -> None:
        nonlocal sent
        sent += 1
        if sent == 2 and self.child is not None:
            os.kill(self.child.pid, signal.SIGKILL)
            self.child.wait()
        real_write(self, staged)

    monkeypatch.setattr(writer.ProcessWriter, "write", write)
    with pytest.raises(CatalogError, match=r"the catalog writer stopped .*nothing was imported"):
        _import(cat, manifest, "process", monkeypatch)
    assert cat.counts()["runs"] == 0
    monkeypatch.setattr(writer.ProcessWriter, "write", real_write)
    report = _import(cat, manifest, "process", monkeypatch)  # the write lock was released
    assert report.runs_added == cat.counts()["runs"] > 0


def test_killing_the_importer_rolls_the_child_back(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "h.csv", _rows(days=800, databases=3))
    _catalog(tmp_path / "c.sqlite", databases=3).close()
    script = (
        "import sys; from pathlib import Path; from dr.catalog import Catalog; "
        "Catalog.open(Path(sys.argv[1])).import_file(Path(sys.argv[2]), None, 'csv')"
    )
    env = {**os.environ, writer.ENV: "process"}
    importer = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "c.sqlite"), str(manifest)], env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _received(importer.pid) < 4 << 20:
        time.sleep(0.01)  # until the child has been handed a few batches
    assert importer.poll() is None, "the import finished before it could be interrupted"
    importer.kill()
    importer.wait()
    deadline = time.monotonic() + 30
    while _writers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _writers() == []  # the child saw the pipe close, rolled back and left
    cat = Catalog.open(tmp_path / "c.sqlite")
    assert cat.counts()["runs"] == 0
    assert cat.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_error_inside_the_writer_is_reported_and_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(days=200)
    rows[-5][9] = "refused.bkf"  # a late system-state backup the catalog will not take
    manifest = _manifest(tmp_path / "h.csv", rows)
    cat = _catalog(tmp_path / "c.sqlite")
    cat.conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON artifacts WHEN NEW.name = 'refused.bkf' "
        "BEGIN SELECT RAISE(ABORT, 'no space left on device (simulated)'); END"
    )
    with pytest.raises(CatalogError, match=r"could not be written \(no space left") as caught:
        _import(cat, manifest, "process", monkeypatch)
    assert "nothing was imported" in str(caught.value)
    assert cat.counts()["runs"] == 0
    assert _writers() == []


def test_ctrl_c_stops_both_processes_and_rolls_back(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "h.csv", _rows(days=800, databases=3))
    _catalog(tmp_path / "c.sqlite", databases=3).close()
    script = (
        "import sys; from pathlib import Path; from dr.catalog import Catalog\n"
        "try:\n"
        "    Catalog.open(Path(sys.argv[1])).import_file(Path(sys.argv[2]), None, 'csv')\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n"
    )
    env = {**os.environ, writer.ENV: "process"}
    importer = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "c.sqlite"), str(manifest)],
        env=env,
        start_new_session=True,  # its own process group, as a terminal gives it
        # and Ctrl-C's default action, as a terminal gives it: a test run started in the
        # background by a shell inherits SIGINT ignored, and Python would keep ignoring it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _received(importer.pid) < 4 << 20:
        time.sleep(0.01)
    assert importer.poll() is None, "the import finished before it could be interrupted"
    os.killpg(importer.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
    assert importer.wait(timeout=60) == 130
    deadline = time.monotonic() + 30
    while _writers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _writers() == []
    cat = Catalog.open(tmp_path / "c.sqlite")
    assert cat.counts()["runs"] == 0


def test_the_writer_setting_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(writer.ENV, "threads")
    with pytest.raises(CatalogError, match="DR_CATALOG_WRITER='threads'"):
        writer.wanted(tmp_path / "c.sqlite", 1 << 30)
    monkeypatch.setenv(writer.ENV, "auto")
    assert not writer.wanted(tmp_path / "c.sqlite", 1 << 10)  # small: one process
    monkeypatch.setenv(writer.ENV, "inline")
    assert not writer.wanted(tmp_path / "c.sqlite", 1 << 30)


def test_the_cli_imports_through_the_child(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    env = {**os.environ, writer.ENV: "process", "DR_WORKSPACE": str(workspace)}
    dr = [sys.executable, "-m", "dr"]
    subprocess.run([*dr, "init"], env=env, check=True, capture_output=True)
    cat = _catalog(workspace / "catalog.sqlite")
    cat.close()
    manifest = _manifest(tmp_path / "h.csv", _rows(days=10))
    done = subprocess.run(
        [*dr, "catalog", "import", str(manifest), "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert '"runs_added"' in done.stdout
    conn = sqlite3.connect(workspace / "catalog.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] > 0
