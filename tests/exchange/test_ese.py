"""ESE headers read from real files, written back byte-exact in meaning, and printed the way
eseutil prints them so that dr's own eseutil parsers read them unchanged."""

from __future__ import annotations

import gzip
import struct
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dr.errors import ESEHeaderError
from dr.exchange.ese import (
    BackupInfo,
    BackupKind,
    CheckpointHeader,
    DatabaseHeader,
    DbState,
    LgPos,
    LogHeader,
    LogTime,
    Signature,
    checkpoint_bytes,
    checksum,
    database_header_bytes,
    log_header_bytes,
    log_text,
    mh_text,
    mk_text,
    ml_text,
    read_file,
    read_header,
    to_dict,
)
from dr.exchange.eseutil import parse_mh, parse_ml
from dr.exchange.rules import Gap

ESE = Path(__file__).parent / "fixtures" / "ese"
DIRTY = ESE / "win11-dirty"
DIRTY_LOGS = ["SRU00059.log", "SRU0005A.log", "SRU0005B.log", "SRU.log"]


def raw(path: Path, size: int = 1 << 17) -> bytes:
    with gzip.open(path) as fh:
        return fh.read(size)


def header(path: Path) -> object:
    return read_header(raw(path))


def dirty_db() -> DatabaseHeader:
    h = header(DIRTY / "SRUDB.dat.gz")
    assert isinstance(h, DatabaseHeader)
    return h


def dirty_log(name: str) -> LogHeader:
    h = header(DIRTY / f"{name}.gz")
    assert isinstance(h, LogHeader)
    return h


# --------------------------------------------------------------------------- real files


def test_win11_dirty_database_needs_generation_92() -> None:
    h = dirty_db()
    assert h.state is DbState.DIRTY_SHUTDOWN and h.state.text == "Dirty Shutdown"
    assert (h.gen_min_required, h.gen_max_required, h.gen_max_committed) == (92, 92, 92)
    assert h.page_size == 4096
    assert h.last_consistent == LgPos(0x5C, 7, 0x36)
    assert h.consistent_time == LogTime(2022, 7, 3, 2, 22, 47, 166, True)
    assert h.last_attach == LgPos(0x5C, 9, 0x268)
    assert h.last_detach is None and h.detach_time is None
    assert h.os_version == (10, 0, 22000, 0) and h.update_major == 200
    assert h.log_signature is not None and h.log_signature.random == 629754882
    assert h.log_signature.created.text(millis=False) == "03/05/2022 16:20:02"


def test_win11_dirty_stream_shares_one_log_signature() -> None:
    db = dirty_db()
    chk = header(DIRTY / "SRU.chk.gz")
    assert isinstance(chk, CheckpointHeader)
    assert chk.checkpoint == LgPos(0x5C, 8, 0)
    assert chk.signature == db.log_signature
    generations = [dirty_log(name).generation for name in DIRTY_LOGS]
    assert generations == [89, 90, 91, 92]
    assert {dirty_log(name).signature for name in DIRTY_LOGS} == {db.log_signature}
    assert dirty_log("SRU.log").circular_logging


def test_clean_just_created_repaired_and_large() -> None:
    clean = header(ESE / "win10-clean" / "SRUDB.dat.gz")
    assert isinstance(clean, DatabaseHeader)
    assert (clean.state, clean.log_required, clean.repair_count) == (
        DbState.CLEAN_SHUTDOWN,
        (0, 0),
        0,
    )
    assert clean.log_signature is not None and clean.log_signature.random == 338689357
    created = header(ESE / "ntds-temp" / "temp.edb.gz")
    assert isinstance(created, DatabaseHeader)
    assert (created.state, created.page_size) == (DbState.JUST_CREATED, 8192)
    assert created.log_signature is None
    repaired = header(ESE / "win11-repaired" / "SRUDB.dat.gz")
    assert isinstance(repaired, DatabaseHeader)
    assert (repaired.state, repaired.repair_count) == (DbState.CLEAN_SHUTDOWN, 2)
    assert repaired.log_signature is None and repaired.db_signature != dirty_db().db_signature
    large = header(ESE / "dissect-large" / "large-head.edb.gz")
    assert isinstance(large, DatabaseHeader)
    assert (large.state, large.page_size, large.os_version[:3]) == (
        DbState.CLEAN_SHUTDOWN,
        32768,
        (6, 2, 9200),
    )


