from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dr.errors import ParameterError, ToolOutputError
from dr.exchange.logs import (
    classify_log_folder_file,
    current_log_name,
    family_of,
    log_file_name,
    parse_log_file_name,
)


def test_legacy_names_have_five_hex_digits() -> None:
    # the Exchange 2003 example of aa998760: Log Required 44-46 -> E000002C.log onwards
    assert log_file_name("E00", 44, 2003) == "E000002C.log"
    assert log_file_name("e01", 1, 2000) == "E0100001.log"


def test_modern_names_have_eight_hex_digits() -> None:
    assert log_file_name("E00", 1, 2007) == "E0000000001.log"
    assert log_file_name("E02", 0x10E1, 2016) == "E02000010E1.log"


def test_family_from_version() -> None:
    assert [family_of(v) for v in (2000, 2003, 2007, 2019)] == [
        "legacy",
        "legacy",
        "modern",
        "modern",
    ]
    with pytest.raises(ParameterError, match="version 1997 is not supported"):
        family_of(1997)


def test_generation_must_fit_the_name() -> None:
    with pytest.raises(ParameterError, match="does not fit a 5-digit"):
        log_file_name("E00", 0x100000, 2003)
    with pytest.raises(ParameterError, match="generation 0 does not fit"):
        log_file_name("E00", 0, 2016)


def test_bad_prefix_is_named() -> None:
    with pytest.raises(ParameterError, match="'X00' is not a log prefix"):
        log_file_name("X00", 1, 2003)


def test_parse_back_with_path_and_lower_case() -> None:
    assert parse_log_file_name(r"D:\Exchsrvr\mdbdata\e000002c.log") == ("E00", 44, 5)
    assert parse_log_file_name("/mnt/logs/E02000010E1.log") == ("E02", 0x10E1, 8)


@pytest.mark.parametrize(
    "name",
    ["E00.log", "E0000002C.log", "E00000002C.log", "E0000002.txt", "F000002C.log", "E00zz.log"],
)
def test_malformed_names_are_refused_with_the_name(name: str) -> None:
    with pytest.raises(ParameterError) as raised:
        parse_log_file_name(name)
    assert repr(name) in raised.value.message


def test_tool_output_callers_get_tool_output_errors() -> None:
    with pytest.raises(ToolOutputError, match=r"E0000000\.log"):
        parse_log_file_name("E0000000.log", error=ToolOutputError)


def test_current_and_special_files_are_recognised() -> None:
    assert current_log_name("e00") == "E00.log"
    kinds = {
        name: (f.kind, f.prefix, f.generation) if (f := classify_log_folder_file(name)) else None
        for name in (
            "E00.log",
            "E00tmp.log",
            "res1.log",
            "RES2.LOG",
            "E01res00001.jrs",
            "E00.chk",
            "E000002C.log",
            "priv1.edb",
        )
    }
    assert kinds == {
        "E00.log": ("current", "E00", None),
        "E00tmp.log": ("temporary", "E00", None),
        "res1.log": ("reserve", None, None),
        "RES2.LOG": ("reserve", None, None),
        "E01res00001.jrs": ("reserve", "E01", None),
        "E00.chk": ("checkpoint", "E00", None),
        "E000002C.log": ("generation", "E00", 44),
        "priv1.edb": None,
    }


@given(
    prefix=st.integers(0, 255).map(lambda n: f"E{n:02X}"),
    version=st.sampled_from([2000, 2003, 2007, 2010, 2013, 2016, 2019]),
    data=st.data(),
)
def test_name_round_trip(prefix: str, version: int, data: st.DataObject) -> None:
    digits = 5 if version <= 2003 else 8
    generation = data.draw(st.integers(1, 16**digits - 1))
    name = log_file_name(prefix, generation, version)
    assert parse_log_file_name(name) == (prefix, generation, digits)
