"""The fast CSV checks accept exactly what the full checks accept, and the bulk writer keeps
every guarantee: repeats across batches, NULLs, the rebuilt runs table."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr.catalog import Catalog, NewArtifact, NewRun, admission, loader
from dr.catalog.importers import csv_manifest
from dr.catalog.schema import migrate
from dr.errors import DrError, ManifestError
from dr.model.sets import BackupSet

HEAD = (
    "run_id,set,host,type,start,end,status,kind,name,size,stored_size,storage_group,"
    "log_prefix,first_gen,last_gen,mounted,sha256\n"
)
SHA = "ab" * 32


def _catalog(path: Path) -> Catalog:
    cat = Catalog.open(path)
    cat.register_set(BackupSet(name="ex", host="SRV", type="exchange"))
    cat.register_set(BackupSet(name="ss", host="SRV", type="system-state"))
    return cat


def _dump(cat: Catalog) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("runs", "artifacts", "stream_backups")
    return {t: cat.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}


def _outcome(path: Path, manifest: Path) -> tuple[str, Any]:
    with _catalog(path) as cat:
        try:
            cat.import_file(manifest, None, "csv")
        except DrError as exc:
            details = [(p.line, p.field, p.message) for p in exc.problems]
            return type(exc).__name__, (exc.message, details)
        return "imported", _dump(cat)


# Cells that are good, good but unusual (the fast checks hand them to the full checks), or bad.
_TIMES = ["2024-01-0{d}T0{h}:00:00Z", "2024-01-0{d}T0{h}:00:00+02:00", " 2024-01-0{d}T0{h}:00:00Z"]
_CELLS = {
    "status": ["", "success", "warning", "failed", "bogus"],
    "size": ["10", " 10 ", "-1", "ten", ""],
    "stored_size": ["", "4", "1_0", "x"],
    "log_prefix": ["E00", "e00", " E00", "X00"],
    "mounted": ["", "true", "no", "Y", "maybe"],
    "sha256": ["", SHA, "abc"],
    "host": ["SRV", "srv", "OTHER"],
    "kind": ["logs", "database", " logs", "bogus"],
}


@st.composite
def manifests(draw: st.DrawFn) -> str:
    """A CSV of a few Exchange runs: a full, then log backups, with odd cells mixed in."""
    rows, gen = [], 1
    for number in range(draw(st.integers(1, 6))):
        kind = "full" if number == 0 else draw(st.sampled_from(["incremental", "full", "copy"]))
        first = gen + draw(st.sampled_from([0, 0, 0, 0, 2]))
        last = first + draw(st.sampled_from([0, 3, 3, -1]))
        gen = max(gen, last + 1)
        when = draw(st.sampled_from(_TIMES)).format(d=number + 1, h=1)
        end = when.replace("T01", "T02") if draw(st.integers(0, 9)) else when.replace("T01", "T00")
        cell = {name: draw(st.sampled_from(values)) if draw(st.integers(0, 4)) == 0 else values[0]
                for name, values in _CELLS.items()}  # fmt: skip
        prefix = (f"r{number}", "ex", cell["host"], kind, when, end, cell["status"])
        logs = (cell["kind"], "E00 logs", cell["size"], cell["stored_size"], "SG")
        rows.append((*prefix, *logs, cell["log_prefix"], first, last, "", cell["sha256"]))
        if kind != "incremental":
            db = ("database", "db.edb", "50", "", "SG", "", "", "", cell["mounted"], "")
            rows.append((*prefix, *db))
    return HEAD + "".join(",".join(str(c) for c in row) + "\n" for row in rows)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(manifests())
def test_fast_checks_give_the_same_catalog_or_errors_as_the_full_checks(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    work = tmp_path_factory.mktemp("m")
    manifest = work / "m.csv"
    manifest.write_text(text)
    fast = _outcome(work / "fast.sqlite", manifest)
    with pytest.MonkeyPatch.context() as patch:
        original = csv_manifest.read
        patch.setattr(csv_manifest, "read", lambda source, file, *_: original(source, file))
        full = _outcome(work / "full.sqlite", manifest)
    assert fast == full


def test_a_clean_manifest_takes_the_fast_path(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        HEAD + f"a,ex,SRV,full,2024-01-01T01:00:00Z,2024-01-01T02:00:00Z,,logs,E00 logs,10,"
        f",SG,e00,1,4,,{SHA}\n"
    )
    with _catalog(tmp_path / "c.sqlite") as cat:
        sets = {s.name: s for s in cat.sets()}
        from dr.catalog.importers.resolve import Resolver
        from dr.catalog.importers.source import Source

        (run,) = csv_manifest.read(Source(manifest), str(manifest), sets, Resolver(None))
        assert isinstance(run, loader.Prepared)
        assert run.artifacts[0][loader.PREFIX] == "E00"
        assert run.artifacts[0][loader.SG] == "SRV/SG"
        assert run.artifacts[0][loader.STORED] == 10  # stored size defaults to the size


def _state_rows(count: int) -> str:
    row = "{i},ss,SRV,full,2024-01-{d:02d}T01:00:00Z,2024-01-{d:02d}T02:00:00Z,,files,f,1,,,,,,,\n"
    return "".join(row.format(i=i, d=i + 1) for i in range(count))


@pytest.mark.parametrize("earlier_import", [False, True])
def test_a_repeat_in_a_later_batch_is_refused_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, earlier_import: bool
) -> None:
    monkeypatch.setattr(loader, "BATCH", 2)
    manifest = tmp_path / "m.csv"
    body = _state_rows(5)
    manifest.write_text(HEAD + body + body.splitlines(keepends=True)[1])  # run 1 again
    with _catalog(tmp_path / "c.sqlite") as cat:
        if earlier_import:  # the catalog is not empty: the batch asks which runs it holds
            other = tmp_path / "o.csv"
            other.write_text(HEAD + _state_rows(9).splitlines(keepends=True)[8])
            cat.import_file(other, None, "csv")
        before = _dump(cat)
        with pytest.raises(ManifestError, match=r"m\.csv:7: run: the same run"):
            cat.import_file(manifest, None, "csv")
        assert _dump(cat) == before


def test_reimport_after_a_bulk_load_skips_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "BATCH", 3)
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEAD + _state_rows(7))
    with _catalog(tmp_path / "c.sqlite") as cat:
        assert cat.import_file(manifest, None, "csv").runs_added == 7
        again = cat.import_file(manifest, None, "csv")
        assert (again.runs_added, again.runs_skipped) == (0, 7)


def test_missing_values_are_stored_as_null_and_given_ones_exactly(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    at = datetime(2024, 1, 1, 1, tzinfo=UTC)
    bare = NewArtifact(kind="files", name="f", size=0)
    full = NewArtifact(
        kind="files", name="g", size=7, stored_size=0, sha256=SHA, location="L", state="S",
        log_required_first=0, log_required_last=0, db_signature="d", mailbox="m", item_count=0,
    )  # fmt: skip
    with _catalog(tmp_path / "c.sqlite") as cat:
        run = cat.record_run(NewRun("ss", "SRV", "full", at, at, artifacts=(bare, full)))
        assert run.error is None and run.started == at and run.started.tzinfo is UTC
        first, second = cat.artifacts(run_id=run.id)
        assert (first.stored_size, first.sha256, first.item_count, first.first_gen) == (
            0,
            None,
            None,
            None,
        )
        assert (second.stored_size, second.sha256, second.item_count) == (0, SHA, 0)
        assert (second.log_required_first, second.mailbox) == (0, "m")
        assert (
            cat.conn.execute("SELECT COUNT(*) FROM artifacts WHERE sha256 IS NULL").fetchone()[0]
            == 1
        )


def test_artifact_row_positions_agree_between_loader_and_rules() -> None:
    positions = ("KIND", "SG", "PREFIX", "FIRST", "LAST", "SIGNATURE", "MOUNTED", "CIRCULAR")
    fields = ("kind", "storage_group", "log_prefix", "first_gen", "last_gen", "log_signature",
              "mounted", "circular_logging")  # fmt: skip
    for name, field in zip(positions, fields, strict=True):
        assert loader.ART_FIELDS[getattr(admission, name)] == field


def test_migration_4_rebuilds_runs_keeping_rows_rules_and_cascades(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn, str(path), target=3)
    conn.execute("INSERT INTO backup_sets VALUES ('s','H','files','{}','{}',0)")
    conn.execute("INSERT INTO runs (id, set_name, host, backup_type, started, ended, status, "
                 "error, source, compression, run_key, expired) "
                 "VALUES (7,'s','H','incremental',5,6,'warning','e','x','fast','k',1)")  # fmt: skip
    conn.execute("INSERT INTO artifacts (run_id, kind, host, name, size, stored_size) "
                 "VALUES (7,'files','H','a',10,5)")  # fmt: skip
    conn.close()
    with Catalog.open(path) as cat:
        rows = cat.conn.execute("SELECT * FROM runs").fetchall()
        assert rows == [(7, "s", "H", "incremental", 5, 6, "warning", "e", "x", "fast", "k", 1)]
        assert cat.counts()["artifacts"] == 1
        assert cat.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        names = {
            r[0] for r in cat.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
        assert {"runs_by_set", "runs_by_host"} <= names
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            cat.conn.execute("UPDATE runs SET backup_type = 'weekly'")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            cat.conn.execute("UPDATE runs SET status = 'fine'")
        cat.conn.execute("DELETE FROM runs")
        assert cat.counts()["artifacts"] == 0  # ON DELETE CASCADE still points at runs