def test_read_file_reads_a_plain_file(tmp_path: Path) -> None:
    target = tmp_path / "SRUDB.dat"
    target.write_bytes(raw(DIRTY / "SRUDB.dat.gz", 1 << 20))
    assert read_file(target) == dirty_db()


def test_a_flipped_byte_is_a_checksum_error_naming_the_byte() -> None:
    data = bytearray(raw(DIRTY / "SRUDB.dat.gz"))
    data[300] ^= 0x01  # lGenMaxRequired, page 0 only: the shadow copy stays intact
    with pytest.raises(ESEHeaderError) as raised:
        read_header(bytes(data))
    err = raised.value
    assert "bad header checksum at offset 0" in err.message
    assert "shadow copy differs first at byte 300" in err.message
    assert err.details["offset"] == 0 and err.details["differs_at"] == 300
    assert err.details["expected"] != err.details["actual"]
    assert err.exit_code == 2


def test_a_flipped_log_byte_is_a_checksum_error(tmp_path: Path) -> None:
    data = bytearray(raw(DIRTY / "SRU.log.gz"))
    data[4] ^= 0x02
    target = tmp_path / "SRU.log"
    target.write_bytes(bytes(data))
    with pytest.raises(ESEHeaderError) as raised:
        read_file(target)
    (line,) = raised.value.lines()
    assert line.startswith(f"E2700 {target}: offset 0 (checksum): bad header checksum")


