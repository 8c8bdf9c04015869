"""Small pure pieces: chain decisions, block maps, packs' index encoding, KDF settings."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime
from pathlib import Path
from random import Random

import pytest
import zstandard

from dr.errors import ParameterError
from dr.store.backup import BackupOptions
from dr.store.blockmap import BlockMap, MapFormatError
from dr.store.chains import decide_run_type, differential_due
from dr.store.crypto import CODEC_RAW, CODEC_ZSTD, Compressor, MasterKeys, framed, unpack
from dr.store.index import decode, encode
from dr.store.keyfile import wrap
from dr.store.packs import BlobEntry


def manifest(vid: str, kind: str, started: str) -> dict:
    return {"id": vid, "backup_type": kind, "started": started, "files": []}


def opts(**kw: object) -> BackupOptions:
    return BackupOptions("s", Path("."), **kw)  # type: ignore[arg-type]


def test_monthly_differential_on_its_day_once() -> None:
    history = [manifest("a", "full", "2026-10-20T00:00:00.000000Z")]
    first = datetime(2026, 11, 1, 3, tzinfo=UTC)
    o = opts(differential="monthly", differential_day=1)
    assert differential_due(history, o, first)
    assert not differential_due(history, o, datetime(2026, 11, 2, tzinfo=UTC))
    history.append(manifest("b", "differential", "2026-11-01T03:00:00.000000Z"))
    assert not differential_due(history, o, first.replace(hour=9))


def test_differential_base_is_the_last_full() -> None:
    history = [
        manifest("f1", "full", "2026-11-01T00:00:00.000000Z"),
        manifest("i1", "incremental", "2026-11-02T00:00:00.000000Z"),
        manifest("f2", "full", "2026-11-03T00:00:00.000000Z"),
        manifest("i2", "incremental", "2026-11-04T00:00:00.000000Z"),
    ]
    at = datetime(2026, 11, 5, tzinfo=UTC)
    d = decide_run_type(history, opts(backup_type="differential"), at)
    assert (d.run_type, d.base_version, d.needs) == ("differential", "f2", ["f2"])
    i = decide_run_type(history, opts(), at)
    assert (i.run_type, i.base_version) == ("incremental", "i2")
    assert decide_run_type(history, opts(max_deltas=1), at).run_type == "full"


def test_block_map_round_trip_and_rejects_garbage() -> None:
    m = BlockMap(
        8192,
        20000,
        b"\x01" * 48,
        [b"\x02" * 32],
        array("I", [0, 0, 0]),
        array("I", [0, 8192, 16384]),
    )
    back = BlockMap.decode(m.encode())
    assert (back.block_size, back.file_size, back.blocks) == (8192, 20000, 3)
    assert back.block_len(2) == 20000 - 16384 and list(back.offset_in) == [0, 8192, 16384]
    with pytest.raises(MapFormatError):
        BlockMap.decode(m.encode()[:-1])


def test_index_encoding_round_trip() -> None:
    entries = [
        BlobEntry(bytes([i]) * 32, i % 3, "ab" * 32, 24 + i * 100, 100, 90) for i in range(5)
    ]
    assert sorted(decode(encode(entries)), key=lambda e: e.offset) == entries


def test_unknown_kdf_profile_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DR_KDF_PROFILE", "weak")
    with pytest.raises(ParameterError, match="DR_KDF_PROFILE"):
        wrap(MasterKeys.generate(), "id", "pw")


def test_default_kdf_is_argon2id_64_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DR_KDF_PROFILE")
    secret = "a passphrase nobody may read"
    doc = wrap(MasterKeys.generate(), "id", secret)
    assert doc["kdf"]["name"] == "argon2id" and doc["kdf"]["memory_kib"] == 65536
    assert doc["kdf"]["time_cost"] == 3 and secret not in str(doc)


def test_a_differential_shortens_the_chain() -> None:
    from dr.store.chains import chain_depth

    kinds = ["full", "incremental", "incremental", "differential", "incremental"]
    history = [
        manifest(str(i), k, f"2026-11-0{i + 1}T00:00:00.000000Z") for i, k in enumerate(kinds)
    ]
    assert chain_depth(history) == 2
    assert chain_depth(history[:3]) == 2 and chain_depth(history[:1]) == 0


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        (b"", CODEC_RAW),
        (b"x", CODEC_RAW),
        (bytes(5000), CODEC_ZSTD),
        (Random(3).randbytes(5000), CODEC_RAW),
    ],
)
def test_framed_blobs_unpack_to_their_data(data: bytes, codec: int) -> None:
    """Stored raw unless zstd makes it smaller; the batch call frames views the same way."""
    frames = Compressor(3).compress_many([data, memoryview(data), b"x"])
    assert bytes(frames[0]) == bytes(frames[1]) == zstandard.ZstdCompressor(level=3).compress(data)
    stored = framed(data, frames[0])
    assert stored[0] == codec
    assert unpack(stored, len(data)) == data
