"""CatalogFacts: the planner's facts read from a real SQLite catalog."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from dr.catalog import Catalog, NewArtifact, NewRun
from dr.errors import CircularLoggingViolation
from dr.planner import plan_database
from dr.planner.catalog_facts import catalog_facts
from tests.planner.histories import T0, estate, steps

DB = "EX2016/DB01/DB01"
SG = "EX2016/DB01"


def _run(kind: str, hour: int, first: int, last: int, with_db: bool) -> NewRun:
    artifacts = [
        NewArtifact(
            kind="logs",
            name=f"E00 {first}-{last}",
            size=(last - first + 1) * 1_048_576,
            storage_group=SG,
            log_prefix="E00",
            first_gen=first,
            last_gen=last,
            log_signature="sig",
        )
    ]
    if with_db:
        artifacts.append(
            NewArtifact(
                kind="database",
                name="DB01.edb",
                size=5 * 10**9,
                storage_group=SG,
                database=DB,
                state="Dirty Shutdown",
                log_required_first=first,
                log_required_last=last,
            )
        )
    return NewRun(
        set_name="ex2016-exchange",
        host="EX2016",
        backup_type=kind,  # type: ignore[arg-type]
        started=T0 + timedelta(hours=hour),
        ended=T0 + timedelta(hours=hour, minutes=5),
        artifacts=tuple(artifacts),
    )


def test_plan_from_a_real_catalog(tmp_path: Path) -> None:
    inv = estate()
    with Catalog.open(tmp_path / "catalog.sqlite") as catalog:
        catalog.sync_sets(inv.backup_sets)
        catalog.record_run(_run("full", 0, 1, 10, True))
        catalog.record_run(_run("incremental", 1, 11, 20, False))
        catalog.record_run(_run("incremental", 2, 21, 30, False))
        facts = catalog_facts(catalog, inv, steps=steps())
    versions = facts.stream_backups(SG)
    assert [v.backup_type for v in versions] == ["full", "incremental", "incremental"]
    plan = plan_database(facts, ["DB01"], T0 + timedelta(hours=1, minutes=30))
    assert plan.facts["chains"][0]["versions"] == [versions[0].id, versions[1].id]
    assert plan.recoverable_point == T0 + timedelta(hours=1, minutes=5)


def test_circular_logging_recorded_at_backup_time_reaches_the_planner(tmp_path: Path) -> None:
    """A backup recorded with circular logging on (the host said so, or the import did) is
    a fact the planner reads: the catalog refuses a later incremental, and the plan does
    not roll forward past it."""
    inv = estate()
    with Catalog.open(tmp_path / "catalog.sqlite") as catalog:
        catalog.sync_sets(inv.backup_sets)
        catalog.record_run(_run("full", 0, 1, 10, True))
        catalog.record_run(_run("incremental", 1, 11, 20, False))
        on = _run("copy", 2, 11, 25, True)
        on = replace(on, artifacts=tuple(replace(a, circular_logging=True) for a in on.artifacts))
        catalog.record_run(on)
        with pytest.raises(CircularLoggingViolation, match="no full backup has been taken"):
            catalog.record_run(_run("incremental", 3, 21, 30, False))
        facts = catalog_facts(catalog, inv, steps=steps())
    flags = [(v.backup_type, v.circular_logging) for v in facts.stream_backups(SG)]
    assert flags == [("full", False), ("incremental", False), ("copy", True)]
