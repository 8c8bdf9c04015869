"""Chunking in bounded windows cuts exactly where whole-file chunking cuts, in bounded memory."""

from __future__ import annotations

import io
import random
import tracemalloc
from pathlib import Path

import pyfastcdc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr.store.chunking import (
    CDC_AVG,
    CDC_MAX,
    CDC_MIN,
    MIB,
    _read_head,
    cdc_chunks,
    single_chunk,
)

SEED = 1234


def whole_file_chunks(data: bytes) -> list[bytes]:
    chunker = pyfastcdc.FastCDC(
        CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX, normalized_chunking=2, seed=SEED
    )
    return [bytes(c.data) for c in chunker.cut_buf(data)]


@pytest.fixture(scope="module")
def data() -> bytes:
    rnd = random.Random(7)
    # random bytes with a long run of zeros: forced max-size cuts as well as content cuts
    return rnd.randbytes(9 * MIB) + bytes(9 * MIB) + rnd.randbytes(5 * MIB)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.integers(0, 23 * MIB),
    window=st.integers(CDC_MAX + 1, 12 * MIB),
)
def test_windowed_cuts_equal_whole_file_cuts(
    data: bytes, tmp_path_factory: pytest.TempPathFactory, size: int, window: int
) -> None:
    path = tmp_path_factory.mktemp("cdc") / "f.bin"
    path.write_bytes(data[:size])
    got = [bytes(c) for c in cdc_chunks(path, SEED, window)]
    assert got == whole_file_chunks(data[:size])


def test_memory_is_bounded_by_the_window_not_the_file(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with open(path, "wb") as fh:
        for _ in range(4):
            fh.write(data)  # 92 MiB
    window = 8 * MIB
    tracemalloc.start()
    try:
        count = sum(1 for _ in cdc_chunks(path, SEED, window))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 20
    assert peak < 4 * window  # two windows at most; the file is 92 MiB


def test_a_window_no_larger_than_a_chunk_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="largest chunk"):
        list(cdc_chunks(tmp_path / "f", SEED, CDC_MAX))


@pytest.mark.parametrize(
    ("content", "stated", "want"),
    [
        (5000, 5000, 5000),  # the common case: read exactly what is there
        (5000, 10, 5000),  # grew after its size was taken: read on
        (CDC_MIN + 9, 10, CDC_MIN + 1),  # grew past one chunk: enough to know it
        (0, 0, 0),
    ],
)
def test_head_read_follows_the_file_not_its_stated_size(
    content: int, stated: int, want: int
) -> None:
    assert len(_read_head(io.BytesIO(bytes(content)), stated)) == want


def test_small_files_are_one_chunk_of_their_whole_content(tmp_path: Path) -> None:
    for size in (0, 1, 4096, CDC_MIN):
        path = tmp_path / f"f{size}"
        path.write_bytes(random.Random(size).randbytes(size))
        assert [bytes(c) for c in cdc_chunks(path, SEED)] == ([path.read_bytes()] if size else [])


@pytest.mark.parametrize(
    ("content", "stated", "chunks"),
    [
        (5000, 5000, 1),
        (0, 0, 0),
        (5000, 10, 1),  # grew after its status was taken, still one chunk
        (10, 5000, 1),  # shrank
        (CDC_MIN + 1, 10, None),  # grew past one chunk: chunked after all
    ],
)
def test_single_chunk_reads_the_whole_file_whatever_its_status_said(
    tmp_path: Path, content: int, stated: int, chunks: int | None
) -> None:
    path = tmp_path / "f"
    path.write_bytes(random.Random(content).randbytes(content))
    got = single_chunk(path, stated)
    if chunks is None:
        assert got is None
    else:
        assert len(got or []) == chunks and b"".join(got or []) == path.read_bytes()
