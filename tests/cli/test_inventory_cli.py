"""`dr inventory validate | use | show` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "estate.yaml"


def run_dr(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DR_WORKSPACE=str(ws), COLUMNS="200", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "dr", *args], capture_output=True, text=True, env=env, check=False
    )


def bad_estate(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("domain_controllers: [DC1, DC2016]", "domain_controllers: [DC1, DC3]")
    text = text.replace("log_prefix: E01", "log_prefix: E00", 1)
    text = text.replace(
        "    env: DR_BACKUP_KEY\n", "    env: DR_BACKUP_KEY\n    value: s3cr3t-key-material\n"
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_example(tmp_path: Path) -> None:
    out = run_dr(tmp_path / "ws", "inventory", "validate", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "ok: 5 servers, 4 storage groups, 5 databases, 10 mailboxes, 15 backup sets"
    )


def test_validate_bad_file_one_line_per_problem_exit_2(tmp_path: Path) -> None:
    path = bad_estate(tmp_path)
    out = run_dr(tmp_path / "ws", "inventory", "validate", str(path))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 3, out.stderr
    assert all(line.startswith(f"error E2100 {path}:") for line in lines)
    assert any(
        ":26:35: forests[0].domains[0].domain_controllers[1]: unknown server" in x for x in lines
    )
    assert any("servers[2].storage_groups[1].log_prefix: duplicate log prefix" in x for x in lines)
    assert any("secrets[4].value: a secret value does not belong" in x for x in lines)
    assert "s3cr3t" not in out.stderr + out.stdout


def test_validate_json(tmp_path: Path) -> None:
    out = run_dr(tmp_path / "ws", "inventory", "validate", "--json", str(bad_estate(tmp_path)))
    assert out.returncode == 2
    data = json.loads(out.stdout)
    assert data["ok"] is False
    fields = {p["field"] for p in data["problems"]}
    assert "forests[0].domains[0].domain_controllers[1]" in fields
    assert all(p["line"] and p["column"] for p in data["problems"])
    good = json.loads(
        run_dr(tmp_path / "ws", "inventory", "validate", "--json", str(EXAMPLE)).stdout
    )
    assert good["ok"] is True and good["counts"]["databases"] == 5


def test_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("organization:\n  name: [Contoso\n", encoding="utf-8")
    out = run_dr(tmp_path / "ws", "inventory", "validate", str(path))
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error E2100 {path}:3:1: YAML syntax")


def test_use_records_the_inventory_and_show_reads_it(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run_dr(ws, "init").returncode == 0
    refused = run_dr(ws, "inventory", "use", str(bad_estate(tmp_path)))
    assert refused.returncode == 2
    assert "inventory" not in yaml.safe_load((ws / "config.yaml").read_text())
    out = run_dr(ws, "inventory", "use", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load((ws / "config.yaml").read_text())["inventory"] == str(EXAMPLE)
    shown = run_dr(ws, "inventory", "show")
    assert shown.returncode == 0, shown.stderr
    for text in (
        "Contoso",
        "/o=Contoso/ou=First Administrative Group",
        "EX2003",
        "Sales Store",
        "recovery.contoso.lab",
        "Safe 2 (server room B), envelope 14",
        "99.9",
    ):
        assert text in shown.stdout, text


def test_show_json(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run_dr(ws, "init", "--inventory", str(EXAMPLE)).returncode == 0
    out = run_dr(ws, "inventory", "show", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["organization"]["name"] == "Contoso"
    assert data["sla"]["default"]["rpo"] == 3600
    assert data["counts"]["mailboxes"] == 10
    assert data["secrets"][0]["name"] == "dsrm-dc1"


def test_show_without_inventory_says_how(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run_dr(ws, "init").returncode == 0
    out = run_dr(ws, "inventory", "show")
    assert out.returncode == 5
    assert "dr inventory use" in out.stderr
    assert "Traceback" not in out.stderr
