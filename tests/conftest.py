from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace directory selected through DR_WORKSPACE."""
    ws = tmp_path / "ws"
    monkeypatch.setenv("DR_WORKSPACE", str(ws))
    return ws


@pytest.fixture(autouse=True)
def _fresh_cli_state() -> object:
    """A command run in-process (typer's CliRunner) sets the CLI's global state (--workspace,
    --json); each test starts from none, so no test depends on the order tests run in."""
    from dr.cli.common import STATE, GlobalState

    yield
    for name, value in vars(GlobalState()).items():
        setattr(STATE, name, value)
