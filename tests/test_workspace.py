from __future__ import annotations

from pathlib import Path

import pytest

from dr import workspace as ws_mod
from dr.errors import WorkspaceError


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DR_WORKSPACE", raising=False)
    assert ws_mod.resolve_path() == tmp_path / ".dr"
    monkeypatch.setenv("DR_WORKSPACE", str(tmp_path / "env"))
    assert ws_mod.resolve_path() == tmp_path / "env"
    assert ws_mod.resolve_path(tmp_path / "explicit") == tmp_path / "explicit"


def test_init_is_idempotent_and_records_inventory(tmp_path: Path) -> None:
    inv = tmp_path / "estate.yaml"
    inv.write_text("x: 1\n")
    ws = ws_mod.init(tmp_path / "ws", inv)
    assert ws.inventory_path() == inv.resolve()
    ws_mod.init(tmp_path / "ws")
    assert ws.inventory_path() == inv.resolve(), "a second init keeps the recorded inventory"


def test_missing_workspace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as info:
        ws_mod.open_existing(tmp_path / "nowhere")
    assert "dr init" in (info.value.hint or "")


def test_corrupt_config_is_a_clear_error(tmp_path: Path) -> None:
    ws = ws_mod.init(tmp_path / "ws")
    ws.config_path.write_text("[unclosed\n")
    with pytest.raises(WorkspaceError) as info:
        ws.config()
    assert "config.yaml" in info.value.message
