"""The lab's PowerShell interpreter: constructs, errors, exit codes, and library scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ps_tinyhost import TinyHost, ps

from dr.lab.ps import NativeResult
from dr.lab.ps.parse import ParseError, parse
from engine.plan import Step
from engine.render import render_step
from engine.runbook import Library

HOSTILE = "'; Remove-Item C:\\ -Recurse #"


@pytest.fixture
def host(tmp_path: Path) -> TinyHost:
    return TinyHost(tmp_path / "host")


def out(host: TinyHost, script: str) -> str:
    stdout, stderr, code = ps(host, script)
    assert code == 0, stderr
    assert stderr == "", stderr
    return stdout


# --- expressions and statements -----------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("'it''s'", "it's"),
        ('$x = 3; "x=$x, sub=$($x * 2) tab`tend"', "x=3, sub=6 tab\tend"),
        ("$a = @(1, 2, 3); $a.Count", "3"),
        ("'abc'.Length", "3"),
        ("$h = @{ Name = 'DB01'; n = 2 }; $h.name + $h['N']", "DB012"),
        ("'5' + 1", "51"),
        ("5 + '1'", "6"),
        ("10 / 4", "2.5"),
        ("7 % 3", "1"),
        ("(1..4) -join ','", "1,2,3,4"),
        ("@(1, 5, 9) -gt 3 -join ' '", "5 9"),
        ("'a,b' -split ','", "a\r\nb"),
        ("'E00.log' -replace '\\.log$', '.chk'", "E00.chk"),
        ("'{0:D4}|{1}' -f 7, 'x'", "0007|x"),
        ("$true -and -not $false", "True"),
        ("@('incremental', 'differential') -contains 'INCREMENTAL'", "True"),
        ("'db' -in @('DB', 'x')", "True"),
        ("'abc' -like 'a*'", "True"),
        ("'E000000001A.log' -match '^E00([0-9A-F]{8})\\.log$'; $Matches[1]", "True\r\n0000001A"),
        ("[int]'42' + 1", "43"),
        ("[bool]'False'", "True"),
        ("[string]$null -eq ''", "True"),
        ("'  Mixed  '.Trim().ToLower()", "mixed"),
        ("'E:\\Data\\priv1.edb'.Substring(0, 1)", "E"),
        ("'a.b.c'.Split('.')[1]", "b"),
        ("'abc'.StartsWith('AB')", "True"),
        ("[IO.Path]::GetFileName('E:\\x\\y.edb')", "y.edb"),
        ("[IO.Path]::Combine('E:\\x', 'y')", "E:\\x\\y"),
        ("[Environment]::MachineName", "LAB01"),
        ("[math]::Round(2.567, 1)", "2.6"),
        ("[array]::IndexOf(@('E', 'F'), 'F')", "1"),
        ("[guid]'76fe1ac4-15f7-4bcd-987e-8e1acb462fb7'", "76fe1ac4-15f7-4bcd-987e-8e1acb462fb7"),
        ("([datetime]'2024-05-15T11:40:00Z').ToString('yyyy-MM-dd HH:mm')", "2024-05-15 11:40"),
        ("[Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes('hi'))", "aGk="),
        ("$x = 1; $x += 2; $x -= 1; $x", "2"),
        ("$a = @(); $a += 'p'; $a += 'q'; $a[-1]", "q"),
        ("$o = New-Object PSObject -Property @{ A = 1 }; $o.A = 5; $o.a", "5"),
        ("$s = 0; foreach ($i in 1..5) { if ($i -eq 4) { break }; $s += $i }; $s", "6"),
        ("for ($i = 0; $i -lt 3; $i++) { if ($i -eq 1) { continue }; $i }", "0\r\n2"),
        ("$i = 0; while ($i -lt 3) { $i++ }; $i", "3"),
        ("$i = 0; do { $i++ } until ($i -ge 2); $i", "2"),
        ("if ($false) { 'a' } elseif ($true) { 'b' } else { 'c' }", "b"),
        ("function Add-One([int]$v) { $v + 1 }; Add-One 4", "5"),
        ("$null", ""),
        ("(Get-Item -LiteralPath 'c:\\users').FullName", "C:\\Users"),
        ("$x = @'\nraw $x\n'@; $x", "raw $x"),
    ],
)
def test_expressions_and_statements(host: TinyHost, script: str, expected: str) -> None:
    assert out(host, script) == (expected + "\r\n" if expected else "")


def test_pipeline_with_script_blocks(host: TinyHost) -> None:
    script = "1..6 | Where-Object { $_ % 2 -eq 0 } | ForEach-Object { $PSItem * 10 }"
    assert out(host, script) == "20\r\n40\r\n60\r\n"


def test_select_object_calculated_and_expanded(host: TinyHost) -> None:
    script = (
        "$r = @(@{ n = 'a'; v = 1 }, @{ n = 'b'; v = 2 }) | ForEach-Object {"
        " New-Object PSObject -Property $_ }\n"
        "$r | Select-Object -Property @{ n = 'Name'; e = { $_.n.ToUpper() } } -First 1 |"
        " ConvertTo-Json -Compress\n"
        "$r | Select-Object -ExpandProperty v -Last 1\n"
    )
    assert out(host, script) == '{"Name":"A"}\r\n2\r\n'


def test_convertto_json_is_windows_powershell_json(host: TinyHost) -> None:
    script = (
        '$r = New-Object PSObject -Property @{ Name = "it\'s"; Mounted = $true; Size = 5 }\n'
        "$r | ConvertTo-Json -Compress"
    )
    text = out(host, script).strip()
    assert "\\u0027" in text  # JavaScriptSerializer escapes the quote
    assert json.loads(text) == {"Name": "it's", "Mounted": True, "Size": 5}


def test_psobjects_print_in_list_form_and_bools_as_true(host: TinyHost) -> None:
    text = out(host, "New-Object PSObject -Property @{ Name = 'DB01'; Mounted = $true }")
    assert "Name    : DB01" in text and "Mounted : True" in text


def test_stdin_is_readable_through_console_in(host: TinyHost) -> None:
    stdout, _, code = ps(host, "$a = [Console]::In.ReadLine(); $b = [Console]::In.ReadToEnd()\n"
                         "\"$a|$b\"", b"first\r\nrest\r\n")  # fmt: skip
    assert code == 0
    assert stdout == "first|rest\r\n\r\n"


def test_console_streams_write_raw(host: TinyHost) -> None:
    stdout, stderr, _ = ps(host, "[Console]::Out.Write('a'); [Console]::Error.WriteLine('e')")
    assert stdout == "a" and stderr == "e\r\n"


def test_hostile_value_arrives_as_data(host: TinyHost) -> None:
    quoted = "'" + HOSTILE.replace("'", "''") + "'"
    script = f"$v = {quoted}\nWrite-Output $v\nTest-Path -LiteralPath 'C:\\Users'"
    stdout, _, code = ps(host, script)
    assert code == 0
    assert stdout == HOSTILE + "\r\nTrue\r\n"
    assert (host.fs.root / "C" / "Users").is_dir()


# --- native commands ----------------------------------------------------------------------


def _eseutil(argv: list[str], host: object, stdin: bytes) -> NativeResult:
    code = 0 if argv[:1] == ["/mh"] else 5
    return NativeResult(stdout="Extensible Storage Engine Utilities\r\nState: Clean Shutdown\r\n",
                        stderr="note\r\n", exit_code=code)  # fmt: skip


def test_native_output_becomes_strings_and_sets_lastexitcode(host: TinyHost) -> None:
    host.natives["eseutil"] = _eseutil
    script = (
        "$edb = 'E:\\Data\\priv 1.edb'\n"
        "$out = & 'C:\\Program Files\\Exchsrvr\\bin\\eseutil.exe' /mh $edb 2>&1\n"
        "($out -join ' ').Contains('Clean Shutdown')\n"
        "$out.Count\n"
        "eseutil /ml E00 > $null\n"
        '"code $LASTEXITCODE ok $?"\n'
    )
    stdout, stderr, code = ps(host, script)
    assert stdout == "True\r\n3\r\ncode 5 ok False\r\n", stderr
    assert host.calls[0] == ("eseutil", ["/mh", "E:\\Data\\priv 1.edb"])
    assert code == 0  # the last statement succeeded


def test_exit_code_follows_the_last_statement(host: TinyHost) -> None:
    host.natives["eseutil"] = _eseutil
    assert ps(host, "eseutil /ml E00")[2] == 1  # $? false after a failing program
    assert ps(host, "eseutil /ml E00; exit $LASTEXITCODE")[2] == 5
    assert ps(host, "'Hello'; Write-Error Oops")[2] == 1
    assert ps(host, "Write-Error Oops; 'Hello'")[2] == 0
    assert ps(host, "exit 7; 'never'")[:3:2] == ("", 7)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("3, 1, 2 | Sort-Object", "1\r\n2\r\n3"),
        ("(1, 2, 3 | Measure-Object -Sum).Sum", "6"),
        ("Write-Host 'shown'", "shown"),
        ("(Get-Date -Date '2024-05-15T11:40:00Z' -Format 'yyyy')", "2024"),
    ],
)
def test_core_cmdlets_bound_against_their_documented_parameters(
    host: TinyHost, script: str, expected: str
) -> None:
    assert out(host, script) == expected + "\r\n"


@pytest.mark.parametrize(
    "script",
    [
        "@('a', 'b') | Out-String",
        "Add-Content -LiteralPath 'C:\\a.txt' -Value 'x'",
        "('[1,2]' | ConvertFrom-Json).Count",
    ],
)
def test_a_cmdlet_without_documented_parameters_is_refused_not_guessed(
    host: TinyHost, script: str
) -> None:
    """The lab binds only against cmdlet data with a source (dr/lab/data/cmdlets): a cmdlet
    whose page is not there yet is not recognized, rather than accepted unchecked."""
    _stdout, stderr, code = ps(host, script)
    assert code == 1 and "is not recognized" in stderr


def test_unknown_program_is_not_recognized(host: TinyHost) -> None:
    stdout, stderr, code = ps(host, "nosuchtool.exe /x\n'after'")
    assert "The term 'nosuchtool.exe' is not recognized" in stderr
    assert stdout == "after\r\n" and code == 0


# --- errors -------------------------------------------------------------------------------


def test_non_terminating_error_continues_and_sets_status(host: TinyHost) -> None:
    stdout, stderr, code = ps(host, "Get-ChildItem -LiteralPath 'E:\\nope'\n\"ok=$?\"")
    assert stdout == "ok=False\r\n"
    assert stderr.startswith("Get-ChildItem : Cannot find path 'E:\\nope' because it does not")
    assert code == 0


def test_error_action_stop_is_caught_with_its_message(host: TinyHost) -> None:
    script = (
        "try { Get-ChildItem -LiteralPath 'E:\\nope' -ErrorAction Stop; 'no' }\n"
        "catch { 'caught: ' + $_.Exception.Message } finally { 'finally' }"
    )
    assert out(host, script) == (
        "caught: Cannot find path 'E:\\nope' because it does not exist.\r\nfinally\r\n"
    )


def test_error_action_preference_stop_ends_the_script(host: TinyHost) -> None:
    stdout, stderr, code = ps(
        host, "$ErrorActionPreference = 'Stop'\nGet-ChildItem -LiteralPath 'E:\\nope'\n'never'"
    )
    assert (stdout, code) == ("", 1)
    assert "Cannot find path" in stderr


def test_silently_continue_hides_the_error(host: TinyHost) -> None:
    script = "Get-ChildItem -LiteralPath 'E:\\nope' -ErrorAction SilentlyContinue; $Error.Count"
    assert out(host, script) == "1\r\n"


def test_throw_is_terminating_unless_caught(host: TinyHost) -> None:
    assert ps(host, "throw 'boom'; 'never'") == ("", "boom\r\n", 1)
    assert out(host, "try { throw 'boom' } catch { $_.Exception.Message }") == "boom\r\n"


def test_typed_catch_picks_the_matching_clause(host: TinyHost) -> None:
    script = (
        "try { nosuch-thing } catch [System.Management.Automation.CommandNotFoundException] {"
        " 'not found' } catch { 'other' }"
    )
    assert out(host, script) == "not found\r\n"


def test_statement_terminating_error_ends_only_that_statement(host: TinyHost) -> None:
    stdout, stderr, code = ps(host, "'abc'.Substring(5); 'next'")
    assert stdout == "next\r\n" and code == 0
    assert 'Exception calling "Substring" with "1" argument(s)' in stderr


def test_unknown_parameter_is_refused_with_powershells_text(host: TinyHost) -> None:
    _, stderr, code = ps(host, "Get-ChildItem -LiteralPath 'C:\\' -Bogus 1")
    assert "A parameter cannot be found that matches parameter name 'Bogus'" in stderr
    assert code == 1


def test_syntax_error_is_refused_before_anything_runs(host: TinyHost) -> None:
    stdout, stderr, code = ps(host, "New-Item -ItemType Directory -Path 'E:\\made'\nif ($x) {")
    assert (stdout, code) == ("", 1)
    assert "At line:2 char:" in stderr and "ParserError" in stderr
    assert "Missing closing '}'" in stderr
    assert not (host.fs.root / "E" / "made").exists()


def test_parse_error_names_the_line() -> None:
    with pytest.raises(ParseError) as caught:
        parse("$a = 1\n$b = (2 + \n")
    assert caught.value.line >= 2


@pytest.mark.parametrize(
    ("script", "construct"),
    [
        ("$a = 1; $a | & { process { $_ } }", "named_block_list"),
        ("switch ($a) { 1 { 'one' } }", "switch_statement"),
        ("$x = [xml]'<a/>'", "cast to [xml]"),
        ("[System.Net.Dns]::GetHostName()", "member [System.Net.Dns]::GetHostName"),
        ("New-Object System.Net.WebClient", "New-Object System.Net.WebClient"),
    ],
)
def test_unsupported_constructs_name_themselves(
    host: TinyHost, script: str, construct: str
) -> None:
    stdout, stderr, code = ps(host, script + "\n'after'")
    assert code == 1 and "after" not in stdout
    assert "dr lab: " in stderr
    assert construct in stderr


def test_no_powershell_on_windows_2000(tmp_path: Path) -> None:
    host = TinyHost(tmp_path / "h", ps_version=None)
    _stdout, stderr, code = ps(host, "'hi'")
    assert code == 9009 and "'powershell.exe' is not recognized" in stderr


# --- snap-ins and host cmdlets ------------------------------------------------------------


def _get_mailbox_database(call):  # type: ignore[no-untyped-def]
    from dr.lab.ps import PSObject

    yield PSObject.of(None, Name="DB01", Mounted=True)


def test_exchange_cmdlets_need_the_version_snapin(tmp_path: Path) -> None:
    host = TinyHost(tmp_path / "h", ps_version="2.0", exchange=2010)
    host.cmdlets["get-mailboxdatabase"] = _get_mailbox_database
    _, stderr, _ = ps(host, "Get-MailboxDatabase -Identity DB01")
    assert "The term 'Get-MailboxDatabase' is not recognized" in stderr
    script = (
        "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010\n"
        "(Get-MailboxDatabase -Identity DB01).Name"
    )
    assert ps(host, script) == ("DB01\r\n", "", 0)


def test_a_wrong_snapin_is_refused(tmp_path: Path) -> None:
    host = TinyHost(tmp_path / "h", ps_version="2.0", exchange=2010)
    _, stderr, _ = ps(host, "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.Admin")
    assert "is not installed on this computer" in stderr
    plain = TinyHost(tmp_path / "p", ps_version="5.1")
    _, stderr, _ = ps(plain, "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010")
    assert "No snap-ins have been registered for Windows PowerShell version 5." in stderr


def test_version_gates_cmdlets(tmp_path: Path) -> None:
    host = TinyHost(tmp_path / "h", ps_version="2.0")
    _, stderr, _ = ps(host, "@{a = 1} | ConvertTo-Json")
    assert "The term 'ConvertTo-Json' is not recognized" in stderr


# --- the step library ---------------------------------------------------------------------


def _rendered(kind: str, params: dict, platform: dict) -> str:
    library = Library.load()
    step = Step(id="s", kind=kind, host="LAB01", params=params, platform=platform)
    command = render_step(library.variant(step), step, library.kind(kind)).command
    assert command is not None and command.shell == "powershell"
    return command.script


_SAMPLE = {"volumes": ["E", "F"], "prefix": "E00", "backup_type": "full", "first_gen": 5}
_SAMPLE |= {"last_gen": 9}


def test_every_library_powershell_script_parses() -> None:
    """Every PowerShell command, verify and idempotency script of the library, rendered."""
    library = Library.load()
    count = 0
    for name in library.kinds():
        kind = library.kind(name)
        params = {p: _SAMPLE.get(p, "E:\\Data\\x") for p in kind.params}
        for variant in kind.variants:
            step = Step(id="s", kind=name, host="H", params=params, platform={})
            try:
                rendered = render_step(variant, step, kind)
            except Exception:  # a sample value the template refuses (not a single word...)
                continue
            for command in (rendered.command, rendered.verify, rendered.idempotency):
                if command is not None and command.shell == "powershell":
                    parse(command.script)
                    count += 1
    assert count > 100


def test_collect_backup_files_lists_sizes_and_digests(host: TinyHost) -> None:
    folder = host.fs.root / "E" / "dr-temp" / "full"
    (folder / "logs").mkdir(parents=True)
    (folder / "priv1.edb").write_bytes(b"database")
    (folder / "logs" / "E0000000001.log").write_bytes(b"log" * 10)
    script = _rendered("collect-backup-files", {"dest": "E:\\dr-temp\\full"}, {"exchange": "2016"})
    stdout, stderr, code = ps(host, script)
    assert code == 0, stderr
    files = {f["path"]: f for f in json.loads(stdout)}
    assert set(files) == {
        "E:\\dr-temp\\full\\priv1.edb",
        "E:\\dr-temp\\full\\logs\\E0000000001.log",
    }
    import hashlib

    assert (
        files["E:\\dr-temp\\full\\priv1.edb"]["sha256"] == hashlib.sha256(b"database").hexdigest()
    )
    assert files["E:\\dr-temp\\full\\logs\\E0000000001.log"]["size"] == 30


def test_list_logs_runs_eseutil_in_the_log_folder(host: TinyHost) -> None:
    (host.fs.root / "E" / "Logs").mkdir()
    seen: list[str] = []

    def eseutil(argv: list[str], h: object, stdin: bytes) -> NativeResult:
        seen.append(" ".join(argv))
        return NativeResult(stdout="No damaged log files were found.\r\n")

    host.natives["eseutil"] = eseutil
    script = _rendered("list-logs", {"prefix": "E00", "log_path": "E:\\logs"}, {"exchange": "2016"})
    stdout, stderr, code = ps(host, script)
    assert code == 0, stderr
    assert seen == ["/ml E00", "/ml E00.log"]
    assert "No damaged log files were found." in stdout


def test_output_written_before_exit_break_or_throw_is_kept(host: TinyHost) -> None:
    script = (
        'foreach ($i in 1..3) { "i=$i"; if ($i -eq 2) { break } }\n'
        "try { 'in try'; throw 'x' } catch { 'in catch' } finally { 'in finally' }\n"
        "if ($true) { 'before exit'; exit 4 }\n"
        "'never'\n"
    )
    stdout, _, code = ps(host, script)
    assert stdout == "i=1\r\ni=2\r\nin try\r\nin catch\r\nin finally\r\nbefore exit\r\n"
    assert code == 4


def test_transfer_scripts_are_routed_to_pslite_and_respect_locks(host: TinyHost) -> None:
    import base64
    import hashlib

    from engine.transports.winrm import FETCH_SCRIPT, HASH_SCRIPT, PUT_SCRIPT, ps_quote

    data = b"mail store pages" * 100
    put = PUT_SCRIPT.format(path=ps_quote("E:\\in\\db.edb"))
    (host.fs.root / "E" / "in").mkdir()
    stdout, stderr, code = ps(host, put, base64.b64encode(data) + b"\r\n")
    assert code == 0, stderr
    assert stdout.strip().lower() == hashlib.sha256(data).hexdigest()
    fetch = FETCH_SCRIPT.format(path=ps_quote("E:\\in\\db.edb"), offset=0, count=1 << 20)
    size, chunk = ps(host, fetch)[0].split()
    assert (int(size), base64.b64decode(chunk)) == (len(data), data)
    host.fs.lock("E:\\in\\db.edb", "store.exe")
    _, stderr, code = ps(host, HASH_SCRIPT.format(path=ps_quote("E:\\in\\db.edb")))
    assert code == 1 and "being used by another process" in stderr


def test_closing_the_output_stops_a_looping_script(host: TinyHost) -> None:
    import threading

    from dr.lab.ps import run_powershell

    output = run_powershell("while ($true) { Start-Sleep -Milliseconds 5 }", host)
    assert [next(output) for _ in range(3)] == [("stdout", b"")] * 3  # heartbeats
    workers = [t for t in threading.enumerate() if t.name == "dr-lab-powershell"]
    output.close()
    for worker in workers:
        worker.join(timeout=10)
    assert not any(worker.is_alive() for worker in workers)


def test_time_comes_from_the_host_clock(host: TinyHost) -> None:
    from datetime import datetime

    host.clock = lambda: datetime(2024, 5, 15, 11, 40, 5)  # type: ignore[attr-defined]
    slept: list[float] = []
    host.sleep = slept.append  # type: ignore[attr-defined]
    script = "[datetime]::Now.ToString('o'); Start-Sleep -Seconds 30; ([datetime]::UtcNow).Minute"
    assert out(host, script) == "2024-05-15T11:40:05.0000000\r\n40\r\n"
    assert slept == [30.0]
