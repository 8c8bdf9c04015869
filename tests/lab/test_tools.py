"""Native tools' command lines against their documented syntax (tools.json)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dr.lab.ps.tools import ToolUsageError, check, parse, tool_name


@dataclass
class Host:
    exchange_version: int | None
    windows: str | None
    exchange_cu: int | None = None


def run(tool: str, *argv: str, exchange: int | None = 2016, cu: int | None = None):  # type: ignore[no-untyped-def]
    return parse(tool, list(argv), exchange_version=exchange, windows="2016", exchange_cu=cu)


def refused(
    tool: str, *argv: str, exchange: int | None = 2016, cu: int | None = None
) -> ToolUsageError:
    with pytest.raises(ToolUsageError) as info:
        run(tool, *argv, exchange=exchange, cu=cu)
    return info.value


def test_tool_names_from_paths() -> None:
    assert tool_name("C:\\Program Files\\Exchsrvr\\bin\\eseutil.exe") == "eseutil"
    assert tool_name('"D:\\Setup.EXE"') == "setup"
    assert tool_name("robocopy") == "robocopy"


# --- eseutil -----------------------------------------------------------------------------


def test_eseutil_modes_and_path_options_attached_or_next() -> None:
    call = run("eseutil.exe", "/r", "E00", "/l", "F:\\Logs", "/sC:\\t", "/d", "E:\\Data", "/a")
    assert call.mode == "/r"
    assert call.switches == {"/l": "F:\\Logs", "/s": "C:\\t", "/d": "E:\\Data", "/a": True}
    assert call.operands == ["E00"]
    assert run("eseutil", "/mh", "x.edb").mode == "/mh"
    assert run("eseutil", "/ml", "E00").mode == "/ml"
    assert run("eseutil", "/cc", "C:\\temp").mode == "/cc"
    assert run("eseutil", "/p", "x.edb", "/o").switches == {"/o": True}
    assert run("eseutil", "/k", "x.edb").operands == ["x.edb"]


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        ((), "Usage Error: No mode specified."),
        (("mh", "x.edb"), "Usage Error: Mode selection must be preceded by '-' or '/'."),
        (("/q", "x.edb"), "Usage Error: Invalid mode."),
        (("/r", "E00", "/zz"), "Usage Error: Invalid option '/zz'."),
        (("/mh",), "Usage Error: Missing database/filename specification."),
        (("/mh", "a.edb", "b.edb"), "Usage Error: Duplicate database/filename specification."),
    ],
)
def test_eseutil_usage_errors_are_its_own(argv: tuple[str, ...], first_line: str) -> None:
    error = refused("eseutil", *argv)
    assert error.text.splitlines()[0] == first_line
    assert error.exit_code == -1003  # JET_errInvalidParameter
    assert "JET_errInvalidParameter" in error.text


# --- robocopy ----------------------------------------------------------------------------


def test_robocopy_options_and_lists() -> None:
    call = run("robocopy", "S", "D", "/E", "/XD", "D", "X", "/COPY:DAT", "/R:2", "/W:10", "/NP")
    assert call.operands == ["S", "D"]
    assert call.switches["/xd"] == "D X"
    assert call.switches["/copy"] == "DAT"
    listing = run("robocopy", "S", "D", "/L", "/NJH", "/NJS", "/NDL", "/XO", "/XN", "/XC")
    assert listing.switches["/xc"] is True
    assert run("robocopy", "S", "D", "*.log", "/MIR", "/MOV").operands == ["S", "D", "*.log"]


def test_robocopy_refuses_unknown_or_malformed_options() -> None:
    error = refused("robocopy", "S", "D", "/FOO")
    assert (error.text, error.exit_code) == ('ERROR : Invalid Parameter #3 : "/FOO"', 16)
    assert refused("robocopy", "S", "D", "/R:x").exit_code == 16
    assert refused("robocopy", "S", "D", "/COPY:DAZ").exit_code == 16
    assert "/MT" in refused("robocopy", "S", "D", "/MT:8", "/IPG:5").text
    assert "Destination" in refused("robocopy", "S", "/E").text


# --- wbadmin -----------------------------------------------------------------------------


def test_wbadmin_documented_forms() -> None:
    call = run("wbadmin", "start", "systemstaterecovery", "-version:05/14/2024-21:00", "-quiet")
    assert call.mode == "start systemstaterecovery"
    assert call.switches == {"-version": "05/14/2024-21:00", "-quiet": True}
    assert run("wbadmin", "start", "systemstatebackup", "-backupTarget:E:", "-quiet")
    assert run("wbadmin", "get", "versions", "-backupTarget:\\\\nas\\b", "-machine:DC1")


def test_wbadmin_refusals() -> None:
    assert (
        "MM/DD/YYYY-HH:MM"
        in refused("wbadmin", "start", "systemstaterecovery", "-version:artifact-3").text
    )
    assert (
        "-machine"
        in refused(
            "wbadmin", "start", "systemstaterecovery", "-version:05/14/2024-21:00", "-machine:X"
        ).text
    )
    assert "-version" in refused("wbadmin", "start", "systemstaterecovery", "-quiet").text
    assert "-backuptarget" in refused("wbadmin", "start", "systemstatebackup", "-quiet").text
    assert "not a valid parameter" in refused("wbadmin", "get", "versions", "-bogus").text


# --- Exchange setup ----------------------------------------------------------------------

OLD = "/IAcceptExchangeServerLicenseTerms"
NEW = "/IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF"


def test_the_license_switch_changes_with_2016_cu22_and_2019_cu11() -> None:
    assert "no longer available" in refused("setup", OLD, "/Mode:RecoverServer", cu=23).text
    assert run("setup", OLD, "/Mode:RecoverServer", cu=21).mode == "RecoverServer"
    assert run("setup", NEW, "/m:RecoverServer", "/DoNotStartTransport", cu=22)
    assert "does not exist" in refused("setup", NEW, "/m:RecoverServer", exchange=2019, cu=10).text
    assert run("setup", NEW, "/m:RecoverServer", exchange=2019, cu=11)
    # An unknown CU counts as the latest: the old form is refused.
    assert refused("setup", OLD, "/Mode:RecoverServer").exit_code == 1


def test_setup_needs_a_license_switch_and_a_known_mode() -> None:
    assert "license terms" in refused("setup", "/m:RecoverServer", exchange=2013).text
    assert run("setup", OLD, "/m:RecoverServer", "/TargetDir:C:\\x", exchange=2013)
    assert "/Mode" in refused("setup", OLD, "/Mode:Bogus", exchange=2013).text
    assert "not a valid setup switch" in refused("setup", OLD, "/Bogus", exchange=2013).text


def test_legacy_setup_takes_disasterrecovery_and_2010_is_not_checked() -> None:
    assert run("setup", "/disasterrecovery", exchange=2003).mode == "disasterrecovery"
    refused("setup", "/m:RecoverServer", exchange=2003)
    assert run("setup.com", "/m:RecoverServer", exchange=2010).mode is None  # no source found


# --- the others and check() --------------------------------------------------------------


def test_bcdedit_netdom_diskshadow_certutil_ntdsutil() -> None:
    assert run("bcdedit", "/set", "{current}", "safeboot", "dsrepair").mode == "/set"
    refused("bcdedit", "/bogus")
    assert run("netdom", "resetpwd", "/server:DC1").mode == "resetpwd"
    refused("netdom", "bogus")
    assert run("diskshadow", "/s", "x.dsh").switches == {"-s": "x.dsh"}
    refused("diskshadow", "/x")
    assert run("certutil", "-f", "-p", "pw", "-backupKey", "C:\\b").mode == "-backupkey"
    refused("certutil", "-hashfile", "x", "SHA999")
    assert run("ntdsutil", "popups off", "quit")
    refused("ntdsutil", "popups maybe")


def test_certutil_ca_backup_and_restore_verbs_take_their_documented_options() -> None:
    # certutil.md: -restore BackupDirectory [-f] [-config Machine\CAName] [-p Password]
    restore = run("certutil", "-f", "-p", "pw", "-restore", "C:\\b", exchange=None)
    assert (restore.mode, restore.switches, restore.operands) == (
        "-restore",
        {"-f": True, "-p": "pw"},
        ["C:\\b"],
    )
    assert "option -t is not valid" in str(refused("certutil", "-t", "5", "-restore", "C:\\b"))
    assert "expected CertUtil [Options] -restore BackupDirectory" in str(
        refused("certutil", "-f", "-restore")
    )
    refused("certutil", "-restore", "C:\\b", "C:\\c")  # one directory only
    refused("certutil", "-p", "pw", "-backupDB", "C:\\d")  # -backupDB takes no password
    assert run("certutil", "-f", "-backupDB", "C:\\d", "Incremental", "KeepLog").operands == [
        "C:\\d",
        "Incremental",
        "KeepLog",
    ]
    assert run("certutil", "-ping").mode == "-ping"  # a verb outside the data: unverified


AUTHORITATIVE = 'restore object "CN=Alice Smith,OU=Staff,DC=corp,DC=example,DC=com"'


def ntdsutil(windows: str, *commands: str):  # type: ignore[no-untyped-def]
    return parse(
        "ntdsutil", list(commands), exchange_version=None, windows=windows, exchange_cu=None
    )


def test_ntdsutil_commands_follow_its_menus_as_microsoft_documents_them() -> None:
    # the runbook's line (2008+), and the same with the documented short forms
    ntdsutil(
        "2016",
        "popups off",
        "activate instance ntds",
        "authoritative restore",
        AUTHORITATIVE,
        "quit",
        "quit",
    )
    ntdsutil(
        "2008R2", "popups off", "ac i ntds", "au r", 'restore subtree "OU=Staff,DC=corp"', "q", "q"
    )
    ntdsutil("2016", "authoritative restore", 'restore object "CN=A,DC=x" verinc 100000')
    ntdsutil("2003", "authoritative restore", AUTHORITATIVE, "quit", "quit")
    # a menu the data does not describe is not checked past its name
    ntdsutil(
        "2016",
        "metadata cleanup",
        "connections",
        "connect to server DC1",
        "quit",
        "select operation target",
    )


@pytest.mark.parametrize(
    ("windows", "commands"),
    [
        ("2016", ("popups off", "bogus command")),  # not a top-level command in 2008+
        ("2016", ("authoritative restore", "restore object CN=Alice Smith,DC=x")),  # DN unquoted
        ("2003", ("authoritative restore", 'restore object "CN=A,DC=x" verinc many')),
        ("2003", ("authoritative restore", "restore everything")),
        ("2003", ("popups maybe",)),
    ],
)
def test_ntdsutil_refuses_what_its_menus_do_not_take(
    windows: str, commands: tuple[str, ...]
) -> None:
    with pytest.raises(ToolUsageError, match="Error parsing Input - Invalid Syntax"):
        ntdsutil(windows, *commands)


def test_check_takes_the_hosts_versions_and_cu() -> None:
    check("setup.exe", [NEW, "/m:RecoverServer"], Host(2016, "2016", exchange_cu=23))
    with pytest.raises(ToolUsageError):
        check("setup.exe", [OLD, "/m:RecoverServer"], Host(2016, "2016", exchange_cu=23))
    check("setup.exe", [OLD, "/m:RecoverServer"], Host(2016, "2016", exchange_cu=21))
    check("unknown-tool.exe", ["/anything"], Host(None, "2016"))  # not described: not checked
