"""The catalog: migrations, recording runs under the Exchange rules, imports, listing."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dr.catalog import Catalog, NewArtifact, NewRun
from dr.catalog.listing import listing
from dr.catalog.schema import LATEST, MIGRATIONS, migrate
from dr.errors import CatalogError, LogSequenceViolation, ManifestError, PolicyError
from dr.model.inventory import load_inventory
from dr.model.sets import BackupSet

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 6, 20, 0, tzinfo=UTC)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog.open(tmp_path / "catalog.sqlite")
    cat.register_set(BackupSet(name="ex", host="EX2016", type="exchange", compression="fast"))
    return cat


def _logs(first: int, last: int, sg: str = "EX2016/DB01") -> NewArtifact:
    return NewArtifact(
        kind="logs",
        name="E00 logs",
        size=(last - first + 1) * 1024,
        storage_group=sg,
        log_prefix="E00",
        first_gen=first,
        last_gen=last,
    )


def _run(kind: str, hours: int, *artifacts: NewArtifact) -> NewRun:
    start = T0 + timedelta(hours=hours)
    return NewRun("ex", "EX2016", kind, start, start + timedelta(minutes=5), artifacts=artifacts)  # type: ignore[arg-type]


def test_fresh_catalog_is_at_latest_version_with_wal(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        assert cat.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == LATEST
        assert cat.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cat.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_upgrade_from_v1_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), target=1)
    conn.execute("INSERT INTO backup_sets VALUES ('s','H','files','{}','{}',0)")
    conn.execute(
        "INSERT INTO runs VALUES (1,'s','H','incremental',0,1,'success',NULL,'x','fast','k')"
    )
    conn.execute(
        "INSERT INTO artifacts (run_id, kind, host, name, size, stored_size) "
        "VALUES (1,'files','H','a',10,5)"
    )
    conn.close()
    with Catalog.open(path) as cat:
        (artifact,) = cat.artifacts()
        assert artifact.backup_type == "incremental"  # filled in by migration 2
        assert (
            len(MIGRATIONS) == cat.conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0]
        )


def _stream_flags(cat: Catalog) -> list[tuple[int, str, int, int]]:
    """Each stream backup's flag beside what it means: no live artifact of the stream left."""
    return cat.conn.execute(
        "SELECT s.run_id, s.storage_group, s.expired, NOT EXISTS (SELECT 1 FROM artifacts a "
        "WHERE a.run_id = s.run_id AND a.storage_group = s.storage_group AND a.expired = 0) "
        "FROM stream_backups s ORDER BY s.run_id, s.storage_group"
    ).fetchall()


def test_upgrade_to_v5_flags_stream_backups_without_live_artifacts(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Catalog.open(path) as cat:
        cat.register_set(BackupSet(name="ex", host="EX2016", type="exchange"))
        cat.record_run(_run("full", 0, _logs(1, 4), _logs(1, 2, sg="EX2016/DB02")))
        cat.record_run(_run("incremental", 1, _logs(5, 9)))
        cat.conn.execute("UPDATE artifacts SET expired = 1 WHERE storage_group = 'EX2016/DB02'")
        cat.conn.execute("DELETE FROM schema_version WHERE version >= 5")
        cat.conn.execute("ALTER TABLE stream_backups DROP COLUMN expired")
        cat.conn.execute("DROP INDEX artifacts_by_kind_host")
    with Catalog.open(path) as cat:
        flags = _stream_flags(cat)
        assert [(sg, flag) for _, sg, flag, _ in flags] == [
            ("EX2016/DB01", 0), ("EX2016/DB02", 1), ("EX2016/DB01", 0)
        ]  # fmt: skip
        assert all(flag == gone for *_, flag, gone in flags)


def test_expiring_artifacts_flags_their_stream_backups(catalog: Catalog) -> None:
    full = catalog.record_run(_run("full", 0, _logs(1, 4), _logs(1, 2, sg="EX2016/DB02")))
    catalog.record_run(_run("incremental", 1, _logs(5, 9)))
    db02 = catalog.conn.execute(
        "SELECT id FROM artifacts WHERE storage_group = 'EX2016/DB02'"
    ).fetchall()
    catalog.mark_expired(artifact_ids=[row[0] for row in db02])
    assert [flag for _, _, flag, _ in _stream_flags(catalog)] == [0, 1, 0]
    catalog.mark_expired(run_ids=[full.id])
    flags = _stream_flags(catalog)
    assert [flag for _, _, flag, _ in flags] == [1, 1, 0]
    assert all(flag == gone for *_, flag, gone in flags)


def test_newer_catalog_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    Catalog.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?)", (LATEST + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(CatalogError, match="newer than this dr"):
        Catalog.open(path)


