"""Parameter binding against the real cmdlets' documented parameter sets and versions."""

from __future__ import annotations

import pytest

from dr.lab.ps.binding import (
    EXCHANGE_SHELL,
    FROM_PIPELINE,
    SWITCH,
    Arg,
    BindError,
    bind,
    canonical_name,
    known,
)
from dr.lab.ps.scan import ScriptBlockValue
from dr.lab.ps.versions import assumed_powershell, default_powershell

E2010 = frozenset({"Microsoft.Exchange.Management.PowerShell.E2010"})
E2013 = frozenset({"Microsoft.Exchange.Management.PowerShell.SnapIn"})


def named(name: str, value: object = SWITCH) -> list[Arg]:
    """``-Name value`` as written: the parameter alone, then its value."""
    return [Arg(name, SWITCH)] if value is SWITCH else [Arg(name, SWITCH), Arg(None, value)]


def fail(name: str, args: list[Arg], **kw: object) -> BindError:
    kw.setdefault("ps_version", "5.1")
    kw.setdefault("exchange_version", None)
    with pytest.raises(BindError) as info:
        bind(name, args, **kw)  # type: ignore[arg-type]
    return info.value


def ok(name: str, args: list[Arg], **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("ps_version", "5.1")
    kw.setdefault("exchange_version", None)
    return bind(name, args, **kw)  # type: ignore[arg-type]


# --- names, prefixes, aliases ------------------------------------------------------------


def test_a_unique_prefix_binds_and_names_are_case_insensitive() -> None:
    bound = ok("get-childitem", [*named("literalp", "C:\\x"), *named("RECURSE")])
    assert bound.cmdlet == "Get-ChildItem"
    assert bound.params == {"LiteralPath": "C:\\x", "Recurse": True}
    assert bound.parameter_set == "LiteralItems"


def test_an_ambiguous_prefix_names_the_candidates() -> None:
    error = fail("Get-ChildItem", named("F"))
    assert str(error) == (
        "Parameter cannot be processed because the parameter name 'F' is ambiguous. "
        "Possible matches include: -Filter -Force -File."
    )
    assert error.fqid.startswith("AmbiguousParameter,")


def test_an_unknown_parameter_is_powershells_error() -> None:
    error = fail("Get-ChildItem", named("Bogus"))
    assert error.message == "A parameter cannot be found that matches parameter name 'Bogus'."
    assert error.fqid == "NamedParameterNotFound,Get-ChildItem"


def test_parameter_aliases_from_the_data_bind() -> None:
    assert ok("Get-ChildItem", named("s")).params == {"Recurse": True}  # -Recurse alias s
    assert ok("Remove-Item", [*named("PSPath", "x")]).params == {"LiteralPath": "x"}


def test_a_non_switch_without_a_value_is_a_missing_argument() -> None:
    error = fail("Get-ChildItem", named("Path"))
    assert error.message == (
        "Missing an argument for parameter 'Path'. "
        "Specify a parameter of type 'System.String[]' and try again."
    )


def test_switches_alone_and_with_a_colon_value() -> None:
    assert ok("Get-ChildItem", named("Force")).params == {"Force": True}
    assert ok("Get-ChildItem", [Arg("Force", False, colon=True)]).params == {"Force": False}


def test_a_parameter_given_twice_is_refused() -> None:
    error = fail("Get-ChildItem", [*named("Force"), Arg("Force", True, colon=True)])
    assert error.fqid.startswith("ParameterAlreadyBound,")


def test_aliases_of_cmdlets_resolve_first() -> None:
    assert canonical_name("gci") == "Get-ChildItem"
    assert canonical_name("?") == "Where-Object"
    assert canonical_name("%") == "ForEach-Object"
    assert canonical_name("select") == "Select-Object"
    assert canonical_name("ECHO") == "Write-Output"
    assert canonical_name("cd") == "Set-Location"
    assert canonical_name("mount-database") == "Mount-Database"
    assert canonical_name("Get-Nothing") is None
    assert ok("ls", named("Force")).cmdlet == "Get-ChildItem"


# --- positions and parameter sets --------------------------------------------------------


def test_positional_values_bind_in_position_order() -> None:
    assert ok("Join-Path", [Arg(None, "C:\\a"), Arg(None, "b")]).params == {
        "Path": "C:\\a",
        "ChildPath": "b",
    }
    error = fail("Test-Path", [Arg(None, "x"), Arg(None, "y")])
    assert error.message == "A positional parameter cannot be found that accepts argument 'y'."


def test_parameters_in_no_common_set_cannot_be_resolved() -> None:
    error = fail(
        "Get-MailboxDatabase",
        [*named("Identity", "DB1"), *named("Server", "EX1"), *named("Status")],
        exchange_version=2016,
    )
    assert error.message == "Parameter set cannot be resolved using the specified named parameters."
    bound = ok(
        "Get-MailboxDatabase", [*named("Identity", "DB1"), *named("Status")], exchange_version=2016
    )
    assert bound.parameter_set == "Identity"


def test_missing_mandatory_parameters_are_reported_not_prompted() -> None:
    error = fail("Remove-Item", [])
    assert error.message == (
        "Cannot process command because of one or more missing mandatory parameters: Path."
    )
    assert error.fqid.startswith("MissingMandatoryParameter,")


def test_a_script_block_picks_the_set_whose_parameter_takes_one() -> None:
    bound = ok("Where-Object", [Arg(None, ScriptBlockValue("{ $_ }"))], pipeline={"*"})
    assert bound.parameter_set == "ScriptBlockSet"


def test_a_sets_provider_forms_are_one_set() -> None:
    # Test-Path prints its Path / LiteralPath sets once per provider; PowerShell has one each.
    assert ok("Test-Path", named("LiteralPath", "x")).parameter_set == "LiteralPath"
    assert ok("New-Item", [*named("ItemType", "Directory"), *named("Path", "x")]).params


# --- versions ----------------------------------------------------------------------------


def test_cmdlets_newer_than_the_host_are_not_recognized() -> None:
    error = fail("ConvertTo-Json", named("Compress"), ps_version="2.0", pipeline={"*"})
    assert error.fqid == "CommandNotFoundException"
    assert "The term 'ConvertTo-Json' is not recognized" in error.message
    assert ok("ConvertTo-Json", named("Compress"), ps_version="3.0", pipeline={"*"})
    assert not known("Get-FileHash", ps_version="3.0", exchange_version=None)
    assert known("Get-FileHash", ps_version="4.0", exchange_version=None)
    assert not known("Get-CimInstance", ps_version="2.0", exchange_version=None)


def test_parameters_newer_than_the_host_are_unknown_there() -> None:
    args = [*named("DomainName", "corp"), *named("Credential", "c"), *named("Restart")]
    error = fail("Add-Computer", args, ps_version="2.0")
    assert error.message == "A parameter cannot be found that matches parameter name 'Restart'."
    assert ok("Add-Computer", args, ps_version="3.0").params["Restart"] is True


def test_common_parameters_follow_the_powershell_version() -> None:
    base = named("LiteralPath", "x")
    assert (
        ok("Remove-Item", [*base, *named("ea", "Stop")], ps_version="2.0").params["ErrorAction"]
        == "Stop"
    )
    fail("Remove-Item", [*base, *named("PipelineVariable", "p")], ps_version="2.0")
    assert ok("Remove-Item", [*base, *named("PipelineVariable", "p")], ps_version="4.0")
    fail("Remove-Item", [*base, *named("InformationAction", "Stop")], ps_version="4.0")
    assert ok("Remove-Item", [*base, *named("InformationAction", "Stop")], ps_version="5.0")


# --- Exchange ----------------------------------------------------------------------------


def test_exchange_cmdlets_exist_only_on_an_exchange_host_of_their_versions() -> None:
    assert not known("Mount-Database", ps_version="5.1", exchange_version=None)
    assert not known("Mount-Database", ps_version="2.0", exchange_version=2003)
    assert known("Mount-Database", ps_version="2.0", exchange_version=2010)
    assert not known("Restore-Mailbox", ps_version="5.1", exchange_version=2016)  # 2010 only
    assert known("Restore-Mailbox", ps_version="2.0", exchange_version=2010)


def test_exchange_cmdlets_need_the_versions_shell_when_snapins_are_given() -> None:
    args = named("Server", "EX1")
    fail("Get-MailboxDatabase", args, ps_version="2.0", exchange_version=2010, snapins=E2013)
    assert ok("Get-MailboxDatabase", args, ps_version="2.0", exchange_version=2010, snapins=E2010)
    assert ok("Get-MailboxDatabase", args, exchange_version=2016, snapins=E2013)
    shell = frozenset({EXCHANGE_SHELL})
    assert ok("Get-MailboxDatabase", args, exchange_version=2016, snapins=shell)
    # None: the caller (the lab's interpreter) decides whether the shell is loaded.
    assert ok("Get-MailboxDatabase", args, exchange_version=2016, snapins=None)


def test_exchange_2007_uses_its_own_pages_and_nothing_else() -> None:
    args = named("StorageGroup", "SG1")
    assert ok("Get-MailboxDatabase", args, ps_version="2.0", exchange_version=2007)
    fail("Get-MailboxDatabase", args, ps_version="2.0", exchange_version=2010)  # gone in 2010
    # No Exchange 2007 page for Mount-Database was found: its 2010 form is not assumed.
    assert not known("Mount-Database", ps_version="2.0", exchange_version=2007)


def test_parameters_follow_the_exchange_version() -> None:
    assert ok("Get-MailboxDatabase", named("IncludePreExchange2010"), exchange_version=2010)
    fail("Get-MailboxDatabase", named("IncludePreExchange2010"), exchange_version=2016)
    # The current page drops 2010/2013 from -TargetMailbox; its earlier revision had them.
    args = [
        *named("SourceDatabase", "RDB1"),
        *named("SourceStoreMailbox", "guid"),
        *named("TargetMailbox", "alice"),
    ]
    assert ok("New-MailboxRestoreRequest", args, ps_version="4.0", exchange_version=2013)


def test_pipeline_input_satisfies_parameters_that_take_it() -> None:
    fail("Mount-Database", [], exchange_version=2016)  # -Identity is mandatory
    bound = ok("Mount-Database", [], exchange_version=2016, pipeline={"Identity"})
    assert bound.params == {"Identity": FROM_PIPELINE}
    assert ok("Mount-Database", [], exchange_version=2016, pipeline={"*"})
    error = fail("Mount-Database", [], exchange_version=2016, pipeline={"Force"})
    assert error.fqid.startswith("InputObjectNotBound,")


# --- Windows → PowerShell ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("windows", "default", "assumed"),
    [
        ("2000", None, None),
        ("2003", None, "2.0"),
        ("2008", None, "2.0"),
        ("2008 R2", "2.0", "2.0"),
        ("Windows Server 2012", "3.0", "3.0"),
        ("2012R2", "4.0", "4.0"),
        ("2016", "5.1", "5.1"),
        ("2019", "5.1", "5.1"),
    ],
)
def test_windows_versions_and_their_powershell(
    windows: str, default: str | None, assumed: str | None
) -> None:
    assert default_powershell(windows) == default
    assert assumed_powershell(windows) == assumed
