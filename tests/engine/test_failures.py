"""The table of failures no retry can fix, and the reason lines a failed attempt shows.

The texts are what the hosts print: the lab's PowerShell and cmd.exe (which follow
Microsoft's wording), a real /bin/sh, and dr's own error lines.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dr.errors import all_error_classes
from dr.lab.ps import NativeResult, run_cmd, run_powershell
from engine.errors import (
    AuthenticationError,
    EngineError,
    HostUnreachable,
    ProtocolError,
    TransportConfigError,
    TransportError,
    TransportTimeout,
)
from engine.failures import LINE_CHARS, RULES, classify, reason_lines

PASS_16 = "& if errorlevel 16 (exit /b 16) else if errorlevel 8 (exit /b 1) else (exit /b 0)"


def lab_run(tmp_path: Path, shell: str, script: str, robocopy: int = 0) -> tuple[bytes, int]:
    """What a lab Windows host prints for ``script`` (stdout and plain stderr), and its code."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
    from ps_tinyhost import TinyHost, collect

    host = TinyHost(tmp_path / "host")
    host.natives["robocopy"] = lambda argv, h, stdin: NativeResult("copying\r\n", "", robocopy)
    run = run_cmd(script, host) if shell == "cmd" else run_powershell(script, host)
    out, err, code = collect(run)
    return (out + err).encode(), code


def rule_of(output: bytes, code: int, shell: str, script: str) -> str | None:
    verdict = classify(exit_code=code, output=[output], shell=shell, script=script)
    return verdict.rule.name if verdict else None


@pytest.mark.parametrize(
    ("shell", "script", "robocopy", "expected"),
    [
        ("powershell", "Get-ChildItem -Bogus 1", 0, "parameter refused"),
        ("powershell", "Get-Frobnicator -Name x", 0, "command not found"),
        ("cmd", "nosuchtool /x", 0, "command not found"),
        ("cmd", f"robocopy C:\\a C:\\b /BOGUS {PASS_16}", 0, "robocopy serious error"),
        ("cmd", f"robocopy C:\\a C:\\b /E {PASS_16}", 16, "robocopy serious error"),
        ("cmd", f"robocopy C:\\a C:\\b /E {PASS_16}", 8, None),  # some files did not copy
        ("powershell", "Write-Error 'The RPC server is unavailable'", 0, None),
        ("powershell", "exit 16", 0, None),  # 16 means something only from robocopy
    ],
)
def test_what_lab_hosts_print_is_classified(
    tmp_path: Path, shell: str, script: str, robocopy: int, expected: str | None
) -> None:
    output, code = lab_run(tmp_path, shell, script, robocopy)
    assert code != 0
    assert rule_of(output, code, shell, script) == expected


