"""`dr set` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli._dr import dr, init


def test_add_show_edit_and_encryption_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init(ws)
    out = dr(
        ws,
        "set",
        "add",
        "web-files",
        "--host",
        "DC1",
        "--type",
        "files",
        "--covers",
        "D:\\inetpub",
        "--schedule",
        "day@21:00",
        "--compression",
        "fast",
    )
    assert out.returncode == 0, out.stderr
    assert dr(ws, "set", "edit", "web-files", "--compression", "normal").returncode == 0
    (shown,) = json.loads(dr(ws, "set", "show", "web-files", "--json").stdout)
    assert [c["compression"] for c in shown["compression_history"]] == ["fast", "normal"]
    refused = dr(ws, "set", "edit", "web-files", "--encryption", "off")
    assert refused.returncode == 2
    assert "encryption is fixed" in refused.stderr
    names = {s["name"] for s in json.loads(dr(ws, "set", "show", "--json").stdout)}
    assert {"web-files", "ex2003-exchange", "dc1-system-state"} <= names