def test_record_run_admits_a_chain_and_refuses_a_gap(catalog: Catalog) -> None:
    catalog.record_run(_run("full", 0, _logs(1, 10)))
    catalog.record_run(_run("incremental", 1, _logs(11, 20)))
    before = catalog.counts()
    with pytest.raises(LogSequenceViolation, match="21"):
        catalog.record_run(_run("incremental", 2, _logs(25, 30)))
    assert catalog.counts() == before


def test_full_of_dismounted_database_is_recorded_as_copy(catalog: Catalog) -> None:
    db = NewArtifact(
        kind="database",
        name="DB01.edb",
        size=100,
        storage_group="EX2016/DB01",
        database_mounted=False,
    )
    run = catalog.record_run(_run("full", 0, db, _logs(1, 3)))
    assert run.backup_type == "copy"
    assert {a.backup_type for a in catalog.artifacts(run_id=run.id)} == {"copy"}


def test_runs_record_the_compression_in_force_when_they_started(catalog: Catalog) -> None:
    early = catalog.record_run(_run("full", 0, _logs(1, 3)))
    change = T0 + timedelta(hours=3)
    catalog.update_set(
        BackupSet(name="ex", host="EX2016", type="exchange", compression="normal"), at=change
    )
    late = catalog.record_run(_run("incremental", 4, _logs(4, 6)))
    assert (early.compression, late.compression) == ("fast", "normal")


def test_encryption_change_is_refused(catalog: Catalog) -> None:
    changed = BackupSet(name="ex", host="EX2016", type="exchange", encryption={"enabled": False})
    with pytest.raises(PolicyError, match="encryption is fixed"):
        catalog.update_set(changed)


@pytest.fixture
def estate() -> object:
    return load_inventory(ROOT / "examples" / "estate.yaml")


def _manifest(tmp_path: Path, runs: list[dict]) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(runs, indent=2))
    return path


def _json_run(kind: str, hour: int, first: int, last: int, **extra: object) -> dict:  # type: ignore[type-arg]
    return {
        "set": "ex2016-exchange",
        "host": "EX2016",
        "type": kind,
        "start": f"2024-05-06T{hour:02d}:00:00Z",
        "end": f"2024-05-06T{hour:02d}:05:00Z",
        "artifacts": [
            {
                "kind": "logs",
                "name": "E00 logs",
                "storage_group": "DB01",
                "log_prefix": "E00",
                "first_gen": first,
                "last_gen": last,
                "size": 4096,
                **extra,
            }
        ],
    }


def test_json_import_round_trip_and_idempotent(tmp_path: Path, estate: object) -> None:
    path = _manifest(tmp_path, [_json_run("full", 1, 1, 9), _json_run("incremental", 2, 10, 12)])
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        report = cat.import_file(path, estate)  # type: ignore[arg-type]
        assert (report.runs_added, report.artifacts_added) == (2, 2)
        again = cat.import_file(path, estate)  # type: ignore[arg-type]
        assert (again.runs_added, again.runs_skipped) == (0, 2)
        (inc,) = cat.artifacts(kind="logs", storage_group="EX2016/DB01")[1:]
        assert (inc.first_gen, inc.last_gen, inc.backup_type) == (10, 12, "incremental")


