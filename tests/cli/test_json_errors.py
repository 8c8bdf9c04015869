"""Under --json every failure is one `{"error": {...}}` document on stdout, whatever the
command and whoever raised it (dr, the engine, the command-line parser); the exit code is
the one the error has without --json, and the line on stderr is still there."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.cli._dr import ROOT, dr80

ESTATE = ROOT / "examples" / "estate.yaml"


def failure(ws: Path, *args: str) -> tuple[dict[str, Any], int, str]:
    """The error object, the exit code and stderr of a command expected to fail."""
    out = dr80(ws, *args)
    assert out.returncode != 0, out.stdout
    document = json.loads(out.stdout)  # exactly one document: json.loads refuses two
    assert set(document) >= {"error"}, document
    return document["error"], out.returncode, out.stderr


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    assert dr80(path, "init", "--inventory", str(ESTATE)).returncode == 0
    return path


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["set", "show", "no-such-set", "--json"], "E2600", 2),
        (["schedule", "due", "--at", "tomorrow-ish", "--json"], "E2300", 2),
        (["runbook", "show", "no-such-kind", "--json"], "E8200", 2),  # an engine error
        (["graph", "show", "server:NOPE", "--json"], "E2600", 2),
        (["store", "stats", "--json"], "E2300", 2),  # no repository given
        (["set", "show", "--json", "--no-such-option"], "E2300", 2),  # refused by the parser
    ],
)
def test_a_failure_under_json_is_one_error_document(
    ws: Path, args: list[str], code: str, exit_code: int
) -> None:
    error, returned, stderr = failure(ws, *args)
    assert error["code"] == code and returned == exit_code == error["exit_code"]
    assert error["message"] and "hint" in error
    assert error["message"].splitlines()[0] in " ".join(stderr.split())  # stderr says it too
    assert "Traceback" not in stderr


def test_the_exit_code_is_the_one_without_json(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    plain = dr80(missing, "catalog", "list")
    error, returned, stderr = failure(missing, "catalog", "list", "--json")
    assert returned == plain.returncode == 5 and error["code"] == "E5000"
    assert plain.stdout == "" and stderr == plain.stderr
    assert error["hint"] and "dr init" in error["hint"]


def test_without_json_stdout_stays_empty(ws: Path) -> None:
    out = dr80(ws, "set", "show", "no-such-set")
    assert out.returncode == 2 and out.stdout == "" and "E2600" in out.stderr


def test_a_command_that_printed_its_document_adds_no_second_one(tmp_path: Path) -> None:
    """`dr exchange inspect` lists every file, the unreadable ones with their error: the
    failure after it must not put a second document on stdout."""
    missing = tmp_path / "gone.edb"
    out = dr80(tmp_path / "ws", "exchange", "inspect", str(missing), "--json")
    assert out.returncode == 2
    (entry,) = json.loads(out.stdout)
    assert entry["error"]["code"] == "E2700" and "E2700" in out.stderr


def test_inventory_validate_keeps_its_result_and_adds_the_error(tmp_path: Path) -> None:
    bad = tmp_path / "estate.yaml"
    bad.write_text("servers: [\n", encoding="utf-8")
    out = dr80(tmp_path / "ws", "inventory", "validate", str(bad), "--json")
    assert out.returncode == 2
    document = json.loads(out.stdout)
    assert document["ok"] is False and document["problems"][0]["line"] == 2
    assert document["error"]["code"] == "E2100" and document["error"]["exit_code"] == 2


def test_graph_show_json_and_the_old_format_json(ws: Path) -> None:
    new = dr80(ws, "graph", "show", "server:EX2016", "--json")
    assert new.returncode == 0, new.stderr
    nodes = {n["id"] for n in json.loads(new.stdout)["nodes"]}
    assert {"server:EX2016", "directory:corp.contoso.com"} <= nodes
    old = dr80(ws, "graph", "show", "server:EX2016", "--format", "json")
    assert old.returncode == 0 and old.stdout == new.stdout
    assert "--json" in old.stderr  # says what to write instead
    error, returned, _ = failure(ws, "graph", "show", "server:NOPE", "--format", "json")
    assert returned == 2 and error["code"] == "E2600"  # the old spelling fails as JSON too
    both = dr80(ws, "graph", "show", "server:EX2016", "--json", "--format", "mermaid")
    assert both.returncode == 2 and json.loads(both.stdout)["error"]["code"] == "E2300"


def test_a_deleted_current_directory_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    gone = tmp_path / "gone"
    script = (f'mkdir "{gone}" && cd "{gone}" && rmdir "{gone}" && '
              f'exec "{sys.executable}" -m dr schedule due')  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "DR_WORKSPACE"}
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr
    assert "the current directory no longer exists" in done.stderr
