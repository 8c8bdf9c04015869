from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from dr.store.repository import Repository, init_repository, open_repository

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Cheap Argon2id, a private key directory and a passphrase for every store test."""
    keys = tmp_path / "keys"
    monkeypatch.setenv("DR_KDF_PROFILE", "fast")
    monkeypatch.setenv("DR_KEY_DIR", str(keys))
    monkeypatch.setenv("DR_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("DR_STORE_CRASH_AT", raising=False)
    return keys


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    created, _ = init_repository(tmp_path / "repo", PASSPHRASE, pack_size=1 << 20)
    created.close()
    return open_repository(tmp_path / "repo", PASSPHRASE)


@pytest.fixture
def repo_v1(tmp_path: Path) -> Repository:
    """A repository as dr made them before format 2 (complete block maps)."""
    created, _ = init_repository(
        tmp_path / "repo1", PASSPHRASE, pack_size=1 << 20, format_version=1
    )
    created.close()
    return open_repository(tmp_path / "repo1", PASSPHRASE)


def page_file(path: Path, pages: int, seed: int, page: int = 8192) -> None:
    """A database-like file: pages of compressible text with a page header."""
    rnd = random.Random(seed)
    words = [bytes(rnd.choice(b"abcdefghij") for _ in range(rnd.randint(3, 8))) for _ in range(64)]
    with open(path, "wb") as fh:
        for p in range(pages):
            fh.write(make_page(p, 1, words, page))


def make_page(number: int, version: int, words: list[bytes], page: int = 8192) -> bytes:
    rnd = random.Random(number * 1000003 + version)
    body = b" ".join(rnd.choice(words) for _ in range(page // 4))
    return (b"PAGE%08d%08d" % (number, version) + body)[:page].ljust(page, b".")


def rewrite_pages(path: Path, picks: list[int], version: int, page: int = 8192) -> None:
    words = [b"alpha", b"beta", b"gamma", b"delta"]
    with open(path, "r+b") as fh:
        for p in picks:
            fh.seek(p * page)
            fh.write(make_page(p, version, words, page))


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def tree_digest(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out