def test_bad_record_names_line_and_field_and_imports_nothing(
    tmp_path: Path, estate: object
) -> None:
    runs = [_json_run("full", 1, 1, 9), _json_run("incremental", 2, 10, 12, size=-5)]
    path = _manifest(tmp_path, runs)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if '"size": -5' in t)
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        cat.sync_sets(estate.backup_sets)  # type: ignore[attr-defined]
        before = cat.counts()
        with pytest.raises(ManifestError) as caught:
            cat.import_file(path, estate)  # type: ignore[arg-type]
        assert cat.counts() == before
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (line, "artifacts[0].size")


def test_rule_violation_refuses_the_whole_file(tmp_path: Path, estate: object) -> None:
    path = _manifest(tmp_path, [_json_run("full", 1, 1, 9), _json_run("incremental", 2, 15, 20)])
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        with pytest.raises(LogSequenceViolation, match=r"m\.json:\d+"):
            cat.import_file(path, estate)  # type: ignore[arg-type]
        assert cat.counts()["runs"] == 0


def test_csv_import_groups_rows_by_run_id(tmp_path: Path, estate: object) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "run_id,set,host,type,start,end,kind,name,size,stored_size,storage_group,database\n"
        "a,ex2016-exchange,EX2016,full,2024-05-06T01:00:00Z,2024-05-06T01:30:00Z,"
        "database,DB01.edb,1000,400,DB01,DB01\n"
        "a,ex2016-exchange,EX2016,full,2024-05-06T01:00:00Z,2024-05-06T01:30:00Z,"
        "checkpoint,E00.chk,8,8,DB01,\n"
        "b,dc1-system-state,DC1,full,2024-05-06T02:00:00Z,2024-05-06T02:10:00Z,"
        "system-state,SystemState.bkf,100,38,,\n"
    )
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        report = cat.import_file(path, estate)  # type: ignore[arg-type]
        assert (report.format, report.runs_added, report.artifacts_added) == ("csv", 2, 3)
        (db,) = cat.artifacts(kind="database")
        assert db.database == "EX2016/DB01/DB01"


WBADMIN = """wbadmin 1.0 - Backup command-line tool
(C) Copyright 2013 Microsoft Corporation. All rights reserved.

Backup time: 5/6/2024 1:00 AM
Backup target: Fixed Disk labeled D:
Version identifier: 05/05/2024-23:00
Can recover: Application(s), System State
Snapshot ID: {0f3c2a1e-9d7b-4c1a-8e2f-5a6b7c8d9e0f}

Backup time: 5/7/2024 1:00 AM
Backup target: Fixed Disk labeled D:
Version identifier: 05/06/2024-23:00
Can recover: Application(s), System State
Snapshot ID: {1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d}
"""


def test_wbadmin_versions_become_system_state_runs(tmp_path: Path, estate: object) -> None:
    path = tmp_path / "versions.txt"
    path.write_text(WBADMIN)
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        report = cat.import_file(path, estate, host="DC2016")  # type: ignore[arg-type]
        assert (report.format, report.runs_added) == ("wbadmin", 2)
        runs = cat.runs(set_name="dc2016-system-state")
        assert runs[1].started == datetime(2024, 5, 6, 23, 0, tzinfo=UTC)
        assert "05/06/2024-23:00" in (cat.artifacts(run_id=runs[1].id)[0].location or "")


