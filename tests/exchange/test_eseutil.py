from __future__ import annotations

from pathlib import Path

import pytest

from dr.errors import ToolOutputError
from dr.exchange.eseutil import normalise_exit_code, parse_log_required, parse_mh, parse_ml
from dr.exchange.rules import Gap

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_mh_2003_dirty_decimal_only_form() -> None:
    header = parse_mh(fixture("mh_2003_dirty.txt"))
    assert header.state == "dirty" and header.state_text == "Dirty Shutdown"
    assert header.log_required == (44, 46)
    assert header.needs_logs
    assert header.min_required_pre_redo is None
    assert header.page_size == 4096
    assert header.db_signature == "Create time:06/15/2005 10:12:41 Rand:1184436 Computer:"
    assert header.log_signature == "Create time:06/15/2005 10:12:38 Rand:1182398 Computer:"
    assert header.status.ok and header.status.code == 0
    backups = dict(header.backups)
    assert (backups["previous full"].log_first, backups["previous full"].log_last) == (10, 20)
    assert backups["previous incremental"].time_text == "03/14/2006 12:00:04"


def test_mh_2003_clean() -> None:
    header = parse_mh(fixture("mh_2003_clean.txt"))
    assert (header.state, header.log_required, header.needs_logs) == ("clean", (0, 0), False)


def test_mh_2016_dirty_with_hex_and_pre_redo() -> None:
    header = parse_mh(fixture("mh_2016_dirty.txt"))
    assert header.state == "dirty"
    assert header.log_required == (4321, 4325)
    assert header.min_required_pre_redo == 4321
    assert header.page_size == 32768
    assert header.log_signature.startswith("Create time:10/25/2016 14:22:35.101")
    assert header.repair_count == 0
    assert dict(header.backups)["previous full"].log_last == 4300


def test_mh_2016_clean() -> None:
    header = parse_mh(fixture("mh_2016_clean.txt"))
    assert (header.state, header.log_required) == ("clean", (0, 0))


def test_unknown_state_is_kept_as_other() -> None:
    text = fixture("mh_2016_dirty.txt").replace("Dirty Shutdown", "Dirty and Patched Shutdown")
    header = parse_mh(text)
    assert (header.state, header.state_text) == ("other", "Dirty and Patched Shutdown")


def test_hex_must_agree_with_decimal() -> None:
    with pytest.raises(ToolOutputError, match="disagrees with hex 0x10e1-0x10e6"):
        parse_log_required("4321-4325 (0x10e1-0x10e6)")


@pytest.mark.parametrize("field", ["State", "Log Required", "DB Signature", "Log Signature"])
def test_missing_field_is_named(field: str) -> None:
    text = "\n".join(
        line
        for line in fixture("mh_2016_dirty.txt").splitlines()
        if not line.strip().startswith(f"{field}:")
    )
    with pytest.raises(ToolOutputError) as raised:
        parse_mh(text)
    assert f"'{field}:'" in raised.value.message
    assert raised.value.details["field"] == field


def test_failed_dump_reports_the_jet_error() -> None:
    with pytest.raises(ToolOutputError, match="JET_errFileAccessDenied") as raised:
        parse_mh(fixture("mh_2016_failed.txt"))
    assert raised.value.details["jet_error"] == -1032


@pytest.mark.parametrize(
    "text", ["", "garbage\nmore garbage\n", fixture("mh_2016_dirty.txt")[:900]]
)
def test_junk_or_cut_output_is_refused(text: str) -> None:
    with pytest.raises(ToolOutputError, match="no 'Operation completed'"):
        parse_mh(text)


def test_checkpoint_dump_is_not_a_database() -> None:
    text = fixture("mh_2003_dirty.txt").replace("File Type: Database", "File Type: Checkpoint")
    with pytest.raises(ToolOutputError, match="'Checkpoint' file, not a database"):
        parse_mh(text)


def test_ml_2003_all_ok() -> None:
    check = parse_ml(fixture("ml_2003_ok.txt"))
    assert check.ok and check.no_damage_reported
    assert check.base_name == "E00"
    assert [f.name.rsplit("\\", 1)[-1] for f in check.files] == [
        "E000002A.log",
        "E000002B.log",
        "E000002C.log",
        "E00.log",
    ]


def test_ml_singular_missing_form() -> None:
    check = parse_ml(fixture("ml_2003_missing_one.txt"))
    assert not check.ok
    assert check.missing == (Gap(0x2B, 0x2B, "E00"),)
    assert (check.status.code, check.status.name) == (-528, "JET_errMissingLogFile")


def test_ml_range_missing_form() -> None:
    check = parse_ml(fixture("ml_2016_missing_range.txt"))
    assert check.missing == (Gap(0x10D8, 0x10DB, "E01"),)
    assert not check.ok


def test_ml_corruption() -> None:
    check = parse_ml(fixture("ml_2016_corrupt.txt"))
    assert not check.ok
    assert check.corrupted == (r"E:\Logs\DB01\E01000010D7.log",)
    assert [f.ok for f in check.files] == [True, False]
    assert "Error -501" in check.files[1].errors[0]
    assert (check.status.ok, check.status.code) == (False, -501)


def test_ml_generation_mismatch() -> None:
    check = parse_ml(fixture("ml_2016_mismatch.txt"))
    assert not check.ok
    assert check.errors[0].startswith("Mismatched log generation 4320 (0x10E0)")
    assert check.status.name == "JET_errLogGenerationMismatch"


def test_ml_single_file_passed() -> None:
    check = parse_ml(fixture("ml_2016_single_ok.txt"))
    assert check.ok and check.files[0].ok


def test_ml_junk_is_refused() -> None:
    with pytest.raises(ToolOutputError):
        parse_ml("hello\n")
    with pytest.raises(ToolOutputError, match="names no log file"):
        parse_ml("Operation completed successfully in 0.1 seconds.\n")


def test_ml_success_status_with_a_missing_line_is_not_ok() -> None:
    # eseutil's exit status alone is not trusted: a reported gap fails the check
    text = fixture("ml_2003_missing_one.txt").replace(
        "Operation terminated with error -528 (JET_errMissingLogFile, Current log file missing)"
        " after 1.47 seconds.",
        "Operation completed successfully in 1.47 seconds.",
    )
    check = parse_ml(text)
    assert check.status.ok and not check.ok


@pytest.mark.parametrize(
    ("rc", "expected"), [(0, 0), (1, 1), (4294966795, -501), (2**31, -(2**31)), (-528, -528)]
)
def test_normalise_exit_code(rc: int, expected: int) -> None:
    assert normalise_exit_code(rc) == expected


def test_exit_code_out_of_range() -> None:
    with pytest.raises(ToolOutputError, match="does not fit 32 bits"):
        normalise_exit_code(2**32)
