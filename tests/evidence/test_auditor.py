"""The auditor's commands in docs/evidence.md, run on a fresh record and on tampered copies."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.evidence.conftest import Env, good_plan, make_env, run_good

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "auditor.sh"
DOC = HERE.parents[1] / "docs" / "evidence.md"
MARKER = "# --- commands from docs/evidence.md ---\n"


def doc_commands() -> str:
    """The shell blocks of the doc's "Checking a record by hand" section, in order."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Checking a record by hand", 1)[1].split("\n## ", 1)[0]
    return "".join(re.findall(r"```sh\n(.*?)```", section, flags=re.S))


def test_the_script_runs_exactly_the_commands_of_the_doc() -> None:
    script = SCRIPT.read_text(encoding="utf-8")
    assert MARKER in script
    assert script.split(MARKER, 1)[1] == doc_commands()
    assert "openssl pkeyutl -verify" in doc_commands() and "ssh-keygen -Y verify" in doc_commands()


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run, its record and two later ones (corrective actions); record 1 exported."""
    env: Env = make_env(tmp_path_factory.mktemp("auditor"))
    env.dr("evidence", "keygen")
    rid = run_good(env, good_plan(env.tmp))
    for n in (2, 3):
        env.dr("evidence", "record", rid, "--corrective", f"action {n}")
    out = env.tmp / "export"
    env.dr("evidence", "export", rid, "--seq", "1", "-o", str(out))
    return out


def audit(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), str(directory)], capture_output=True, text=True, check=False
    )


def tampered(export: Path, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(export, copy)
    return copy


def test_a_fresh_record_passes_every_step(export: Path, tmp_path: Path) -> None:
    out = audit(tampered(export, tmp_path, "fresh"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("Signature Verified Successfully") == 2
    assert 'Good "dr-evidence" signature' in out.stdout + out.stderr
    assert "plan.json: OK" in out.stdout and "journal.json: OK" in out.stdout
    assert out.stdout.rstrip().endswith("evidence verified")


@pytest.mark.parametrize("name", ["envelope.json", "journal.json", "plan.json"])
def test_a_one_character_edit_fails(export: Path, tmp_path: Path, name: str) -> None:
    copy = tampered(export, tmp_path, "edit")
    path = copy / name
    data = path.read_bytes()
    at = (
        data.index(b'"payload": "') + 20 if name == "envelope.json" else data.index(b"orchestrator")
    )
    path.write_bytes(data[:at] + (b"A" if data[at : at + 1] != b"A" else b"B") + data[at + 1 :])
    out = audit(copy)
    assert out.returncode != 0 and "evidence verified" not in out.stdout


def _with_lines(export: Path, tmp_path: Path, pick: list[int]) -> subprocess.CompletedProcess[str]:
    copy = tampered(export, tmp_path, "log")
    entries = copy / "log" / "entries.jsonl"
    lines = entries.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3
    entries.write_bytes(b"".join(lines[i] for i in pick))
    return audit(copy)


def test_a_removed_record_fails(export: Path, tmp_path: Path) -> None:
    middle = _with_lines(export, tmp_path / "middle", [0, 2])
    assert middle.returncode != 0 and "entry 2: chain broken" in middle.stdout
    last = _with_lines(export, tmp_path / "last", [0, 1])
    assert last.returncode != 0 and "checkpoint: head differs" in last.stdout


def test_a_reordered_log_fails(export: Path, tmp_path: Path) -> None:
    out = _with_lines(export, tmp_path, [0, 2, 1])
    assert out.returncode != 0 and "chain broken" in out.stdout
