"""The inventory refuses characters no Windows path can hold, with file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli._dr import ROOT, dr

ESTATE = (ROOT / "examples" / "estate.yaml").read_text(encoding="utf-8")
LOG_PATH = r"log_path: F:\Exchsrvr\Logs\First Storage Group"


@pytest.mark.parametrize(
    "value",
    [
        "'F:\\Logs\" & calc.exe & rem \"'",
        r"'F:\Logs<x'",
        r"'F:\Logs>x'",
        r"'F:\Logs|calc'",
        '"F:\\\\Logs\\x01x"',
        '"F:\\\\Logs\\nexec C:\\\\x"',
    ],
)
def test_a_path_with_a_forbidden_character_is_refused_at_its_line(
    tmp_path: Path, value: str
) -> None:
    assert LOG_PATH in ESTATE
    bad = tmp_path / "estate.yaml"
    bad.write_text(ESTATE.replace(LOG_PATH, f"log_path: {value}", 1), encoding="utf-8")
    line = ESTATE.splitlines().index(next(x for x in ESTATE.splitlines() if LOG_PATH in x)) + 1
    out = dr(tmp_path / "ws", "inventory", "validate", str(bad))
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"{bad}:{line}:" in out.stderr
    assert "cannot be part of a Windows path" in out.stderr
    assert "Traceback" not in out.stderr
