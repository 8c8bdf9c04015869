"""`dr store` and `dr backup run` end to end through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dr.cli import main

PASS = "cli passphrase"


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_KDF_PROFILE", "fast")
    monkeypatch.setenv("DR_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("DR_PASSPHRASE", PASS)
    monkeypatch.setenv("DR_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("DR_REPOSITORY", raising=False)


def dr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def source(tmp: Path) -> Path:
    src = tmp / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "SystemState.bkf").write_bytes(os.urandom(1 << 20))
    (src / "notes.txt").write_text("hello\n")
    return src


def test_init_backup_ls_restore_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    code, out, _ = dr(capsys, "store", "init", str(repo))
    assert code == 0 and "Losing the key file or the passphrase is losing the data" in out
    src = source(tmp_path)
    code, out, _ = dr(
        capsys, "backup", "run", "files", "--from", str(src), "--repo", str(repo), "--json"
    )
    version = json.loads(out)["version"]
    code, out, _ = dr(capsys, "store", "ls", "--repo", str(repo), "--json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["id"] == version and rows[0]["mark"] == ""
    assert rows[0]["size"] == (1 << 20) + 6 and rows[0]["stored"] > 0
    code, _, _ = dr(
        capsys, "store", "restore", version, "--to", str(tmp_path / "out"), "--repo", str(repo)
    )
    assert code == 0
    assert (tmp_path / "out/sub/SystemState.bkf").read_bytes() == (
        src / "sub/SystemState.bkf"
    ).read_bytes()
    code, out, _ = dr(capsys, "store", "verify", "--read-data", "--repo", str(repo), "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = dr(capsys, "store", "stats", "--repo", str(repo), "--json")
    assert json.loads(out)["versions"] == 1


def test_wrong_passphrase_is_one_line_exit_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dr(capsys, "store", "init", str(tmp_path / "repo"))
    monkeypatch.setenv("DR_PASSPHRASE", "wrong")
    code, _, err = dr(capsys, "store", "ls", "--repo", str(tmp_path / "repo"))
    assert code == 6 and "E6200" in err and "wrong passphrase" in err
    assert "Traceback" not in err


def test_verify_names_damaged_version_exit_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    dr(capsys, "store", "init", str(repo))
    src = source(tmp_path)
    _, out, _ = dr(
        capsys, "backup", "run", "files", "--from", str(src), "--repo", str(repo), "--json"
    )
    version = json.loads(out)["version"]
    pack = next(p for p in (repo / "data").rglob("*") if p.is_file())
    pack.write_bytes(pack.read_bytes()[: pack.stat().st_size // 2])
    code, out, err = dr(capsys, "store", "verify", "--repo", str(repo))
    assert code == 6 and version in out and version in err


def test_key_export_and_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    dr(capsys, "store", "init", str(repo))
    code, _, err = dr(
        capsys, "store", "key", "export", "--to", str(tmp_path / "copy.key"), "--repo", str(repo)
    )
    assert code == 0 and "warning" in err
    monkeypatch.setenv("DR_KEY_DIR", str(tmp_path / "other-machine"))
    code, _, err = dr(capsys, "store", "ls", "--repo", str(repo))
    assert code == 6 and "no key file" in err
    code, _, _ = dr(
        capsys, "store", "key", "import", str(tmp_path / "copy.key"), "--repo", str(repo)
    )
    assert code == 0
    assert dr(capsys, "store", "ls", "--repo", str(repo))[0] == 0


def _register(tmp: Path, capsys: pytest.CaptureFixture[str], set_type: str, host: str) -> None:
    from dr.catalog import Catalog
    from dr.model.sets import BackupSet
    from dr.workspace import init

    ws = init(tmp / "ws")
    with Catalog.open(ws.catalog_path) as catalog:
        catalog.register_set(BackupSet(name="s1", host=host, type=set_type))  # type: ignore[arg-type]


def test_backup_records_run_and_catalog_rebuilds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dr.catalog import Catalog

    _register(tmp_path, capsys, "files", "FS1")
    repo = tmp_path / "repo"
    assert dr(capsys, "store", "init", str(repo))[0] == 0  # recorded in the workspace
    src = source(tmp_path)
    code, out, err = dr(capsys, "backup", "run", "s1", "--from", str(src), "--json")
    assert code == 0, err
    assert json.loads(out)["catalog_run"] is not None
    with Catalog.open(tmp_path / "ws" / "catalog.sqlite") as catalog:
        runs = catalog.runs("s1")
        arts = catalog.artifacts(run_id=runs[0].id)
    assert runs[0].host == "FS1" and {a.name for a in arts} == {"notes.txt", "sub/SystemState.bkf"}
    monkeypatch.setenv("DR_WORKSPACE", str(tmp_path / "new-ws"))
    code, out, err = dr(capsys, "store", "rebuild-catalog", "--repo", str(repo), "--json")
    assert code == 0, err
    assert json.loads(out)["runs_added"] == 1
    with Catalog.open(tmp_path / "new-ws" / "catalog.sqlite") as catalog:
        rebuilt = catalog.runs("s1")
        assert [(r.backup_type, r.host) for r in rebuilt] == [("full", "FS1")]
        assert {a.sha256 for a in catalog.artifacts()} == {a.sha256 for a in arts}


def test_refused_incremental_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(tmp_path, capsys, "exchange", "EX2003")
    repo = tmp_path / "repo"
    dr(capsys, "store", "init", str(repo))
    src = tmp_path / "logs"
    src.mkdir()
    (src / "E0000001.log").write_bytes(b"log" * 100)
    code, _, err = dr(
        capsys,
        "backup",
        "run",
        "s1",
        "--from",
        str(src),
        "--type",
        "incremental",
        "--storage-group",
        "EX2003/First Storage Group",
    )
    assert code == 4, err
    assert not any((repo / "data").rglob("*")) and not any((repo / "manifests").iterdir())


def test_python_dash_m_help_is_fast_path() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dr", "store", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "rebuild-catalog" in proc.stdout


def test_set_from_the_inventory_is_used_and_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dr.catalog import Catalog

    estate = Path(__file__).resolve().parents[2] / "examples" / "estate.yaml"
    assert dr(capsys, "init", "--inventory", str(estate))[0] == 0
    repo = tmp_path / "repo"
    assert dr(capsys, "store", "init", str(repo))[0] == 0
    code, _, err = dr(
        capsys, "backup", "run", "dc1-system-state", "--from", str(source(tmp_path)), "--json"
    )
    assert code == 0, err
    with Catalog.open(tmp_path / "ws" / "catalog.sqlite") as catalog:
        runs = catalog.runs("dc1-system-state")
        kinds = {a.name: a.kind for a in catalog.artifacts(run_id=runs[0].id)}
    assert runs[0].host == "DC1"
    assert kinds["sub/SystemState.bkf"] == "system-state"


def test_retention_apply_then_prune_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from dr.catalog import Catalog
    from dr.model.sets import BackupSet
    from dr.store.backup import BackupOptions, run_backup
    from dr.store.catalog_link import record
    from dr.store.repository import open_repository
    from dr.workspace import init as init_workspace

    ws = init_workspace(tmp_path / "ws")
    policy = {"keep_days": 2, "keep_weekly_days": 0, "keep_monthly_days": 0, "min_fulls": 1}
    definition = {"name": "files", "host": "H", "type": "files", "retention": policy}
    assert dr(capsys, "store", "init", str(tmp_path / "repo"))[0] == 0  # recorded in ws
    repo = open_repository(tmp_path / "repo", PASS)
    src, t0, ids = tmp_path / "src", datetime(2026, 3, 2, tzinfo=UTC), []
    src.mkdir()
    with Catalog.open(ws.catalog_path) as catalog:
        catalog.register_set(BackupSet.model_validate(definition))
        for day in range(5):
            (src / "a.txt").write_text(f"day {day}\n")
            opts = BackupOptions("files", src, host="H", backup_type="full", at=t0 + timedelta(day))
            m = run_backup(repo, opts)
            record(catalog, m["catalog"])
            ids.append(m["id"])
    repo.close()
    at = (t0 + timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert dr(capsys, "retention", "apply", "--at", at, "--yes")[0] == 0

    code, out, _ = dr(capsys, "store", "prune", "--dry-run", "--json")
    dry = json.loads(out)
    assert code == 0 and dry["dry_run"] and dry["expired"] == []
    gone = {d["id"] for d in dry["decisions"] if not d["keep"]}
    assert gone == set(ids[:4])  # fulls older than the 2-day window
    assert all(
        "catalog run is expired" in d["reasons"][0] for d in dry["decisions"] if not d["keep"]
    )

    code, out, _ = dr(capsys, "store", "prune", "--json")
    assert code == 0 and set(json.loads(out)["expired"]) == gone
    code, out, _ = dr(capsys, "store", "ls", "--json")
    assert [row["id"] for row in json.loads(out)] == ids[4:]
    code, _, _ = dr(capsys, "store", "restore", ids[4], "--to", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "a.txt").read_text() == "day 4\n"
    code, _, err = dr(capsys, "store", "restore", ids[4], "--to", str(tmp_path / "out"))
    assert code != 0 and "a.txt already exists" in err


def test_verify_says_what_it_found_on_an_empty_and_a_whole_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    dr(capsys, "store", "init", str(repo))
    code, out, _ = dr(capsys, "store", "verify", "--repo", str(repo))
    assert code == 0 and "holds no version yet" in out
    dr(capsys, "backup", "run", "files", "--from", str(source(tmp_path)), "--repo", str(repo))
    code, out, _ = dr(capsys, "store", "verify", "--read-data", "--repo", str(repo))
    assert code == 0 and "all 1 version(s) restorable and every pack read" in out
