"""Keys: a wrong passphrase, a wrong key file or another repository's key are clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dr.errors import KeyMismatch, StoreError
from dr.store.repository import init_repository, open_repository

from .conftest import PASSPHRASE


def test_key_file_is_outside_the_repository(tmp_path: Path, store_env: Path) -> None:
    repo, key = init_repository(tmp_path / "r", PASSPHRASE)
    assert key.parent == store_env and not key.is_relative_to(repo.root)
    assert not any(p.suffix == ".key" for p in repo.root.rglob("*"))
    assert PASSPHRASE.encode() not in key.read_bytes()
    assert key.stat().st_mode & 0o077 == 0


def test_wrong_passphrase(tmp_path: Path) -> None:
    init_repository(tmp_path / "r", PASSPHRASE)
    with pytest.raises(KeyMismatch, match="wrong passphrase"):
        open_repository(tmp_path / "r", "not it")


def test_key_file_of_another_repository(tmp_path: Path) -> None:
    init_repository(tmp_path / "r1", PASSPHRASE)
    _, other = init_repository(tmp_path / "r2", PASSPHRASE)
    with pytest.raises(KeyMismatch, match="belongs to repository"):
        open_repository(tmp_path / "r1", PASSPHRASE, key_file=other)


def test_repository_made_with_another_key(tmp_path: Path) -> None:
    """Same repository id, different master key (a config copied over a new repository)."""
    r1, _k1 = init_repository(tmp_path / "r1", PASSPHRASE, key_file=tmp_path / "k1.key")
    r2, _ = init_repository(tmp_path / "r2", PASSPHRASE, key_file=tmp_path / "k2.key")
    config = (r1.root / "config").read_text().replace(r1.repo_id, r2.repo_id)
    (r1.root / "config").write_text(config)
    shutil.copy(tmp_path / "k2.key", tmp_path / "k2-copy.key")
    with pytest.raises(KeyMismatch, match="another key"):
        open_repository(r1.root, PASSPHRASE, key_file=tmp_path / "k2-copy.key")


def test_missing_key_file_says_where_it_looked(tmp_path: Path, store_env: Path) -> None:
    repo, key = init_repository(tmp_path / "r", PASSPHRASE)
    key.unlink()
    with pytest.raises(KeyMismatch, match="no key file") as err:
        open_repository(repo.root, PASSPHRASE)
    assert "machine that created" in (err.value.hint or "")


def test_not_a_repository_and_not_empty(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a dr repository"):
        open_repository(tmp_path, PASSPHRASE)
    (tmp_path / "x").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        init_repository(tmp_path, PASSPHRASE)


def test_repository_reveals_no_plaintext(tmp_path: Path) -> None:
    from dr.store.backup import BackupOptions, run_backup

    repo, _ = init_repository(tmp_path / "r", PASSPHRASE)
    src = tmp_path / "src"
    src.mkdir()
    secret = b"TOP-SECRET-MAILBOX-CONTENT " * 2000
    (src / "mail.txt").write_bytes(secret)
    run_backup(repo, BackupOptions("s", src))
    for path in repo.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"TOP-SECRET" not in data and b"mail.txt" not in data