def test_a_full_disk_is_not_retried_whoever_reports_it(tmp_path: Path) -> None:
    """PowerShell's file cmdlets on a full lab drive, robocopy's ERROR 112, eseutil's -1808."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
    from ps_tinyhost import TinyHost, collect

    host = TinyHost(tmp_path / "host")
    host.fs.set_quota("E", host.fs.used("E"))
    script = "Set-Content -LiteralPath 'E:\\big.txt' -Value 'x' -ErrorAction Stop"
    out, err, code = collect(run_powershell(script, host))
    assert code != 0
    assert rule_of((out + err).encode(), code, "powershell", script) == "disk full"
    robocopy = (
        b"ERROR 112 (0x00000070) Copying File F:\\Logs\\E00.chk\r\n"
        b"There is not enough space on the disk.\r\n"
    )
    line = f"robocopy F:\\Logs E:\\aside E00.chk {PASS_16}"
    assert rule_of(robocopy, 1, "cmd", line) == "disk full"
    eseutil = b"Operation terminated with error -1808 (JET_errDiskFull, No space left on disk)"
    assert rule_of(eseutil, -1808, "powershell", "& eseutil.exe /r E00") == "disk full"
    verdict = classify(exit_code=1, output=[robocopy], shell="cmd", script=line)
    assert verdict is not None and "free space on that drive" in verdict.text()
    assert rule_of(b"write: No space left on device", 1, "posix", "cp a b") is None


def sh(script: str) -> tuple[bytes, int]:
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=False)
    return done.stdout + done.stderr, done.returncode


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("no-such-program-here --x", "missing local file"),  # 127
        ("cat /nonexistent/plan-file.json", "missing local file"),
        ("echo 'error E2300 T:\\DRTemp is a folder on a Windows host' >&2; exit 2",
         "dr refused its input"),
        ("echo 'error E2600 run-1826 is not in the catalog' >&2; exit 2", "dr refused its input"),
        ("echo 'error E6100 the repository is locked by pid 7' >&2; exit 6", None),
        ("echo 'connection reset by peer' >&2; exit 1", None),
    ],
)  # fmt: skip
def test_what_the_orchestrator_prints_is_classified(script: str, expected: str | None) -> None:
    output, code = sh(script)
    assert rule_of(output, code, "posix", script) == expected


def test_exit_127_means_not_found_only_to_a_posix_shell() -> None:
    assert rule_of(b"", 127, "posix", "x") == "missing local file"
    assert rule_of(b"", 127, "powershell", "x") is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TransportConfigError("no transport for host 'EX1'"), "configuration"),
        (AuthenticationError("winrm EX1: the specified credentials were rejected"), "credentials"),
        (HostUnreachable("winrm EX1: ConnectionError: connection refused"), None),
        (TransportTimeout("winrm EX1: the WS-Man operation timed out"), None),
        (ProtocolError("winrm EX1: WinRMTransportError: Bad HTTP response 503"), None),
        (TransportError("local: cannot start /bin/sh: Resource temporarily unavailable"), None),
    ],
)
def test_transport_errors_retry_unless_a_retry_cannot_help(
    error: EngineError, expected: str | None
) -> None:
    verdict = classify(error=error)
    assert (verdict.rule.name if verdict else None) == expected


def test_dr_error_codes_no_retry_changes_follow_the_error_tree() -> None:
    """Bad input, not recoverable, workspace and lab errors (exit 2, 3, 5), a wrong key,
    damaged data and a run another tool took (a person copies its files) are permanent; a
    locked repository and the rest keep their retries."""
    for cls in all_error_classes():
        line = f"error E{cls.code} something".encode()
        expected = cls.exit_code in (2, 3, 5) or cls.code in (6200, 6300, 6400)
        verdict = classify(exit_code=cls.exit_code, output=[line], shell="posix", script="dr x")
        assert (verdict is not None) == expected, cls.__name__


def test_every_rule_says_why_and_what_to_do() -> None:
    for rule in RULES:
        assert rule.why and rule.todo and (rule.errors or rule.pattern or rule.exit_codes)


def test_the_verdict_names_the_line_that_shows_it(tmp_path: Path) -> None:
    output, code = lab_run(tmp_path, "powershell", "Get-ChildItem -Bogus 1")
    verdict = classify(exit_code=code, output=[output], shell="powershell", script="")
    assert verdict is not None
    assert "matches parameter name 'Bogus'" in verdict.evidence
    assert verdict.text().startswith("not retried: the command refused a parameter")


def test_reason_lines_are_the_last_five_of_stderr_else_stdout() -> None:
    err = b"".join(f"line {i}\r\n\r\n".encode() for i in range(8))
    assert reason_lines(err, b"out") == [f"line {i}" for i in range(3, 8)]
    assert reason_lines(b"  \n", b"first\nlast\n") == ["first", "last"]
    assert reason_lines(b"", b"") == []
    (long,) = reason_lines(b"x" * 5000, b"")
    assert len(long) == LINE_CHARS and long.endswith("…")
