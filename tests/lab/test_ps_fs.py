"""The lab host's file system: NTFS-style paths, wildcards, locks and quotas, through cmdlets."""

from __future__ import annotations

from pathlib import Path

import pytest
from ps_tinyhost import TinyHost, ps

from dr.lab.ps.fs import DISK_FULL, FileSystem, FsError, LockedError

LOCKED = "The process cannot access the file '{}' because it is being used by another process."


@pytest.fixture
def host(tmp_path: Path) -> TinyHost:
    host = TinyHost(tmp_path / "host")
    logs = host.fs.root / "E" / "Logs"
    logs.mkdir(parents=True)
    for name in ("E0000000001.log", "E0000000002.log", "E00.log", "E00.chk"):
        (logs / name).write_bytes(name.encode())
    return host


# --- paths --------------------------------------------------------------------------------


def test_paths_map_under_the_root_case_insensitively(host: TinyHost) -> None:
    fs = host.fs
    assert fs.host_path("e:\\LOGS\\e00.LOG") == fs.root / "E" / "Logs" / "E00.log"
    assert fs.full("e:\\logs\\..\\LOGS\\.\\e00.log") == "E:\\Logs\\E00.log"
    assert fs.full("E00.chk", "E:\\Logs") == "E:\\Logs\\E00.chk"
    assert fs.full("\\Temp", "E:\\Logs") == "E:\\Temp"


def test_dotdot_never_leaves_the_drive(host: TinyHost) -> None:
    assert host.fs.full("E:\\..\\..\\C\\x") == "E:\\C\\x"
    assert host.fs.host_path("E:\\..\\..\\etc").is_relative_to(host.fs.root / "E")


def test_a_path_without_a_drive_letter_is_refused(host: TinyHost) -> None:
    with pytest.raises(FsError):
        host.fs.full("\\\\server\\share\\x")


def test_a_missing_drive_cannot_be_written(host: TinyHost) -> None:
    with pytest.raises(FsError, match="A drive with the name 'Q' does not exist"):
        host.fs.write_bytes("Q:\\x.txt", b"x")


def test_literal_path_never_expands_wildcards(host: TinyHost) -> None:
    script = (
        "Set-Location -LiteralPath 'E:\\Logs'\n"
        "@(Get-ChildItem -Path 'E00000*.log').Count\n"
        "@(Get-ChildItem -LiteralPath 'E00000*.log' -ErrorAction SilentlyContinue).Count\n"
        "Test-Path -Path 'E:\\Logs\\E0000000001.[lx]og'\n"
        "Test-Path -LiteralPath 'E:\\Logs\\E0000000001.[lx]og'\n"
        "Test-Path -Path 'E:\\Logs\\E00.???'\n"
    )
    stdout, stderr, _code = ps(host, script)
    assert stdout == "2\r\n0\r\nTrue\r\nFalse\r\nTrue\r\n", stderr


def test_get_childitem_objects_and_filters(host: TinyHost) -> None:
    script = (
        "$i = Get-ChildItem -LiteralPath 'e:\\logs' -Filter '*.chk'\n"
        "$i.Name; $i.FullName; $i.Length; $i.Extension; $i.BaseName; $i.PSIsContainer\n"
        "(Get-ChildItem -LiteralPath 'E:\\' -Recurse -File).Count\n"
        "(Get-ChildItem -LiteralPath 'E:\\' -Directory).Name\n"
    )
    stdout, stderr, _ = ps(host, script)
    assert stdout.split("\r\n")[:-1] == [
        "E00.chk", "E:\\Logs\\E00.chk", "7", ".chk", "E00", "False", "4", "Logs",
    ], stderr  # fmt: skip


def test_file_cmdlets_round_trip(host: TinyHost) -> None:
    script = (
        "$d = 'E:\\Restore\\SG1'\n"
        "New-Item -ItemType Directory -Path $d -Force | Out-Null\n"
        "Set-Content -LiteralPath (Join-Path $d 'a.txt') -Value @('one', 'two', 'three')\n"
        "(Get-Content -LiteralPath (Join-Path $d 'a.txt')).Count\n"
        "Copy-Item -LiteralPath (Join-Path $d 'a.txt') -Destination 'E:\\Restore'\n"
        "Move-Item -LiteralPath 'E:\\Restore\\a.txt' -Destination 'E:\\Restore\\b.txt'\n"
        "Copy-Item -LiteralPath $d -Destination 'E:\\Copy' -Recurse\n"
        "Test-Path -LiteralPath 'E:\\Copy\\a.txt'\n"
        "Remove-Item -LiteralPath $d -Recurse -Force\n"
        "Test-Path -LiteralPath $d; Test-Path -LiteralPath 'E:\\Restore\\b.txt'\n"
        "Split-Path -Path 'E:\\Restore\\b.txt' -Leaf; Split-Path -Path 'E:\\Restore\\b.txt'\n"
        "(Get-FileHash -LiteralPath 'E:\\Restore\\b.txt' -Algorithm SHA256).Hash.Length\n"
    )
    stdout, stderr, code = ps(host, script)
    assert code == 0, stderr
    assert stdout.split("\r\n")[:-1] == ["3", "True", "False", "True", "b.txt", "E:\\Restore", "64"]
    assert (host.fs.root / "E" / "Restore" / "b.txt").read_bytes() == b"one\r\ntwo\r\nthree\r\n"


