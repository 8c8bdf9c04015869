"""`dr store fetch` / `dr store check-chain`: what a plan's first two steps run."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from dr.catalog.model import Artifact
from dr.cli import main
from dr.store.fetch import Source, check_chain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_KDF_PROFILE", "fast")
    monkeypatch.setenv("DR_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("DR_PASSPHRASE", "fetch passphrase")
    monkeypatch.setenv("DR_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("DR_REPOSITORY", str(tmp_path / "repo"))


def dr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, Path]:
    """A workspace with the example history, a repository, and one run dr stored itself."""
    assert dr(capsys, "init", "--inventory", str(ROOT / "examples" / "estate.yaml"))[0] == 0
    assert dr(capsys, "catalog", "import", str(ROOT / "examples" / "history.json"))[0] == 0
    assert dr(capsys, "store", "init", str(tmp_path / "repo"))[0] == 0
    src = tmp_path / "src"
    (src / "db").mkdir(parents=True)
    (src / "db" / "priv1.edb").write_bytes(os.urandom(300_000))
    (src / "notes.txt").write_text("kept\n")
    assert dr(capsys, "set", "add", "demo-files", "--host", "EX2016", "--type", "files")[0] == 0
    code, out, err = dr(capsys, "backup", "run", "demo-files", "--from", str(src), "--json")
    assert code == 0, err
    return f"run-{json.loads(out)['catalog_run']}", src


def test_fetch_restores_the_run_and_check_proves_it(
    stored: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, src = stored
    dest = tmp_path / "staging"
    code, _, err = dr(capsys, "store", "fetch", run, "--to", str(dest))
    assert code == 0, err
    assert digests(dest / run) == digests(src)
    assert dr(capsys, "store", "fetch", run, "--to", str(dest), "--check")[0] == 0
    (dest / run / "notes.txt").write_text("changed\n")
    code, _, err = dr(capsys, "store", "fetch", run, "--to", str(dest), "--check")
    assert code == 6 and "notes.txt does not match its SHA-256" in err


def test_a_second_fetch_of_the_same_run_keeps_identical_files_and_refuses_changed_ones(
    stored: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second restore plan stages the same backup where the first left it (found on the
    lab: a drill after a restore stopped at its fetch step, "already exists")."""
    run, src = stored
    dest = tmp_path / "staging"
    assert dr(capsys, "store", "fetch", run, "--to", str(dest))[0] == 0
    code, _, err = dr(capsys, "store", "fetch", run, "--to", str(dest))
    assert code == 0, err
    assert digests(dest / run) == digests(src)
    (dest / run / "notes.txt").write_text("changed by someone\n")
    code, _, err = dr(capsys, "store", "fetch", run, "--to", str(dest))
    assert code == 2 and "notes.txt already exists; refusing to overwrite it" in err
    assert (dest / run / "notes.txt").read_text() == "changed by someone\n"


