"""`dr exchange inspect` through the real entry point, on real ESE files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dr.exchange.eseutil import parse_mh
from tests.cli._dr import dr

ESE = Path(__file__).resolve().parents[1] / "exchange" / "fixtures" / "ese"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """The Win11 dirty SRUM set and a clean database, decompressed as a restore leaves them."""
    out = {}
    for rel in [
        "win11-dirty/SRUDB.dat",
        "win11-dirty/SRU.chk",
        "win11-dirty/SRU.log",
        "win10-clean/SRUDB.dat",
    ]:
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.decompress((ESE / f"{rel}.gz").read_bytes()))
        out[rel] = target
    return out


def test_inspect_prints_an_eseutil_mh_dump_the_parser_reads(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    out = dr(tmp_path, "exchange", "inspect", str(files["win11-dirty/SRUDB.dat"]))
    assert out.returncode == 0, out.stderr
    header = parse_mh(out.stdout)
    assert (header.state, header.log_required, header.page_size) == ("dirty", (92, 92), 4096)
    assert "         Checksum: 0x86e49714\n" in out.stdout  # the file's own checksum
    assert f"         Database: {files['win11-dirty/SRUDB.dat']}\n" in out.stdout


def test_inspect_2003_form_has_decimal_log_required(tmp_path: Path, files: dict[str, Path]) -> None:
    out = dr(
        tmp_path, "exchange", "inspect", str(files["win11-dirty/SRUDB.dat"]), "--family", "2003"
    )
    assert out.returncode == 0, out.stderr
    assert "     Log Required: 92-92\n" in out.stdout
    assert "Version 6.5" in out.stdout and "DATABASE HEADER" not in out.stdout


def test_inspect_log_and_checkpoint(tmp_path: Path, files: dict[str, Path]) -> None:
    out = dr(
        tmp_path,
        "exchange",
        "inspect",
        str(files["win11-dirty/SRU.log"]),
        str(files["win11-dirty/SRU.chk"]),
    )
    assert out.returncode == 0, out.stderr
    assert "      lGeneration: 92 (0x5C)\n" in out.stdout
    assert "      Checkpoint: (0x5C,8,0)\n" in out.stdout
    assert out.stdout.count("Operation completed successfully") == 2


def test_inspect_json_one_object_per_file(tmp_path: Path, files: dict[str, Path]) -> None:
    names = [
        "win11-dirty/SRUDB.dat",
        "win11-dirty/SRU.log",
        "win11-dirty/SRU.chk",
        "win10-clean/SRUDB.dat",
    ]
    out = dr(tmp_path, "exchange", "inspect", *(str(files[n]) for n in names), "--json")
    assert out.returncode == 0, out.stderr
    dirty, log, chk, clean = json.loads(out.stdout)
    assert [d["kind"] for d in (dirty, log, chk, clean)] == [
        "database",
        "log",
        "checkpoint",
        "database",
    ]
    assert dirty["file"] == str(files["win11-dirty/SRUDB.dat"])
    assert (dirty["state"], dirty["gen_min_required"], dirty["gen_max_required"]) == (
        "DIRTY_SHUTDOWN",
        92,
        92,
    )
    assert dirty["consistent_time"] == "2022-07-03T02:22:47.166Z"
    assert dirty["log_signature"] == log["signature"] == chk["signature"]
    assert log["generation"] == 92 and chk["checkpoint"]["text"] == "(0x5C,8,0)"
    assert clean["state"] == "CLEAN_SHUTDOWN" and clean["state_text"] == "Clean Shutdown"


def test_inspect_bad_input_exits_2_naming_file_and_offset(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    broken = tmp_path / "broken.edb"
    data = bytearray(files["win11-dirty/SRUDB.dat"].read_bytes()[:8192])
    data[296] ^= 0xFF
    broken.write_bytes(bytes(data))
    text = tmp_path / "notes.txt"
    text.write_bytes(b"not a database\n" * 400)
    out = dr(
        tmp_path, "exchange", "inspect", str(broken), str(files["win11-dirty/SRU.chk"]), str(text)
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error")]
    assert lines[0].startswith(f"error E2700 {broken}: offset 0 (checksum): bad header checksum")
    assert "shadow copy differs first at byte 296" in lines[0]
    assert lines[1].startswith(f"error E2700 {text}: offset 4 (magic): not an ESE file")
    assert "      Checkpoint: (0x5C,8,0)" in out.stdout  # the good file is still shown


def test_inspect_json_reports_the_failure_too(tmp_path: Path) -> None:
    missing = tmp_path / "gone.edb"
    out = dr(tmp_path, "exchange", "inspect", str(missing), "--json")
    assert out.returncode == 2
    (entry,) = json.loads(out.stdout)
    assert entry["file"] == str(missing) and entry["error"]["code"] == "E2700"


def test_inspect_refuses_an_unknown_family(tmp_path: Path, files: dict[str, Path]) -> None:
    out = dr(tmp_path, "exchange", "inspect", str(files["win11-dirty/SRU.chk"]), "--family", "2012")
    assert out.returncode == 2 and "E2300 --family 2012" in out.stderr


def test_help_says_what_it_is_for_with_an_example(tmp_path: Path) -> None:
    out = dr(tmp_path, "exchange", "inspect", "--help")
    assert out.returncode == 0
    assert "before they reach a Windows host" in out.stdout
    assert "Example: dr exchange inspect" in " ".join(out.stdout.replace("`", "").split())