def test_listing_marks_versions_and_ratio(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        cat.register_set(BackupSet(name="ss", host="DC1", type="system-state"))
        for hours, kind, size, stored in (
            (0, "full", 1000, 380),
            (24, "incremental", 100, 24),
            (48, "differential", 200, 72),
        ):
            art = NewArtifact(
                kind="system-state", name="SystemState.bkf", size=size, stored_size=stored
            )
            start = T0 + timedelta(hours=hours)
            cat.record_run(NewRun("ss", "DC1", kind, start, start, artifacts=(art,)))  # type: ignore[arg-type]
        rows = listing(cat.conn, "ss")
    assert [(r.marker, r.saved_percent) for r in rows] == [("[D]", 64), ("[I]", 76), ("", 62)]


def test_listing_narrows_to_the_newest_versions_and_a_start_time(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        cat.register_set(BackupSet(name="ss", host="DC1", type="system-state"))
        for day in range(6):
            arts = tuple(
                NewArtifact(kind="system-state", name=name, size=10)
                for name in ("SystemState.bkf", "Other.bkf")
            )
            start = T0 + timedelta(days=day)
            kind = "full" if day == 0 else "incremental"
            cat.record_run(NewRun("ss", "DC1", kind, start, start, artifacts=arts))  # type: ignore[arg-type]
        everything = listing(cat.conn, "ss")
        newest = listing(cat.conn, "ss", last=2)
        recent = listing(cat.conn, "ss", since=T0 + timedelta(days=4))
    assert len(everything) == 12
    assert [(r.item, r.at) for r in newest] == [
        (r.item, r.at) for r in everything if r.at >= T0 + timedelta(days=4)
    ]
    assert recent == newest


def test_import_admits_full_differential_then_incrementals_after_incrementals(
    tmp_path: Path, estate: object
) -> None:
    """The differential holds every log since the full (10..20): the incremental after it
    starts at 21, past the last incremental's 12, and that is no gap — also when the history
    is already in the catalog (a second import reads it back)."""
    first = [
        _json_run("full", 1, 1, 9),
        _json_run("incremental", 2, 10, 12),
        _json_run("differential", 3, 10, 20),
    ]
    second = [_json_run("incremental", 4, 21, 25), _json_run("incremental", 5, 26, 30)]
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        cat.import_file(_manifest(tmp_path, first), estate)  # type: ignore[arg-type]
        report = cat.import_file(_manifest(tmp_path, second), estate)  # type: ignore[arg-type]
        assert report.runs_added == 2
    with Catalog.open(tmp_path / "d.sqlite") as cat:
        assert cat.import_file(_manifest(tmp_path, first + second), estate).runs_added == 5  # type: ignore[arg-type]


def _mail_level_run(day: int) -> dict:  # type: ignore[type-arg]
    return {
        "set": "ex2016-mail-level",
        "host": "EX2016",
        "type": "full",
        "start": f"2024-05-{day:02d}T21:45:00Z",
        "end": f"2024-05-{day:02d}T21:55:00Z",
        "artifacts": [
            {
                "kind": "mailbox-items",
                "name": "mailbox finance",
                "size": 4096,
                "mailbox": "finance",
                "database": "DB02",  # the database the items came from (A11)
                "item_count": 100 + day,
            }
        ],
    }


def test_mail_level_backups_that_name_their_database_expire_under_retention(
    tmp_path: Path, estate: object
) -> None:
    """A mailbox-items artifact that records its database is still an item, not a stream:
    retention plans it and expires what the policy lets go (keep_days 30, weekly to 90)."""
    from dr.catalog import expiry

    path = _manifest(tmp_path, [_mail_level_run(day) for day in range(1, 11)])
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        cat.import_file(path, estate)  # type: ignore[arg-type]
        (item,) = {a.database for a in cat.artifacts(kind="mailbox-items")}
        assert item == "EX2016/DB02/DB02"
        at = datetime(2024, 7, 1, tzinfo=UTC)  # 50+ days on: only weekly points stay
        (plan,) = expiry.plan(cat, at, "ex2016-mail-level")
        assert len(plan.versions) == 10
        assert 0 < len(plan.expiring()) < 10
        changed = expiry.apply(cat, [plan], at)
        assert changed == len(plan.expiring())
        assert len(cat.artifacts(kind="mailbox-items")) == 10 - changed
