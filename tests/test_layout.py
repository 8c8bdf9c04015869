"""Layout rules from docs/architecture.md that the code must keep."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_never_imports_dr() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "engine").rglob("*.py")
        if "dr" in _imports(path)
    ]
    assert offenders == []


def test_model_imports_nothing_of_ours_but_errors() -> None:
    for path in (ROOT / "dr" / "model").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dr."):
                assert node.module.startswith(("dr.model", "dr.errors", "dr.workspace")), (
                    f"{path.name} imports {node.module}"
                )


@pytest.mark.slow
def test_wheel_ships_runbooks_and_templates(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("dr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    runbooks = sorted(
        n for n in names if n.startswith("dr/_data/runbooks/") and n.endswith(".yaml")
    )
    templates = sorted(n for n in names if n.startswith("dr/_data/templates/"))
    expected = sorted(p.name for p in (ROOT / "runbooks").glob("*.yaml"))
    assert [Path(n).name for n in runbooks] == expected
    assert templates, "templates missing from the wheel"
    assert any(n.startswith("engine/") for n in names)
