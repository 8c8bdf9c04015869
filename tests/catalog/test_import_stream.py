"""Streaming imports: chunking does not matter, one bad record spoils the whole file."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr.catalog import Catalog
from dr.catalog.importers import source
from dr.catalog.importers.resolve import Resolver
from dr.catalog.schema import SECONDARY_INDEXES
from dr.errors import CircularLoggingViolation, DrError, ManifestError
from dr.model.inventory import Inventory, load_inventory

ROOT = Path(__file__).resolve().parents[2]
ESTATE = load_inventory(ROOT / "examples" / "estate.yaml")
T0 = datetime(2024, 5, 6, tzinfo=UTC)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _exchange_run(kind: str, at: datetime, first: int, last: int) -> dict[str, Any]:
    logs = {"kind": "logs", "name": "E00 logs", "size": 4096, "storage_group": "DB01"}
    logs.update(log_prefix="E00", first_gen=first, last_gen=last)
    artifacts = [logs]
    if kind in ("full", "copy"):
        artifacts.insert(
            0,
            {
                "kind": "database",
                "name": "DB01.edb",
                "size": 10,
                "storage_group": "DB01",
                "database": "DB01",
            },
        )
    return {
        "set": "ex2016-exchange",
        "host": "EX2016",
        "type": kind,
        "start": _stamp(at),
        "end": _stamp(at + timedelta(minutes=5)),
        "artifacts": artifacts,
    }


def _state_run(kind: str, at: datetime) -> dict[str, Any]:
    item = {"kind": "system-state", "name": "SystemState.bkf", "size": 100, "stored_size": 40}
    return {
        "set": "dc1-system-state",
        "host": "DC1",
        "type": kind,
        "start": _stamp(at),
        "end": _stamp(at + timedelta(minutes=9)),
        "artifacts": [item],
    }


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A valid history: a full first, then log backups that continue the generations."""
    runs = [_exchange_run("full", T0, 1, 4)]
    gen, at = 5, T0
    for _ in range(draw(st.integers(min_value=0, max_value=14))):
        at += timedelta(hours=draw(st.integers(min_value=1, max_value=30)))
        if draw(st.booleans()):
            runs.append(_state_run(draw(st.sampled_from(["full", "incremental"])), at))
            continue
        kind = draw(st.sampled_from(["full", "incremental", "incremental", "copy"]))
        last = gen + draw(st.integers(min_value=0, max_value=5))
        runs.append(_exchange_run(kind, at, gen, last))
        if kind != "copy":  # a copy truncates nothing: the chain goes on from its base
            gen = last + 1
    return runs


def _write(path: Path, runs: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """The manifest, and the first and last line of each run in it."""
    lines, spans = ["["], []
    for index, run in enumerate(runs):
        text = json.dumps(run, indent=1).splitlines()
        if index < len(runs) - 1:
            text[-1] += ","
        spans.append((len(lines) + 1, len(lines) + len(text)))
        lines += text
    path.write_text("\n".join([*lines, "]"]) + "\n")
    return spans


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    tables = ("runs", "artifacts", "stream_backups")
    found = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    conn.close()
    return found


def _import_all(workdir: Path, name: str, chunks: list[list[dict[str, Any]]]) -> Path:
    catalog = workdir / f"{name}.sqlite"
    with Catalog.open(catalog) as cat:
        for number, chunk in enumerate(chunks):
            manifest = workdir / f"{name}-{number}.json"
            _write(manifest, chunk)
            cat.import_file(manifest, ESTATE)
    return catalog


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.lists(st.integers(1, 15), max_size=4), st.integers(7, 400))
def test_any_chunking_of_a_history_gives_the_same_catalog(
    runs: list[dict[str, Any]], cuts: list[int], chunk_size: int
) -> None:
    bounds = sorted({min(c, len(runs)) for c in cuts} | {0, len(runs)})
    chunks = [runs[a:b] for a, b in pairwise(bounds) if b > a]
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setattr(source, "CHUNK", chunk_size)  # run objects straddle read buffers
        workdir = Path(tmp)
        whole = _dump(_import_all(workdir, "whole", [runs]))
        pieces = _import_all(workdir, "pieces", chunks)
        assert _dump(pieces) == whole
        assert len(whole["runs"]) == len(runs)
        again = _import_all(workdir, "pieces", [runs])  # every run is already there
        assert _dump(again) == whole


