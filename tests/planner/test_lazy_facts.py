"""CatalogFacts: a plan asks the open catalog only what it needs, and gets what the full read
(``catalog_facts``) would have given it.

The catalog is the example estate's fortnight (examples/history.json, imported as `dr catalog
import` does): every kind of backup the planner reads, one deliberate gap, failed runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dr.planner.catalog_facts as cf
from dr.catalog import Catalog
from dr.catalog.model import to_epoch
from dr.errors import DrError
from dr.model.inventory import Inventory
from dr.model.load import load_inventory
from dr.planner import (
    plan_alternate,
    plan_database,
    plan_drill,
    plan_forest,
    plan_mailbox,
    plan_message,
    plan_offline,
    plan_server,
    plan_site,
)
from dr.planner.catalog_facts import CatalogFacts, catalog_facts
from dr.planner.facts import FactsProvider, StepFacts
from engine.runbook import Library

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2024, 5, 5, 0, 0, tzinfo=UTC)  # the history runs 2024-05-04 .. 2024-05-19
HOURS = 15 * 24

Scenario = Callable[[FactsProvider, datetime], Any]

#: Every scenario the planner and end-to-end tests make, over the example estate.
SCENARIOS: dict[str, Scenario] = {
    "database DB01": lambda p, t: plan_database(p, ["DB01"], t),
    "database DB02": lambda p, t: plan_database(p, ["DB02"], t),
    "database 2003 store": lambda p, t: plan_database(p, ["Mailbox Store (EX2003)"], t),
    "database 2003 group": lambda p, t: plan_database(
        p, ["Mailbox Store (EX2003)", "Public Folder Store (EX2003)"], t
    ),
    "database Sales (the gap)": lambda p, t: plan_database(p, ["Sales Store"], t),
    "database latest": lambda p, t: plan_database(p, ["DB01", "DB02"]),
    "offline": lambda p, t: plan_offline(p, ["DB01"], t),
    "alternate 2016": lambda p, t: plan_alternate(p, "DB02", None, t),
    "alternate 2003": lambda p, t: plan_alternate(p, "Sales Store", "recovery.contoso.lab", t),
    "drill": lambda p, t: plan_drill(p, "DB01", None, t),
    "drill into rdb": lambda p, t: plan_drill(p, "DB02", None, t, into="rdb"),
    "message": lambda p, t: plan_message(p, "jsmith", t, t + timedelta(days=3)),
    "mailbox 2016": lambda p, t: plan_mailbox(p, "finance", t + timedelta(days=60), at=t),
    "mailbox 2003": lambda p, t: plan_mailbox(p, "pjansen", t + timedelta(days=60), at=t),
    "server EX2003": lambda p, t: plan_server(p, "EX2003"),
    "server EX2016": lambda p, t: plan_server(p, "EX2016"),
    "server DC1": lambda p, t: plan_server(p, "DC1"),
    "server KMS1": lambda p, t: plan_server(p, "KMS1"),
    "forest": lambda p, t: plan_forest(p, "corp.contoso.com", (), t),
    "site": lambda p, t: plan_site(p),
}


@pytest.fixture(scope="module")
def estate() -> Inventory:
    return load_inventory(ROOT / "examples" / "estate.yaml")


@pytest.fixture(scope="module")
def steps() -> StepFacts:
    return StepFacts.of_library(Library.load())


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, estate: Inventory) -> Path:
    path = tmp_path_factory.mktemp("history") / "catalog.sqlite"
    with Catalog.open(path) as catalog:
        catalog.sync_sets(estate.backup_sets)
        catalog.import_file(ROOT / "examples" / "history.json", estate)
        _rare_facts(catalog)
    return path


def _rare_facts(catalog: Catalog) -> None:
    """What the fortnight lacks, set on a few of its runs: the newest backup of DB02 was
    taken with circular logging on, a run of each stream failed after storing its files, the
    first days' backups of DB01 and EX2003's system state expired."""
    conn = catalog.conn
    conn.execute(
        "UPDATE stream_backups SET circular_logging = 1 WHERE storage_group = 'EX2016/DB02' "
        "AND run_id = (SELECT MAX(run_id) FROM stream_backups WHERE storage_group = 'EX2016/DB02')"
    )
    for group in ("EX2016/DB01", "EX2003/First Storage Group"):
        conn.execute(
            "UPDATE runs SET status = 'failed' WHERE id = (SELECT run_id FROM artifacts "
            "WHERE storage_group = ? AND kind = 'logs' ORDER BY run_id LIMIT 1 OFFSET 40)",
            (group,),
        )
    cutoff = to_epoch(START + timedelta(days=2))
    old = [
        r
        for (r,) in conn.execute(
            "SELECT DISTINCT a.run_id FROM artifacts a JOIN runs r ON r.id = a.run_id "
            "WHERE r.ended < ? AND (a.storage_group = 'EX2016/DB01' OR "
            "(a.kind = 'system-state' AND a.host = 'EX2003'))",
            (cutoff,),
        )
    ]
    assert old and catalog.mark_expired(run_ids=old)


@pytest.fixture
def catalog(history: Path, tmp_path: Path) -> Iterator[Catalog]:
    path = tmp_path / "catalog.sqlite"
    shutil.copy(history, path)
    with Catalog.open(path) as opened:
        yield opened


def outcome(scenario: Scenario, provider: FactsProvider, at: datetime) -> tuple[str, Any]:
    """The plan's bytes, or the refusal as it is reported; with the provider's digest."""
    try:
        made: Any = ("plan", scenario(provider, at).canonical_json())
    except DrError as exc:
        made = ("refused", exc.to_dict())
    return made, provider.digest()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(sorted(SCENARIOS)),
    hours=st.floats(min_value=0, max_value=HOURS, allow_nan=False),
)
def test_a_plan_from_the_open_catalog_is_the_plan_from_the_full_read(
    catalog: Catalog, estate: Inventory, steps: StepFacts, name: str, hours: float
) -> None:
    at = (START + timedelta(hours=hours)).replace(microsecond=0)
    eager = outcome(SCENARIOS[name], catalog_facts(catalog, estate, (), steps), at)
    lazy = outcome(SCENARIOS[name], CatalogFacts(catalog, estate, (), steps), at)
    assert lazy == eager


def test_every_scenario_at_fixed_points_is_the_same_from_both(
    catalog: Catalog, estate: Inventory, steps: StepFacts
) -> None:
    """Each scenario at a few points (the gap on 2024-05-14 among them), so that none is
    left to chance; the scenarios that plan at all do so from both."""
    planned = set()
    for name, scenario in SCENARIOS.items():
        for at in (START + timedelta(days=2, hours=7), datetime(2024, 5, 14, 12, 0, tzinfo=UTC)):
            eager = outcome(scenario, catalog_facts(catalog, estate, (), steps), at)
            assert outcome(scenario, CatalogFacts(catalog, estate, (), steps), at) == eager, name
            if eager[0][0] == "plan":
                planned.add(name)
    assert {"database DB01", "database 2003 store", "server EX2003", "message"} <= planned


def test_every_stream_reads_as_the_full_read_builds_it(
    catalog: Catalog, estate: Inventory, steps: StepFacts
) -> None:
    """The stream read builds plain log backups from narrow rows and the other runs in full:
    every stream of the fortnight (fulls, copies, NTBackup media, circular logging, expired
    and failed runs among them) comes out as the full read builds it, version for version."""
    _media_run(catalog, "EX2003/First Storage Group")
    eager = catalog_facts(catalog, estate, (), steps)
    lazy = CatalogFacts(catalog, estate, (), steps)
    kinds = set()
    for stream, versions in eager.backups.items():
        assert list(lazy.stream_backups(stream)) == versions, stream
        kinds |= {(v.backup_type, bool(v.media), v.circular_logging) for v in versions}
    assert {("full", False, False), ("incremental", False, False)} <= kinds
    assert any(media for _, media, _ in kinds) and any(c for _, _, c in kinds)


def _media_run(catalog: Catalog, group: str) -> None:
    """An NTBackup log backup of ``group``: one media file holding its logs (no database)."""
    conn = catalog.conn
    at = to_epoch(START + timedelta(days=4, hours=3, minutes=30))
    set_name, host = conn.execute(
        "SELECT r.set_name, r.host FROM runs r JOIN artifacts a ON a.run_id = r.id "
        "WHERE a.storage_group = ? LIMIT 1",
        (group,),
    ).fetchone()
    run = conn.execute(
        "INSERT INTO runs (set_name, host, backup_type, started, ended, status, source, "
        "compression, run_key) VALUES (?, ?, 'incremental', ?, ?, 'success', 'dr', 'none', "
        "'media-run')",
        (set_name, host, at, at + 60),
    ).lastrowid
    conn.execute(
        "INSERT INTO artifacts (run_id, kind, host, storage_group, name, size, stored_size, "
        "first_gen, last_gen, log_prefix, backup_type) "
        "VALUES (?, 'logs', ?, ?, 'First-Storage-Group.bkf', 9, 9, 1, 2, 'E00', 'incremental')",
        (run, host, group),
    )


# ------------------------------------------------------------------ reading only what is asked


def _crowd(catalog: Catalog, streams: int) -> None:
    """Other sets' backups the plan must not read: ``streams`` storage groups on other hosts,
    a day of runs each, each run with a database, logs and a system state."""
    conn = catalog.conn
    base = to_epoch(START)
    conn.execute("BEGIN")
    for n in range(streams):
        host, sg = f"OTHER{n}", f"OTHER{n}/SG"
        conn.execute(
            "INSERT INTO backup_sets (name, host, type, definition, encryption, created) "
            "VALUES (?, ?, 'exchange', '{}', '{}', ?)",
            (f"other-{n}", host, base),
        )
        for hour in range(24):
            at = base + hour * 3600
            run = conn.execute(
                "INSERT INTO runs (set_name, host, backup_type, started, ended, status, source, "
                "compression, run_key) VALUES (?, ?, 'full', ?, ?, 'success', 'dr', 'none', ?)",
                (f"other-{n}", host, at, at + 60, f"other-{n}-{hour}"),
            ).lastrowid
            for kind, group in (("database", sg), ("logs", sg), ("system-state", None)):
                conn.execute(
                    "INSERT INTO artifacts (run_id, kind, host, storage_group, database, name, "
                    "size, stored_size, first_gen, last_gen, log_prefix) "
                    "VALUES (?, ?, ?, ?, ?, ?, 1, 1, 1, 2, 'E00')",
                    (run, kind, host, group, f"{sg}/DB" if kind == "database" else None, kind),
                )
    conn.execute("COMMIT")


def _traced(catalog: Catalog, make: Callable[[], Any]) -> tuple[list[str], Any]:
    """The SQL statements ``make`` ran, and what it made."""
    statements: list[str] = []
    catalog.conn.set_trace_callback(statements.append)
    try:
        made = make()
    finally:
        catalog.conn.set_trace_callback(None)
    return statements, made


def test_a_one_database_plan_reads_its_stream_and_nothing_of_the_others(
    catalog: Catalog, estate: Inventory, steps: StepFacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = START + timedelta(days=3, hours=5)
    few, before = _traced(
        catalog, lambda: plan_database(CatalogFacts(catalog, estate, (), steps), ["DB01"], at)
    )
    _crowd(catalog, 200)
    built: list[Any] = []
    real = cf.row_to_artifact

    def spy(row: Any) -> Any:
        built.append(real(row))
        return built[-1]

    monkeypatch.setattr(cf, "row_to_artifact", spy)
    provider = CatalogFacts(catalog, estate, (), steps)
    many, after = _traced(catalog, lambda: plan_database(provider, ["DB01"], at))
    assert len(many) == len(few) <= 4, many
    assert after.canonical_json() == before.canonical_json()  # created_from included
    assert built and {a.storage_group for a in built} == {"EX2016/DB01"}
    assert not any(a.host.startswith("OTHER") for a in built)


def test_the_questions_are_answered_by_indexes(catalog: Catalog) -> None:
    """EXPLAIN QUERY PLAN: each question searches an index; none scans the artifacts."""
    conn = catalog.conn
    questions = [
        (cf.STREAM_SQL, ("EX2016/DB01",), "artifacts_by_sg"),
        (
            cf.HOST_SQL + " ORDER BY a.run_id, a.id",
            ("system-state", "DC1"),
            "artifacts_by_kind_host",
        ),
        (cf.CIRCULAR_SQL, ("EX2016/DB01",), "sqlite_autoindex_stream_backups_1"),
    ]
    for sql, args, index in questions:
        detail = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert f"USING INDEX {index}" in detail or f"USING COVERING INDEX {index}" in detail, detail
        assert "SCAN a" not in detail and "SCAN artifacts" not in detail, detail


def test_the_digest_covers_what_was_served_whichever_provider_served_it(
    catalog: Catalog, estate: Inventory, steps: StepFacts
) -> None:
    eager, lazy = (
        catalog_facts(catalog, estate, (), steps),
        CatalogFacts(catalog, estate, (), steps),
    )
    assert eager.digest() == lazy.digest()  # the inventory alone
    before = lazy.digest()
    for provider in (eager, lazy):
        provider.stream_backups("EX2016/DB01")
        provider.host_artifacts("ex2016", "system-state")
        provider.live_logs("EX2016/DB01")
    assert eager.digest() == lazy.digest() != before
    eager.stream_backups("EX2016/DB02")
    assert eager.digest() != lazy.digest()


# ------------------------------------------------------------------ the CLI's path


def test_dr_plan_asks_the_open_catalog_and_closes_it_after(
    history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dr plan` plans from CatalogFacts with the catalog open around the plan; the plan it
    prints is the one the full read gives."""
    import json
    import os
    import sqlite3
    import subprocess
    import sys

    from dr.cli.plan import open_provider
    from dr.model.load import workspace_inventory
    from dr.workspace import open_existing

    env = {**os.environ, "DR_WORKSPACE": str(tmp_path / "ws")}
    init = [sys.executable, "-m", "dr", "init", "--inventory", str(ROOT / "examples/estate.yaml")]
    assert subprocess.run(init, env=env, capture_output=True, check=False).returncode == 0
    shutil.copy(history, tmp_path / "ws" / "catalog.sqlite")
    monkeypatch.setenv("DR_WORKSPACE", str(tmp_path / "ws"))
    with open_provider(None, None) as provider:
        assert isinstance(provider, CatalogFacts)
        assert provider.stream_backups("EX2016/DB01")
    with pytest.raises(sqlite3.ProgrammingError):
        provider.catalog.conn.execute("SELECT 1")
    at = "2024-05-09T10:30Z"
    out = subprocess.run(
        [sys.executable, "-m", "dr", "plan", "database", "--db", "DB01", "--at", at, "--json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    inv = workspace_inventory(open_existing(tmp_path / "ws"))
    with Catalog.open(tmp_path / "ws" / "catalog.sqlite") as catalog:
        eager = catalog_facts(catalog, inv, (), StepFacts.of_library(Library.load()))
        expected = plan_database(eager, ["DB01"], datetime(2024, 5, 9, 10, 30, tzinfo=UTC))
    assert json.loads(out.stdout) == json.loads(expected.canonical_json())
