"""The repository and the catalog under kills and corruption; ids that try to be paths.

Every test drives the real `dr` entry point (a subprocess where a kill -9 is involved) on a
real workspace, catalog and repository.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dr.catalog import Catalog
from dr.model.sets import BackupSet
from dr.store.backup import BackupOptions, run_backup
from dr.store.catalog_link import record
from dr.store.format import CONFIG_NAME, MANIFEST_DIR
from dr.store.repository import open_repository
from dr.store.restore import restore_version
from dr.workspace import init as init_workspace

PASS = "hardening passphrase"
T0 = datetime(2026, 3, 2, tzinfo=UTC)
VERSIONS = 4


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DR_")}
    env.update(
        DR_KDF_PROFILE="fast",
        DR_KEY_DIR=str(tmp / "keys"),
        DR_PASSPHRASE=PASS,
        DR_WORKSPACE=str(tmp / "ws"),
        COLUMNS="250",
        **extra,
    )
    return env


def dr(tmp: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dr", *args],
        env=_env(tmp, **extra),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def _store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _env(tmp_path).items():
        if key.startswith("DR_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("DR_STORE_CRASH_AT", raising=False)
    monkeypatch.delenv("DR_REPOSITORY", raising=False)


def estate(tmp: Path, versions: int = VERSIONS, recorded: bool = True) -> list[str]:
    """A workspace whose catalog records ``versions`` full backups in its repository."""
    os.environ.update(DR_KEY_DIR=str(tmp / "keys"), DR_WORKSPACE=str(tmp / "ws"))
    ws = init_workspace(tmp / "ws")
    assert dr(tmp, "store", "init", str(tmp / "repo")).returncode == 0
    repo = open_repository(tmp / "repo", PASS)
    src = tmp / "src"
    src.mkdir(exist_ok=True)
    ids = []
    with Catalog.open(ws.catalog_path) as catalog:
        catalog.register_set(BackupSet(name="files", host="H", type="files"))
        for day in range(versions):
            (src / "a.txt").write_text(f"day {day}\n" * 1000)
            (src / f"b{day}.bin").write_bytes(os.urandom(50_000))
            opts = BackupOptions("files", src, host="H", backup_type="full", at=T0 + timedelta(day))
            manifest = run_backup(repo, opts)
            if recorded:
                record(catalog, manifest["catalog"])
            ids.append(manifest["id"])
    repo.close()
    return ids


def catalog_lies(tmp: Path) -> list[str]:
    """Catalog runs of dr that are not expired but whose version is gone."""
    repo = open_repository(tmp / "repo", PASS)
    with Catalog.open(tmp / "ws" / "catalog.sqlite") as catalog:
        from dr.store.reconcile import compare

        drift = compare(catalog, repo)
    repo.close()
    return sorted(drift.missing_versions.values())


# -- item 3: a killed prune ------------------------------------------------------------------


def test_a_prune_killed_anywhere_leaves_the_catalog_truthful(tmp_path: Path) -> None:
    kills = 0
    lost = corrupt = 0
    for crash_at in range(1, 60):
        tmp = tmp_path / f"k{crash_at}"
        tmp.mkdir()
        ids = estate(tmp)
        prune = ("store", "prune", "--keep-last", "1", "--yes")
        out = dr(tmp, *prune, DR_STORE_CRASH_AT=str(crash_at))
        if out.returncode == 0:
            break
        assert out.returncode == -signal.SIGKILL, out.stderr
        kills += 1
        assert catalog_lies(tmp) == [], f"kill at point {crash_at}"
        verify = dr(tmp, "store", "verify", "--json")
        corrupt += verify.returncode != 0
        again = dr(tmp, "store", "prune", "--keep-last", "1", "--yes", "--json")
        assert again.returncode == 0, again.stderr
        repo = open_repository(tmp / "repo", PASS)
        lost += ids[-1] not in repo.version_ids()
        restore_version(repo, ids[-1], tmp / "out")
        repo.close()
        assert (tmp / "out" / "a.txt").read_text() == f"day {VERSIONS - 1}\n" * 1000
        assert catalog_lies(tmp) == []
    print(f"\nprune: kills {kills} / lost {lost} / corrupt {corrupt}")
    assert kills >= 3 and lost == 0 and corrupt == 0


def test_a_rerun_prune_marks_runs_whose_version_an_earlier_prune_deleted(tmp_path: Path) -> None:
    ids = estate(tmp_path)
    (tmp_path / "repo" / MANIFEST_DIR / ids[0]).unlink()  # what a prune killed long ago left
    out = dr(tmp_path, "store", "prune", "--keep-last", "10", "--yes")
    assert out.returncode == 0, out.stderr
    assert "marked 1 run(s) expired" in out.stdout
    assert catalog_lies(tmp_path) == []


def test_a_version_left_out_of_the_catalog_is_recorded_by_verify(tmp_path: Path) -> None:
    ids = estate(tmp_path, versions=2, recorded=False)
    out = dr(tmp_path, "store", "verify", "--json")
    assert out.returncode == 0, out.stderr
    assert "recorded 2 version(s)" in json.loads(out.stdout)["warnings"][0]
    with Catalog.open(tmp_path / "ws" / "catalog.sqlite") as catalog:
        assert len(catalog.runs("files")) == len(ids)


def test_a_version_left_out_of_the_catalog_is_recorded_by_the_next_backup(tmp_path: Path) -> None:
    ids = estate(tmp_path, versions=2, recorded=False)  # as a backup killed after its commit
    with Catalog.open(tmp_path / "ws" / "catalog.sqlite") as catalog:
        catalog.register_set(BackupSet(name="more", host="H", type="files"))
    (tmp_path / "src" / "c.txt").write_text("the next day\n")
    out = dr(tmp_path, "backup", "run", "more", "--from", str(tmp_path / "src"), "--host", "H")
    assert out.returncode == 0, out.stderr
    assert "2 version(s) recorded" in out.stderr
    with Catalog.open(tmp_path / "ws" / "catalog.sqlite") as catalog:
        assert len(catalog.runs("files")) == len(ids) and len(catalog.runs("more")) == 1


# -- item 6: corruption the verify must name -------------------------------------------------


def _delete_manifest(tmp: Path, ids: list[str]) -> str:
    (tmp / "repo" / MANIFEST_DIR / ids[1]).unlink()
    return "its version is not in the repository"


def _edit_config(field: str, value: object) -> Callable[[Path, list[str]], str]:
    def corrupt(tmp: Path, ids: list[str]) -> str:
        path = tmp / "repo" / CONFIG_NAME
        config = json.loads(path.read_text())
        config[field] = value
        path.write_text(json.dumps(config))
        return "config"

    return corrupt


def _flip_manifest_byte(tmp: Path, ids: list[str]) -> str:
    path = tmp / "repo" / MANIFEST_DIR / ids[2]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    return ids[2]


def _flip_pack_byte(tmp: Path, ids: list[str]) -> str:
    packs = sorted((tmp / "repo" / "data").rglob("*"))
    pack = max((p for p in packs if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(pack.read_bytes())
    data[100] ^= 0x01
    pack.write_bytes(bytes(data))
    return "DAMAGED"


def _delete_index(tmp: Path, ids: list[str]) -> str:
    for path in (tmp / "repo" / "index").iterdir():
        path.unlink()
    return "missing from the index"


CORRUPTIONS: dict[str, Callable[[Path, list[str]], str]] = {
    "manifest deleted": _delete_manifest,
    "chunker edited": _edit_config("chunker", {"name": "fastcdc2020", "min": 1, "avg": 2}),
    "pack size edited": _edit_config("pack_size", 1),
    "config id removed": _edit_config("id", None),
    "config id a path": _edit_config("id", "../escaped-dir/planted"),
    "config_mac removed and chunker edited": lambda tmp, ids: (
        _edit_config("config_mac", None)(tmp, ids),
        _edit_config("chunker", {"name": "x"})(tmp, ids),
    )[1],
    "manifest byte flipped": _flip_manifest_byte,
    "pack byte flipped": _flip_pack_byte,
    "index deleted": _delete_index,
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_verify_detects_and_names_each_corruption(tmp_path: Path, name: str) -> None:
    ids = estate(tmp_path, versions=3)
    named = CORRUPTIONS[name](tmp_path, ids)
    out = dr(tmp_path, "store", "verify", "--read-data")
    text = out.stdout + out.stderr
    assert out.returncode != 0, text  # detected
    assert named in text, text  # named
    assert "Traceback" not in text


# -- item 9 and 12: ids that try to be paths, the key directory's mode ------------------------


def test_a_repository_id_cannot_write_outside_the_key_directory(tmp_path: Path) -> None:
    estate(tmp_path, versions=1)
    key = next((tmp_path / "keys").iterdir())
    evil = "../escaped-dir/planted"
    doc = json.loads(key.read_text())
    doc["repository"] = evil
    (tmp_path / "exported.key").write_text(json.dumps(doc))
    config = tmp_path / "repo" / CONFIG_NAME
    data = json.loads(config.read_text())
    data["id"] = evil
    config.write_text(json.dumps(data))
    out = dr(tmp_path, "store", "key", "import", str(tmp_path / "exported.key"))
    assert out.returncode != 0
    assert "is not a repository id" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "escaped-dir").exists()


def test_a_config_without_id_is_one_clear_line(tmp_path: Path) -> None:
    estate(tmp_path, versions=1)
    config = tmp_path / "repo" / CONFIG_NAME
    data = json.loads(config.read_text())
    del data["id"]
    config.write_text(json.dumps(data))
    out = dr(tmp_path, "store", "ls")
    assert out.returncode != 0 and "no field 'id'" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_key_directory_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert dr(tmp_path, "store", "init", str(tmp_path / "repo")).returncode == 0
    finally:
        os.umask(old)
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700


def test_restore_onto_an_existing_file_is_one_clear_line(tmp_path: Path) -> None:
    ids = estate(tmp_path, versions=1)
    target = tmp_path / "existing"
    target.write_text("keep me")
    out = dr(tmp_path, "store", "restore", ids[0], "--to", str(target))
    assert out.returncode == 2 and "is not a directory" in out.stderr
    assert "Traceback" not in out.stderr and target.read_text() == "keep me"


def test_a_backup_killed_after_its_commit_is_recorded_by_the_next_verify(tmp_path: Path) -> None:
    kills = lost = corrupt = 0
    for crash_at in range(1, 40):
        tmp = tmp_path / f"b{crash_at}"
        tmp.mkdir()
        estate(tmp, versions=0)
        with Catalog.open(tmp / "ws" / "catalog.sqlite") as catalog:
            catalog.register_set(BackupSet(name="s1", host="FS1", type="files"))
        (tmp / "src" / "new.bin").write_bytes(os.urandom(80_000))
        out = dr(tmp, "backup", "run", "s1", "--from", str(tmp / "src"),
                 DR_STORE_CRASH_AT=str(crash_at))  # fmt: skip
        if out.returncode == 0:
            break
        assert out.returncode == -signal.SIGKILL, out.stderr
        kills += 1
        verify = dr(tmp, "store", "verify", "--json")
        corrupt += verify.returncode != 0
        repo = open_repository(tmp / "repo", PASS)
        with Catalog.open(tmp / "ws" / "catalog.sqlite") as catalog:
            from dr.store.reconcile import compare

            drift = compare(catalog, repo)
        repo.close()
        assert drift.unrecorded == {} and drift.missing_versions == {}, crash_at
        again = dr(tmp, "backup", "run", "s1", "--from", str(tmp / "src"), "--json")
        assert again.returncode == 0, again.stderr
        repo = open_repository(tmp / "repo", PASS)
        version = json.loads(again.stdout)["version"]
        restore_version(repo, version, tmp / "out")
        repo.close()
        lost += (tmp / "out" / "new.bin").read_bytes() != (tmp / "src" / "new.bin").read_bytes()
    print(f"\nbackup: kills {kills} / lost {lost} / corrupt {corrupt}")
    assert kills >= 3 and lost == 0 and corrupt == 0


def test_a_prune_that_chooses_itself_asks_first_and_without_a_terminal_needs_yes(
    tmp_path: Path,
) -> None:
    """`--keep-last` replaces retention: prune decides what goes, so it says how many and,
    without a terminal, removes nothing unless --yes."""
    ids = estate(tmp_path)
    refused = dr(tmp_path, "store", "prune", "--keep-last", "1")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"would remove {len(ids) - 1} versions" in refused.stderr and "--yes" in refused.stderr
    repo = open_repository(tmp_path / "repo", PASS)
    assert sorted(repo.version_ids()) == sorted(ids), "nothing removed"
    repo.close()
    done = dr(tmp_path, "store", "prune", "--keep-last", "1", "--yes")
    assert done.returncode == 0, done.stderr
    repo = open_repository(tmp_path / "repo", PASS)
    assert repo.version_ids() == [ids[-1]]
    repo.close()
