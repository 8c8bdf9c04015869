"""Property: any sequence of versions with random block changes restores byte-identical."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr.store.backup import BackupOptions, run_backup
from dr.store.repository import init_repository
from dr.store.restore import restore_version

PAGE = 4096
PAGES = 300  # 1.2 MiB: above the block-mode threshold

step = st.tuples(
    st.sampled_from(["auto", "incremental", "differential", "full"]),
    st.lists(st.integers(0, PAGES + 20), max_size=40),  # pages to rewrite (some past the end)
    st.sampled_from([0, 0, 0, -3 * PAGE, 5 * PAGE, 100, -50]),  # grow / shrink, sometimes
    st.integers(0, 2**16),
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=6), max_deltas=st.integers(1, 4))
def test_any_version_restores_byte_identical(steps: list, max_deltas: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo, _ = init_repository(root / "repo", "pw", key_file=root / "k.key", pack_size=256 << 10)
        data = bytearray()
        for p in range(PAGES):
            data += _page(p, 0)
        src = root / "src"
        src.mkdir()
        expected: dict[str, bytes] = {}
        for kind, picks, resize, salt in steps:
            data = _mutate(data, picks, resize, salt)
            (src / "db.edb").write_bytes(bytes(data))
            opts = BackupOptions("s", src, backup_type=kind, max_deltas=max_deltas, block_size=PAGE)
            expected[run_backup(repo, opts)["id"]] = bytes(data)
        for version, content in expected.items():
            out = root / "out" / version
            restore_version(repo, version, out)
            assert (out / "db.edb").read_bytes() == content


def _page(number: int, salt: int) -> bytes:
    seed = (b"%08d:%08d;" % (number, salt)) * (PAGE // 18 + 1)
    return seed[:PAGE]


def _mutate(data: bytearray, picks: list[int], resize: int, salt: int) -> bytearray:
    pages = len(data) // PAGE
    for p in picks:
        if p < pages:
            data[p * PAGE : (p + 1) * PAGE] = _page(p, salt + 1)
    if resize > 0:
        data += b"".join(_page(pages + i, salt) for i in range(resize // PAGE + 1))[:resize]
    elif resize < 0:
        del data[resize:]
    return data