def test_a_non_ese_file_says_so(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_bytes(b"hello world\n" * 1000)
    with pytest.raises(ESEHeaderError) as raised:
        read_file(target)
    assert "not an ESE file: no database magic 0x89ABCDEF at offset 4" in raised.value.message
    assert raised.value.details["file"] == str(target)


def test_short_input_and_unknown_file_type() -> None:
    with pytest.raises(ESEHeaderError, match="only 100 bytes"):
        read_header(bytes(100))
    data = bytearray(database_header_bytes(dirty_db())[:4096])
    struct.pack_into("<I", data, 667, 7)
    struct.pack_into("<I", data, 0, checksum(bytes(data)))
    with pytest.raises(ESEHeaderError, match=r"file type 7 \(flush map \(.jfm\)\) at offset 667"):
        read_header(bytes(data))


def test_an_unknown_state_names_its_offset() -> None:
    data = bytearray(database_header_bytes(dirty_db())[:4096])
    struct.pack_into("<I", data, 52, 9)
    struct.pack_into("<I", data, 0, checksum(bytes(data)))
    with pytest.raises(ESEHeaderError, match="database state 9 at offset 52"):
        read_header(bytes(data))


# --------------------------------------------------------------------------- writing


def test_written_headers_of_real_files_read_back_equal() -> None:
    db = dirty_db()
    written = database_header_bytes(db)
    assert len(written) == 2 * 4096 and written[:4096] == written[4096:]
    assert read_header(written) == db
    assert struct.unpack_from("<I", written)[0] == checksum(written)
    chk = header(DIRTY / "SRU.chk.gz")
    assert isinstance(chk, CheckpointHeader)
    assert len(checkpoint_bytes(chk)) == 8192 and read_header(checkpoint_bytes(chk)) == chk
    log = dirty_log("SRU0005B.log")
    assert len(log_header_bytes(log)) == 4096 and read_header(log_header_bytes(log)) == log


def test_the_real_checksum_is_the_one_computed() -> None:
    data = raw(DIRTY / "SRUDB.dat.gz")
    assert struct.unpack_from("<I", data)[0] == checksum(data) == 0x86E49714


times = st.builds(
    LogTime,
    year=st.integers(1900, 2155),
    month=st.integers(1, 12),
    day=st.integers(1, 31),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    second=st.integers(0, 59),
    millisecond=st.integers(0, 999),
    utc=st.booleans(),
)
u32 = st.integers(0, 2**32 - 1)
gens = st.integers(1, 2**31 - 1)
positions = st.builds(LgPos, gens, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
signatures = st.builds(
    Signature,
    u32,
    times,
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", max_size=15),
)
backups = st.builds(
    BackupInfo, positions, st.none() | times, u32, u32, st.sampled_from(list(BackupKind))
)
plain_backups = st.builds(BackupInfo, positions, st.none() | times, u32, u32)
DATABASE_FIELDS = dict(
    state=st.sampled_from(list(DbState)),
    page_size=st.sampled_from([2048, 4096, 8192, 16384, 32768]),
    db_signature=signatures,
    log_signature=st.none() | signatures,
    gen_min_required=u32,
    gen_max_required=u32,
    gen_max_committed=u32,
    dbtime=st.integers(0, 2**64 - 1),
    update_major=u32,
    streaming=st.booleans(),
    shadowed=st.booleans(),
    last_consistent=st.none() | positions,
    consistent_time=st.none() | times,
    last_attach=st.none() | positions,
    attach_time=st.none() | times,
    last_detach=st.none() | positions,
    detach_time=st.none() | times,
    repair_count=u32,
    repair_time=st.none() | times,
    previous_full=st.none() | backups,
    previous_incremental=st.none() | backups,
    previous_copy=st.none() | backups,
    previous_differential=st.none() | backups,
    current_full=st.none() | plain_backups,
    current_snapshot=st.none() | plain_backups,
    os_version=st.tuples(u32, u32, u32, u32),
    gen_min_consistent=u32,
    gen_max_required_time=st.none() | times,
    pre_redo_min_required=u32,
    format_version=u32,
    update_minor=u32,
    dbid=u32,
    last_objid=u32,
    create_version=u32,
    create_update=u32,
    gen_recovering=u32,
    gen_max_committed_time=st.none() | times,
    pre_redo_min_consistent=u32,
    attached_by=u32,
)
LOG_FIELDS = dict(
    generation=gens,
    signature=signatures,
    created=times,
    previous_created=st.none() | times,
    page_size=st.sampled_from([4096, 8192, 32768]),
    sector_size=st.sampled_from([512, 4096]),
    sectors=st.integers(1, 0xFFFF),
    circular_logging=st.booleans(),
    circular_logging_history=st.booleans(),
    version=st.tuples(u32, u32, u32),
    checkpoint=st.none() | positions,
    header_sectors=st.integers(0, 0xFFFF),
    reserve_log_in_use=st.booleans(),
    update_minor=u32,
)
CHECKPOINT_FIELDS = dict(
    checkpoint=positions,
    signature=signatures,
    full_backup=st.none() | positions,
    full_backup_time=st.none() | times,
    incremental_backup=st.none() | positions,
    incremental_backup_time=st.none() | times,
    db_consistency=st.none() | positions,
    last_full_backup_checkpoint=st.none() | positions,
)
databases = st.builds(DatabaseHeader, **DATABASE_FIELDS)
logs = st.builds(LogHeader, **LOG_FIELDS)
checkpoints = st.builds(CheckpointHeader, **CHECKPOINT_FIELDS)


def test_the_strategies_set_every_field() -> None:
    """The round-trip properties below cover every modelled field, not just some."""
    for given_fields, cls in (
        (DATABASE_FIELDS, DatabaseHeader),
        (LOG_FIELDS, LogHeader),
        (CHECKPOINT_FIELDS, CheckpointHeader),
    ):
        assert set(given_fields) == {f.name for f in fields(cls)}


@settings(max_examples=150, deadline=None)
@given(databases)
def test_database_header_round_trip(h: DatabaseHeader) -> None:
    data = database_header_bytes(h)
    assert len(data) == 2 * max(h.page_size, 4096)
    assert read_header(data) == h


@settings(max_examples=150, deadline=None)
@given(logs)
def test_log_header_round_trip(h: LogHeader) -> None:
    assert read_header(log_header_bytes(h)) == h


@settings(max_examples=150, deadline=None)
@given(checkpoints)
def test_checkpoint_round_trip(h: CheckpointHeader) -> None:
    assert read_header(checkpoint_bytes(h)) == h


@given(times)
def test_logtime_packs_in_eight_bytes_and_back(t: LogTime) -> None:
    packed = t.pack()
    assert len(packed) == 8 and LogTime.unpack(packed) == t


def test_logtime_datetime_and_unset() -> None:
    when = datetime(2024, 5, 15, 11, 40, 2, 123000, tzinfo=UTC)
    t = LogTime.from_datetime(when)
    assert t == LogTime(2024, 5, 15, 11, 40, 2, 123, True)
    assert t.to_datetime() == when
    assert LogTime.unpack(bytes(8)) is None
    assert t.iso() == "2024-05-15T11:40:02.123Z"


def test_signature_prints_as_eseutil_does() -> None:
    sig = Signature(2710198, LogTime(2016, 10, 25, 14, 22, 35, 101))
    assert str(sig) == "Create time:10/25/2016 14:22:35.101 Rand:2710198 Computer:"


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("family", [2000, 2003, 2007, 2010, 2013, 2016, 2019])
def test_mh_text_reads_back_through_the_eseutil_parser(family: int) -> None:
    h = dirty_db()
    parsed = parse_mh(mh_text(r"C:\Windows\System32\sru\SRUDB.dat", h, family=family))
    millis = family >= 2010
    assert (parsed.state, parsed.state_text) == ("dirty", "Dirty Shutdown")
    assert parsed.log_required == (92, 92)
    assert parsed.page_size == 4096 and parsed.repair_count == 0
    assert h.log_signature is not None
    assert parsed.log_signature == h.log_signature.text(millis=millis)
    assert parsed.db_signature == h.db_signature.text(millis=millis)
    assert parsed.min_required_pre_redo == (0 if family >= 2016 else None)


def test_mh_text_forms_per_family() -> None:
    h = replace(
        dirty_db(),
        gen_min_required=4321,
        gen_max_required=4325,
        pre_redo_min_required=4321,
        previous_full=BackupInfo(
            LgPos(0x10CD, 8, 0x16),
            LogTime(2026, 3, 13, 22, 0, 5),
            4290,
            4300,
            BackupKind.OS_SNAPSHOT,
        ),
    )
    old = mh_text("priv1.edb", replace(h, streaming=True), family=2003)
    assert "     Log Required: 4321-4325\n" in old
    assert "   Streaming File: priv1.STM" in old and "Pre-Redo" not in old
    new = mh_text("DB01.edb", h, family=2016)
    assert "Log Required: 4321-4325 (0x10e1-0x10e5) [Min. Req. Pre-Redo: 4321 (0x10e1)]" in new
    assert "        Log Gen: 4290-4300 (0x10c2-0x10cc) - OSSnapshot" in new
    for family in (2007, 2010, 2013):
        assert "Log Required: 4321-4325 (0x10e1-0x10e5)\n" in mh_text("x", h, family=family)
    parsed = parse_mh(new)
    backups = dict(parsed.backups)
    assert (backups["previous full"].log_first, backups["previous full"].log_last) == (4290, 4300)
    assert backups["previous full"].time_text == "03/13/2026 22:00:05.000"


def test_mh_text_states_parse() -> None:
    for state, kind in [
        (DbState.CLEAN_SHUTDOWN, "clean"),
        (DbState.JUST_CREATED, "other"),
        (DbState.DIRTY_AND_PATCHED_SHUTDOWN, "other"),
    ]:
        parsed = parse_mh(mh_text("x.edb", replace(dirty_db(), state=state), family=2016))
        assert (parsed.state, parsed.state_text) == (kind, state.text)


def test_mk_text_prints_the_checkpoint() -> None:
    chk = header(DIRTY / "SRU.chk.gz")
    assert isinstance(chk, CheckpointHeader)
    text = mk_text(r"C:\sru\SRU.chk", chk, family=2016)
    assert "      Checkpoint file: C:\\sru\\SRU.chk\n" in text
    assert "      Checkpoint: (0x5C,8,0)\n" in text
    assert "      Signature: Create time:03/05/2022 16:20:02.646 Rand:629754882 Computer:\n" in text
    assert text.rstrip().endswith("Operation completed successfully in 0.0 seconds.")


def test_log_text_prints_the_generation() -> None:
    text = log_text("SRU.log", dirty_log("SRU.log"), family=2016, base_name="SRU")
    assert "      lGeneration: 92 (0x5C)\n" in text
    assert "Integrity check passed for log file: SRU.log" in text


def _stream(prefix: str = "E00", first: int = 0x2A, count: int = 4, digits: int = 5) -> list:
    base = dirty_log("SRU.log")
    files: list[tuple[str, LogHeader | None]] = [
        (f"{prefix}{g:0{digits}X}.log", replace(base, generation=g))
        for g in range(first, first + count)
    ]
    files.append((f"{prefix}.log", replace(base, generation=first + count)))
    return files


def test_ml_text_of_the_real_srum_stream() -> None:
    logs: list[tuple[str, LogHeader | None]] = [(n, dirty_log(n)) for n in DIRTY_LOGS]
    text = ml_text(r"C:\Windows\System32\sru", "SRU", logs, family=2016)
    assert "      Log file: C:\\Windows\\System32\\sru\\SRU0005B.log - OK" in text
    check = parse_ml(text)
    assert check.ok and check.base_name == "SRU"
    assert [f.name.rsplit("\\", 1)[-1] for f in check.files] == DIRTY_LOGS


@pytest.mark.parametrize("family", [2003, 2016])
def test_ml_text_clean_stream_parses_ok(family: int) -> None:
    digits = 5 if family == 2003 else 8
    check = parse_ml(ml_text(r"D:\logs", "E00", _stream(digits=digits), family=family))
    assert check.ok and check.no_damage_reported
    assert [f.name for f in check.files][-1] == r"D:\logs\E00.log"


def test_ml_text_reports_a_missing_range_and_a_single_missing() -> None:
    files = _stream(count=8)
    del files[2:6]  # 0x2C..0x2F
    check = parse_ml(ml_text("", "E00", files, family=2003))
    assert check.missing == (Gap(0x2C, 0x2F, "E00"),)
    assert (check.status.code, check.status.name) == (-528, "JET_errMissingLogFile")
    one = _stream(count=4)
    del one[1]
    text = ml_text("", "E00", one, family=2003)
    assert "      Missing log file: E00" + "0002B.log\n" in text
    assert parse_ml(text).missing == (Gap(0x2B, 0x2B, "E00"),)


def test_ml_text_reports_a_foreign_signature() -> None:
    files = _stream()
    name, log = files[2]
    assert log is not None
    foreign = replace(log, signature=Signature(7, LogTime(2020, 1, 1, 0, 0, 0)))
    files[2] = (name, foreign)
    check = parse_ml(ml_text("", "E00", files, family=2016))
    assert not check.ok and check.status.name == "JET_errBadLogSignature"
    assert check.errors[0].startswith("Invalid log signature: Create time:01/01/2020")
    assert [f.ok for f in check.files] == [True, True, False, True, True]


def test_ml_text_reports_a_generation_mismatch_and_a_damaged_header() -> None:
    files = _stream(digits=8)
    name, log = files[1]
    assert log is not None
    files[1] = (name, replace(log, generation=0x99))
    files[2] = (files[2][0], None)
    check = parse_ml(ml_text("", "E00", files, family=2016))
    assert check.errors[0] == (
        "Mismatched log generation 153 (0x99) with log file name. Expected generation 43 (0x2B)."
    )
    assert check.errors[1] == "Cannot read log file header. Error -501."
    assert check.status.code == -513  # the first error wins, as in ErrDUMPLog


def test_ml_text_current_log_out_of_sequence() -> None:
    files = _stream()
    name, log = files[-1]
    assert log is not None
    files[-1] = (name, replace(log, generation=0x40))
    check = parse_ml(ml_text("", "E00", files, family=2016))
    assert check.errors == (
        "Missing log file(s). Log file is generation 64 (0x40), but expected generation is "
        "46 (0x2E).",
    )


def test_to_dict_names_states_and_times() -> None:
    data = to_dict(dirty_db())
    assert data["kind"] == "database" and data["state"] == "DIRTY_SHUTDOWN"
    assert data["consistent_time"] == "2022-07-03T02:22:47.166Z"
    assert data["last_consistent"]["text"] == "(0x5C,7,36)"
    assert data["log_signature"]["random"] == 629754882
    assert to_dict(dirty_log("SRU.log"))["generation"] == 92


def test_store_auto_block_size_takes_the_page_size_from_the_header() -> None:
    from dr.store.chunking import auto_block_size, ese_page_size

    large = raw(ESE / "dissect-large" / "large-head.edb.gz")
    assert ese_page_size(large[:4096]) == 32768
    assert auto_block_size(300 << 20, large[:4096]) == 32768
    assert ese_page_size(raw(ESE / "ntds-temp" / "temp.edb.gz")[:4096]) == 8192
    assert ese_page_size(raw(DIRTY / "SRU.log.gz")[:4096]) is None  # a log: not a database
    written = database_header_bytes(replace(dirty_db(), page_size=16384))
    assert auto_block_size(300 << 20, written[:4096]) == 16384
