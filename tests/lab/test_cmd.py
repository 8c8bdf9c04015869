"""The cmd.exe subset, and both shells end to end through the loopback WinRS endpoint."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from ps_tinyhost import TinyHost, cmd

from dr.lab.ps import NativeResult, handler
from dr.lab.ps.cmd import CmdError, parse_line
from dr.lab.winrs import WinRSServer
from engine.transports.base import Command
from engine.transports.credentials import Credential
from engine.transports.winrm import WinRMSettings, WinRMTransport

ROBOCOPY = r'robocopy "E:\a b" "F:\c" /E /COPY:DAT /R:2 /W:10 /NP'
CHECK = " & if errorlevel 8 (exit /b 1) else (exit /b 0)"


@pytest.fixture
def host(tmp_path: Path) -> TinyHost:
    return TinyHost(tmp_path / "host")


def robocopy_exiting(code: int):  # type: ignore[no-untyped-def]
    def run(argv: list[str], host: object, stdin: bytes) -> NativeResult:
        return NativeResult(stdout=f"copied {len(argv)} args\r\n", exit_code=code)

    return run


@pytest.mark.parametrize(("robocopy_code", "expected"), [(0, 0), (1, 0), (7, 0), (8, 1), (16, 1)])
def test_robocopy_errorlevel_check(host: TinyHost, robocopy_code: int, expected: int) -> None:
    host.natives["robocopy"] = robocopy_exiting(robocopy_code)
    stdout, _, code = cmd(host, ROBOCOPY + CHECK)
    assert code == expected
    assert stdout == "copied 7 args\r\n"
    assert host.calls == [
        ("robocopy", ["E:\\a b", "F:\\c", "/E", "/COPY:DAT", "/R:2", "/W:10", "/NP"])
    ]


@pytest.mark.parametrize(
    ("robocopy_code", "expected", "without_else"), [(1, 0, 1), (3, 0, 3), (8, 1, 1), (16, 1, 1)]
)
def test_the_backup_copy_line_exits_0_when_robocopy_copied(
    host: TinyHost, robocopy_code: int, expected: int, without_else: int
) -> None:
    """The VSS backup's copy script (diskshadow EXEC stops the backup on a non-zero exit):
    robocopy's 1 ("files copied") must not leave the script's exit code at 1 — an ``if``
    whose condition is false does not reset ERRORLEVEL, so the else branch is needed."""
    host.natives["robocopy"] = robocopy_exiting(robocopy_code)
    line = "robocopy a b *.log *.chk /R:2 /W:5 /NP & if errorlevel 8 (exit /b 1) else (exit /b 0)"
    assert cmd(host, line)[2] == expected
    assert cmd(host, "robocopy a b & if errorlevel 8 exit /b 1")[2] == without_else


def test_unparenthesised_if_takes_the_rest_of_the_line(host: TinyHost) -> None:
    host.natives["robocopy"] = robocopy_exiting(9)
    assert cmd(host, "robocopy a b & if errorlevel 8 exit /b 1")[2] == 1
    assert cmd(host, "if 1==2 echo a & echo b")[0] == ""


@pytest.mark.parametrize(
    ("line", "stdout", "code"),
    [
        ("echo hello world", "hello world\r\n", 0),
        ("echo a^&b", "a&b\r\n", 0),
        ("echo.", "\r\n", 0),
        ('if "a"=="a" (echo same) else (echo diff)', "same\r\n", 0),
        ('if not "a"=="b" echo differ', "differ\r\n", 0),
        ('if /i "A"=="a" echo folded', "folded\r\n", 0),
        ("if exist C:\\Users echo there", "there\r\n", 0),
        ('if not exist "C:\\no such" echo absent', "absent\r\n", 0),
        ("set X=1 & echo %X%", "%X%\r\n", 0),  # expanded when the line is read
        ("echo %COMPUTERNAME% %UNDEFINED%", "LAB01 %UNDEFINED%\r\n", 0),
        ("echo one >nul 2>&1 && echo two", "two\r\n", 0),
        ("(echo grouped) & exit /b 3", "grouped\r\n", 3),
        ("exit 5", "", 5),
    ],
)
def test_builtins(host: TinyHost, line: str, stdout: str, code: int) -> None:
    assert cmd(host, line)[0::2] == (stdout, code)


def test_unknown_command_is_9009_with_cmds_text(host: TinyHost) -> None:
    stdout, stderr, code = cmd(host, "nosuch /x || echo failed")
    assert code == 9009 and stdout == "failed\r\n"  # echo leaves the errorlevel alone
    assert stderr == (
        "'nosuch' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n"
    )
    assert cmd(host, "nosuch")[2] == 9009
    assert cmd(host, "nosuch & echo %ERRORLEVEL%")[0] == "0\r\n"  # read before it ran


def test_and_or_follow_the_exit_code(host: TinyHost) -> None:
    host.natives["robocopy"] = robocopy_exiting(0)
    host.natives["eseutil"] = robocopy_exiting(3)
    assert cmd(host, "robocopy a b && echo ok|| echo bad")[0].endswith("ok\r\n")
    assert cmd(host, "eseutil /mh x && echo ok|| echo bad")[0].endswith("bad\r\n")


def test_redirect_to_a_file(host: TinyHost) -> None:
    cmd(host, "echo logged > E:\\out.txt")
    assert (host.fs.root / "E" / "out.txt").read_bytes() == b"logged \r\n"


def test_builtins_outside_the_subset_fail_loudly(host: TinyHost) -> None:
    _, stderr, code = cmd(host, 'copy /y "E:\\a" "E:\\b"')
    assert code == 1 and "dr lab: the cmd built-in copy is not supported" in stderr


def test_syntax_errors() -> None:
    with pytest.raises(CmdError):
        parse_line("(echo unclosed")
    with pytest.raises(CmdError, match="was unexpected"):
        parse_line("if a= echo x")


def test_hostile_value_stays_one_argument(host: TinyHost) -> None:
    host.natives["robocopy"] = robocopy_exiting(0)
    cmd(host, 'robocopy "E:\\x & del /q C:\\*" F:\\y')
    assert host.calls == [("robocopy", ["E:\\x & del /q C:\\*", "F:\\y"])]


def test_powershell_encoded_command_runs_the_script(host: TinyHost) -> None:
    script = "Write-Output ('from ' + 'ps'); exit 3"
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    line = f"powershell.exe -NoProfile -NonInteractive -EncodedCommand {encoded} & echo %X%"
    stdout, _, code = cmd(host, f"{line} & if errorlevel 3 exit /b 9")
    assert stdout == "from ps\r\n%X% \r\n"  # echo keeps the blank before &
    assert code == 9


# --- end to end over WinRS ----------------------------------------------------------------

USER, PASSWORD = "lab\\operator", "pw"


@pytest.fixture
def winrm(host: TinyHost):  # type: ignore[no-untyped-def]
    with WinRSServer(handler(host), USER, PASSWORD) as server:
        settings = WinRMSettings(
            host="127.0.0.1", port=server.port, scheme="http", auth="basic",
            allow_plaintext=True, operation_timeout=2, read_timeout=10,
        )  # fmt: skip
        transport = WinRMTransport(settings, Credential(USER, PASSWORD))
        yield transport
        transport.close()


def test_a_library_script_end_to_end_over_winrs(host: TinyHost, winrm: WinRMTransport) -> None:
    host.natives["eseutil"] = lambda argv, h, stdin: NativeResult(
        stdout="State: Dirty Shutdown\r\n", exit_code=0 if argv[0] == "/mh" else 1
    )
    (host.fs.root / "E" / "dr-temp").mkdir()
    script = (
        "$edb = 'E:\\dr-temp\\priv1.edb'\n"
        "New-Item -ItemType Directory -Path 'E:\\dr-temp\\check' -Force | Out-Null\n"
        "$out = & eseutil.exe /mh $edb\n"
        'if ($LASTEXITCODE -ne 0) { Write-Error "eseutil failed: $LASTEXITCODE"; exit 2 }\n'
        "$r = New-Object PSObject -Property @{ edb = $edb; state = ($out -join '') }\n"
        "$r | ConvertTo-Json -Compress\n"
        "Get-ChildItem -LiteralPath 'E:\\nope'\n"
        "exit 0\n"
    )
    result = winrm.run(Command(script=script), timeout=30)
    assert result.exit_code == 0
    assert result.stdout.decode().strip() == (
        '{"edb":"E:\\\\dr-temp\\\\priv1.edb","state":"State: Dirty Shutdown"}'
    )
    assert result.stderr.decode().startswith("Get-ChildItem : Cannot find path 'E:\\nope'")
    assert (host.fs.root / "E" / "dr-temp" / "check").is_dir()


def test_a_cmd_line_end_to_end_over_winrs(host: TinyHost, winrm: WinRMTransport) -> None:
    host.natives["robocopy"] = robocopy_exiting(8)
    result = winrm.run(Command(script=ROBOCOPY + CHECK, shell="cmd"), timeout=30)
    assert result.exit_code == 1
    assert result.stdout.decode() == "copied 7 args\r\n"


def test_cd_sets_the_folder_a_program_runs_in(host: TinyHost) -> None:
    """``cd /d PATH && eseutil /ml E00`` (the 2003 log check): the program runs in PATH;
    without /d a folder on another drive leaves the current one; a missing one fails."""
    (host.fs.root / "E" / "Logs" / "First SG").mkdir(parents=True)
    host.native_cwd = None  # type: ignore[attr-defined]
    seen: list[str | None] = []

    def where(argv: list[str], h: object, stdin: bytes) -> NativeResult:
        seen.append(getattr(h, "native_cwd", None))
        return NativeResult(stdout="", exit_code=0)

    host.natives["eseutil"] = where
    assert cmd(host, 'cd /d "E:\\Logs\\First SG" && eseutil /ml E00')[2] == 0
    assert cmd(host, 'cd "E:\\Logs\\First SG" & eseutil /ml E00')[2] == 0
    assert seen == ["E:\\Logs\\First SG", host.fs.home]
    _, err, code = cmd(host, 'cd /d "E:\\Nowhere" && eseutil /ml E00')
    assert code == 1 and "cannot find the path" in err and len(seen) == 2
