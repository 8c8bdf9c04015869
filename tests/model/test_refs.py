"""Database and storage-group references: full, short, ambiguous and unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

from dr.errors import NotFoundError, ParameterError
from dr.model.inventory import load_inventory
from dr.model.refs import resolve_database, resolve_storage_group

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "estate.yaml"
INV = load_inventory(EXAMPLE)


@pytest.mark.parametrize(
    "ref",
    [
        "EX2003/Second Storage Group/Sales Store",
        "Second Storage Group/Sales Store",
        "Sales Store",
        "sales store",
    ],
)
def test_database_reference_forms(ref: str) -> None:
    found = resolve_database(INV, ref)
    assert found.key == "EX2003/Second Storage Group/Sales Store"
    assert found.server.name == "EX2003"
    assert found.storage_group.log_prefix == "E01"
    assert found.database.stm is not None


def test_server_and_database_for_modern_servers() -> None:
    assert resolve_database(INV, "EX2016/DB02").key == "EX2016/DB02/DB02"
    assert resolve_database(INV, "DB01").storage_group.name == "DB01"


def test_unknown_and_malformed_database() -> None:
    with pytest.raises(NotFoundError):
        resolve_database(INV, "EX2016/DB09")
    with pytest.raises(ParameterError):
        resolve_database(INV, "EX2016//DB01")


def test_ambiguous_database_names_every_candidate() -> None:
    data = INV.model_dump()
    data["servers"][4]["storage_groups"][1]["databases"][0]["name"] = "DB01"
    data["servers"][4]["storage_groups"][1]["name"] = "DB01B"
    inv = type(INV).model_validate(data)
    with pytest.raises(ParameterError) as info:
        resolve_database(inv, "DB01")
    assert "EX2016/DB01/DB01" in info.value.message
    assert "EX2016/DB01B/DB01" in info.value.message


def test_storage_group_references() -> None:
    assert resolve_storage_group(INV, "First Storage Group").key == "EX2003/First Storage Group"
    assert resolve_storage_group(INV, "EX2016/DB02").storage_group.log_prefix == "E01"
    with pytest.raises(NotFoundError):
        resolve_storage_group(INV, "EX2003/DB02")
