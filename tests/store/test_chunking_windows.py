"""Chunking in bounded windows cuts exactly where whole-file chunking cuts, in bounded memory."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pyfastcdc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr.store.chunking import CDC_AVG, CDC_MAX, CDC_MIN, MIB, cdc_chunks

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