def test_an_interrupted_fetch_is_seen_by_the_check_and_finished_by_the_next(
    stored: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dr.store.restore import MARKER_PREFIX

    run, src = stored
    dest = tmp_path / "staging"
    code, out, _ = dr(capsys, "store", "fetch", run, "--to", str(dest))
    assert code == 0
    version = out.split(" version ", 1)[1].split()[0]
    # what a fetch killed half-way leaves: its marker and a partial file
    marker = dest / run / f"{MARKER_PREFIX}{version}"
    marker.write_text("interrupted\n")
    edb = dest / run / "db" / "priv1.edb"
    edb.write_bytes(edb.read_bytes()[:1000])
    code, _, err = dr(capsys, "store", "fetch", run, "--to", str(dest), "--check")
    assert code == 6 and "did not finish" in err
    code, out, err = dr(capsys, "store", "fetch", run, "--to", str(dest))
    assert code == 0, err
    assert "finished an interrupted fetch" in out
    assert not marker.exists()
    assert digests(dest / run) == digests(src)
    assert dr(capsys, "store", "fetch", run, "--to", str(dest), "--check")[0] == 0


def test_a_run_taken_by_another_tool_is_named_with_its_location(
    stored: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = dr(capsys, "store", "fetch", "run-1", "--to", str(tmp_path / "s"))
    assert code == 6
    assert "E6400" in err and "not taken by dr" in err and "run-1 (at " in err
    assert "dr run ack" in err
    assert "Traceback" not in err


def test_windows_staging_folders_go_through_the_workspace_map(
    stored: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, src = stored
    code, _, err = dr(capsys, "store", "fetch", run, "--to", "T:\\DRTemp\\DB01\\staging")
    assert code == 2 and "staging:" in err
    config = tmp_path / "ws" / "config.yaml"
    data = yaml.safe_load(config.read_text())
    data["staging"] = {"T:\\DRTemp": str(tmp_path / "mnt")}
    config.write_text(yaml.safe_dump(data))
    code, _, err = dr(capsys, "store", "fetch", run, "--to", "T:\\DRTemp\\DB01\\staging")
    assert code == 0, err
    assert digests(tmp_path / "mnt" / "DB01" / "staging" / run) == digests(src)


def test_check_chain_passes_the_planned_chain_and_names_a_hole(
    stored: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = dr(capsys, "plan", "database", "--db", "Sales Store", "--at",
                      "2024-05-14T11:02:36Z", "--json")  # fmt: skip
    assert code == 0
    plan = json.loads(out)
    step = next(s for s in plan["steps"] if s["kind"] == "check-backup-chain")
    chain, first, last = (
        step["params"]["chain"],
        step["params"]["first_gen"],
        step["params"]["last_gen"],
    )
    code, _, err = dr(capsys, "store", "check-chain", *chain, "--logs", f"{first}-{last}")
    assert code == 0, err
    # drop an incremental from the middle of the chain: its generations are now a hole
    holed = [*chain[:2], *chain[3:]]
    code, _, err = dr(capsys, "store", "check-chain", *holed, "--logs", f"{first}-{last}")
    assert code == 6 and "missing" in err
    code, _, err = dr(capsys, "store", "check-chain", *chain, "--logs", "bad")
    assert code == 2 and "FIRST-LAST" in err


def test_unknown_run_is_a_clear_error(
    stored: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = dr(capsys, "store", "fetch", "run-999999", "--to", str(tmp_path / "s"))
    assert code == 2 and "run-999999 is not in the catalog" in err
    code, _, err = dr(capsys, "store", "fetch", "yesterday", "--to", str(tmp_path / "s"))
    assert code == 2 and "not a catalog run" in err


def _artifact(run: int, kind: str, name: str, first: int, last: int) -> Artifact:
    return Artifact(
        id=run, run_id=run, kind=kind, host="EX2003", storage_group="EX2003/First Storage Group",
        database=None, name=name, size=1, stored_size=1, sha256=None, location=None,
        state=None, log_required_first=None, log_required_last=None, db_signature=None,
        log_prefix="E00", first_gen=first, last_gen=last, log_signature="sig", mailbox=None,
        item_count=None, expired=False,
    )  # fmt: skip


def test_check_chain_counts_the_logs_an_ntbackup_media_file_holds() -> None:
    """A 2003 full is one .bkf per storage group, recorded as its database artifact with
    the logs it holds: the chain starts there. Counting only log artifacts refused every
    2003 chain from dr's own backups ("no backup holds generation 5")."""
    full = Source(11, (_artifact(11, "database", "First-Storage-Group/backup.bkf", 5, 6),),
                  None, None)  # fmt: skip
    incremental = Source(13, (_artifact(13, "logs", "First-Storage-Group/backup.bkf", 6, 7),),
                         None, None)  # fmt: skip
    assert check_chain(None, None, [full, incremental], (5, 7)) == []  # type: ignore[arg-type]
    problems = check_chain(None, None, [incremental], (5, 7))  # type: ignore[arg-type]
    assert problems == ["no backup holds generation 5, where replay starts"]
    edb = replace(full.artifacts[0], name="DB01/DB01.edb", database="EX2016/DB01/DB01")
    assert not edb.holds_logs, "a database file's own header range is not a log backup"


def test_fetch_takes_latest_and_a_version_prefix_as_store_restore_does(
    stored: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, src = stored
    code, out, err = dr(capsys, "store", "ls", "--json")
    assert code == 0, err
    (version,) = [v["id"] for v in json.loads(out)]
    code, out, err = dr(capsys, "store", "fetch", "latest", "--to", str(tmp_path / "a"), "--json")
    assert code == 0, err
    assert digests(tmp_path / "a" / run) == digests(src)  # staged under the run that holds it
    for prefix in (version[:8], version[:10]):  # 20261122 (the date), 20261122T1
        dest = tmp_path / prefix
        code, _, err = dr(capsys, "store", "fetch", prefix, "--to", str(dest))
        assert code == 0, err
        assert digests(dest / run) == digests(src)
    code, _, err = dr(capsys, "store", "fetch", "zzzzzz", "--to", str(tmp_path / "c"))
    assert code == 2 and "'zzzzzz' is not a catalog run" in err and "Traceback" not in err