_CORRUPTIONS: list[tuple[str, Any]] = [
    ("type", "weekly"),
    ("start", "2024-05-06T01:00:00"),
    ("host", ""),
    ("sizes", -1),
    ("colour", "blue"),
]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_one_bad_record_imports_nothing_and_names_its_line(
    runs: list[dict[str, Any]], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(runs) - 1))
    field, value = data.draw(st.sampled_from(_CORRUPTIONS))
    if field == "sizes":
        runs[index]["artifacts"][0]["size"] = value
    else:
        runs[index][field] = value
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "bad.json"
        spans = _write(manifest, runs)
        with Catalog.open(Path(tmp) / "c.sqlite") as cat:
            with pytest.raises(ManifestError) as caught:
                cat.import_file(manifest, ESTATE)
            assert cat.counts()["runs"] == 0
    first, last = spans[index]
    lines = {p.line for p in caught.value.problems}
    assert lines and all(first <= line <= last for line in lines), (lines, spans[index])


def test_a_rule_violation_late_in_the_file_rolls_back_earlier_batches(tmp_path: Path) -> None:
    runs = [_exchange_run("full", T0, 1, 4)]
    gen = 5
    for hour in range(1, 4500):  # more runs than one batch
        runs.append(_exchange_run("incremental", T0 + timedelta(hours=hour), gen, gen))
        gen += 1
    runs[-1]["artifacts"][0].update(first_gen=gen + 3, last_gen=gen + 3)  # a gap at the end
    manifest = tmp_path / "m.json"
    spans = _write(manifest, runs)
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        with pytest.raises(DrError, match=rf"m\.json:{spans[-1][0]}:"):
            cat.import_file(manifest, ESTATE)
        assert cat.counts()["runs"] == 0
        rows = cat.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        assert {name for name, _ in SECONDARY_INDEXES} <= {name for (name,) in rows}


def test_a_run_listed_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    runs = [_state_run("full", T0), _state_run("incremental", T0 + timedelta(days=1))]
    runs.append(dict(runs[0]))
    manifest = tmp_path / "m.json"
    spans = _write(manifest, runs)
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        with pytest.raises(ManifestError, match=rf"m\.json:{spans[2][0]}: run: the same run"):
            cat.import_file(manifest, ESTATE)
        assert cat.counts()["runs"] == 0


def test_csv_rows_of_a_run_split_by_another_run_are_refused(tmp_path: Path) -> None:
    head = "run_id,set,host,type,start,end,kind,name,size\n"
    row = "{id},dc1-system-state,DC1,full,{t},{t},system-state,{name},1\n"
    path = tmp_path / "m.csv"
    path.write_text(
        head
        + row.format(id="a", t="2024-05-06T01:00:00Z", name="SystemState.bkf")
        + row.format(id="b", t="2024-05-07T01:00:00Z", name="SystemState.bkf")
        + row.format(id="a", t="2024-05-06T01:00:00Z", name="Other.bkf")
    )
    with (
        Catalog.open(tmp_path / "c.sqlite") as cat,
        pytest.raises(ManifestError, match=r"m\.csv:4: run: the same run"),
    ):
        cat.import_file(path, ESTATE)


def _with_circular_logging(inventory: Inventory, sg_key: str) -> Inventory:
    servers = []
    for server in inventory.servers:
        groups = [
            sg.model_copy(update={"circular_logging": f"{server.name}/{sg.name}" == sg_key})
            for sg in server.storage_groups
        ]
        servers.append(server.model_copy(update={"storage_groups": groups}))
    return inventory.model_copy(update={"servers": servers})


def test_circular_logging_defaults_to_the_inventory_setting(tmp_path: Path) -> None:
    circular = _with_circular_logging(ESTATE, "EX2016/DB01")
    assert Resolver(circular).circular_logging("EX2016/DB01")
    assert not Resolver(ESTATE).circular_logging("EX2016/DB01")
    runs = [
        _exchange_run("full", T0, 1, 4),
        _exchange_run("incremental", T0 + timedelta(hours=1), 5, 6),
    ]
    manifest = tmp_path / "m.json"
    spans = _write(manifest, runs)
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        with pytest.raises(CircularLoggingViolation, match=rf"m\.json:{spans[1][0]}:"):
            cat.import_file(manifest, circular)
        for run in runs:  # the records say otherwise: they win
            for artifact in run["artifacts"]:
                artifact["circular_logging"] = False
        _write(manifest, runs)
        assert cat.import_file(manifest, circular).runs_added == 2


WBADMIN_BAD = """wbadmin 1.0 - Backup command-line tool

Backup time: 5/6/2024 1:00 AM
Backup target: Fixed Disk labeled D:
Version identifier: 05/05/2024-23:00
Can recover: Application(s), System State

Backup time: 5/7/2024 1:00 AM
Backup target: Fixed Disk labeled D:
Version identifier: 5/6/2024 11 PM
Can recover: Application(s), System State
"""


def test_wbadmin_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "versions.txt"
    path.write_text(WBADMIN_BAD)
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        with pytest.raises(ManifestError) as caught:
            cat.import_file(path, ESTATE, host="DC2016")
        assert cat.counts()["runs"] == 0
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), 10, "Version identifier")
