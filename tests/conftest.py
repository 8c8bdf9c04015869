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