def test_remove_item_of_a_full_folder_without_recurse_cannot_prompt(host: TinyHost) -> None:
    _, stderr, _ = ps(host, "Remove-Item -LiteralPath 'E:\\Logs'")
    assert "NonInteractive mode" in stderr
    assert (host.fs.root / "E" / "Logs" / "E00.log").exists()


def test_what_if_changes_nothing(host: TinyHost) -> None:
    stdout, _, code = ps(host, "Remove-Item -LiteralPath 'E:\\Logs' -Recurse -WhatIf")
    assert code == 0
    assert (
        stdout == 'What if: Performing the operation "Remove Directory" on target "E:\\Logs".\r\n'
    )
    assert (host.fs.root / "E" / "Logs").is_dir()


# --- locks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("Copy-Item -LiteralPath 'E:\\Logs\\E00.log' -Destination 'E:\\x.log'",
         "Copy-Item : " + LOCKED.format("E:\\Logs\\E00.log")),
        ("Remove-Item -LiteralPath 'E:\\Logs\\E00.log'",
         "Remove-Item : Cannot remove item E:\\Logs\\E00.log: "
         + LOCKED.format("E:\\Logs\\E00.log")),
        ("Move-Item -LiteralPath 'E:\\Logs\\E00.log' -Destination 'E:\\x.log'",
         "Move-Item : The process cannot access the file because it is being used by another"
         " process."),
        ("Get-Content -LiteralPath 'E:\\Logs\\E00.log'",
         "Get-Content : " + LOCKED.format("E:\\Logs\\E00.log")),
        ("Remove-Item -LiteralPath 'E:\\Logs' -Recurse -Force",
         "Remove-Item : Cannot remove item E:\\Logs: " + LOCKED.format("E:\\Logs\\E00.log")),
    ],
)  # fmt: skip
def test_a_locked_file_refuses_copy_move_read_and_delete(
    host: TinyHost, script: str, message: str
) -> None:
    host.fs.lock("E:\\Logs\\E00.log", "store.exe")
    _stdout, stderr, code = ps(host, script)
    assert stderr.strip() == message
    assert code == 1  # the only statement failed: $? is false
    assert (host.fs.root / "E" / "Logs" / "E00.log").read_bytes() == b"E00.log"
    assert not (host.fs.root / "E" / "x.log").exists()


def test_a_locked_file_stops_a_script_under_error_action_stop(host: TinyHost) -> None:
    host.fs.lock("e:\\logs\\e00.LOG", "store.exe")
    script = (
        "try { Copy-Item -LiteralPath 'E:\\Logs\\E00.log' -Destination 'E:\\x' -ErrorAction Stop }"
        " catch { 'caught: ' + $_.Exception.Message; exit 3 }"
    )
    stdout, _, code = ps(host, script)
    assert stdout == "caught: " + LOCKED.format("E:\\Logs\\E00.log") + "\r\n"
    assert code == 3


def test_unlock_frees_the_file(host: TinyHost) -> None:
    fs = host.fs
    fs.lock("E:\\Logs\\E00.log", "store.exe")
    assert fs.locked_by("e:\\logs\\E00.LOG") == "store.exe"
    fs.unlock("E:\\Logs\\E00.log", "someone-else")
    assert fs.locked_by("E:\\Logs\\E00.log") == "store.exe"
    fs.unlock("E:\\Logs\\E00.log", "store.exe")
    assert fs.locked_by("E:\\Logs\\E00.log") is None
    fs.copy("E:\\Logs\\E00.log", "E:\\copy.log")
    assert (fs.root / "E" / "copy.log").read_bytes() == b"E00.log"


def test_natives_see_locks_through_fs(tmp_path: Path) -> None:
    fs = FileSystem(tmp_path)
    (tmp_path / "E").mkdir()
    fs.write_bytes("E:\\db.edb", b"pages")
    fs.lock("E:\\db.edb", "store.exe")
    with pytest.raises(LockedError):
        fs.read_bytes("E:\\DB.EDB")
    with pytest.raises(LockedError):
        fs.move("E:\\db.edb", "E:\\old.edb")


# --- free space ---------------------------------------------------------------------------


def test_a_write_beyond_the_quota_fails_with_windows_text(host: TinyHost) -> None:
    used = host.fs.used("E")
    host.fs.set_quota("E", used + 10)
    assert host.fs.free("E") == 10
    _, stderr, _ = ps(host, "Set-Content -LiteralPath 'E:\\big.txt' -Value ('x' * 100)")
    assert stderr.strip() == f"Set-Content : {DISK_FULL}"
    assert not (host.fs.root / "E" / "big.txt").exists()
    host.fs.write_bytes("E:\\small.txt", b"12345")
    assert host.fs.free("E") == 5


def test_get_psdrive_reports_the_quota(host: TinyHost) -> None:
    host.fs.set_quota("E", host.fs.used("E") + 1000)
    (host.fs.root / "E" / "Setup.exe").write_bytes(b"MZ")
    script = (
        "(Get-PSDrive -Name E).Free\n"
        "Get-PSDrive -PSProvider FileSystem | ForEach-Object { Join-Path $_.Root 'Setup.exe' } |"
        " Where-Object { Test-Path -LiteralPath $_ } | Select-Object -First 1\n"
    )
    stdout, stderr, code = ps(host, script)
    assert (stdout, code) == ("998\r\nE:\\Setup.exe\r\n", 0), stderr
