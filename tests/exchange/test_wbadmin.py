from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from dr.errors import ToolOutputError
from dr.exchange.wbadmin import parse_versions

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_english_versions() -> None:
    versions = parse_versions(fixture("wbadmin_versions_2012.txt"))
    assert [v.version_identifier for v in versions] == [
        "03/31/2026-04:00",
        "04/01/2026-04:00",
        "04/01/2026-09:15",
    ]
    first = versions[0]
    assert first.line == 4
    assert first.backup_time == datetime(2026, 3, 30, 21, 0)
    assert first.identifier_time == datetime(2026, 3, 31, 4, 0)
    assert first.backup_target == r"Network Share labeled \\fs01\backups\EX2016"
    assert first.can("system state") and first.can("Bare Metal Recovery") and first.can("Files")
    assert first.snapshot_id == "{3b1e8a5c-6f0d-4d2a-9a41-2d6f0e9c1b77}"
    last = versions[2]
    assert last.can_recover == ("System State",)
    assert not last.can("Bare Metal Recovery")
    assert last.backup_target == "1394/USB Disk labeled E:"


def test_localised_labels_fall_back_to_the_identifier_shape() -> None:
    versions = parse_versions(fixture("wbadmin_versions_de.txt"))
    assert [(v.version_identifier, v.line, v.backup_time) for v in versions] == [
        ("04/01/2026-04:00", 4, None)
    ]


def test_cut_output_names_the_line() -> None:
    with pytest.raises(ToolOutputError) as raised:
        parse_versions(fixture("wbadmin_versions_truncated.txt"))
    assert "line 9" in raised.value.message and "no version identifier" in raised.value.message
    assert raised.value.details == {"line": 9, "field": "Version identifier"}


def test_bad_identifier_names_the_line() -> None:
    text = fixture("wbadmin_versions_2012.txt").replace(
        "Version identifier: 04/01/2026-04:00", "Version identifier: 4/1/2026"
    )
    with pytest.raises(ToolOutputError, match="line 12: version identifier '4/1/2026'"):
        parse_versions(text)


def test_duplicate_identifier_is_refused() -> None:
    text = fixture("wbadmin_versions_2012.txt").replace("04/01/2026-09:15", "04/01/2026-04:00")
    with pytest.raises(ToolOutputError, match="listed twice"):
        parse_versions(text)


def test_no_backups_yet_is_an_empty_list() -> None:
    text = "wbadmin 1.0 - Backup command-line tool\n\nERROR - No backup was found.\n"
    assert parse_versions(text) == []


@pytest.mark.parametrize("text", ["", "Name: value\n\nother: thing\n", "\x00\x01garbage"])
def test_junk_is_refused(text: str) -> None:
    with pytest.raises(ToolOutputError, match="line 1: this is not wbadmin output"):
        parse_versions(text)
