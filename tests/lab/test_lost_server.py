"""A lost server, its replacement machine, the directory and Exchange setup's recovery mode.

Each rule the lab enforces for ``dr plan server`` has its own test here; the whole rebuild,
planned from the catalog and run over WinRM, is ``tests/e2e/test_server_rebuild.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from ps_tinyhost import run_on as _run

from dr.lab import faults
from dr.lab.estate import LAB_USER, Lab
from dr.lab.exhost import ExchangeHost

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "C:\\Program Files\\Microsoft\\Exchange Server\\V15"
JOIN = (
    "$password = ConvertTo-SecureString 'x' -AsPlainText -Force\n"
    "$credential = New-Object System.Management.Automation.PSCredential("
    "'CORP\\dr-join', $password)\n"
    "Add-Computer -DomainName 'corp.contoso.com' -Credential $credential -Restart -Force "
    "-ErrorAction Stop\n"
)
NEW_LICENSE = "/IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF"


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab.create(tmp_path / "lab", ROOT / "examples" / "estate.yaml", seed=5)


def _replacement(lab: Lab, *, reset: bool = True) -> ExchangeHost:
    """EX2016 lost, Windows installed under its name, the 2016 CU23 media on D:."""
    faults.apply_host(lab, "lose-server", "EX2016")
    if reset:
        lab.directory_store.reset_account("EX2016")
    host = lab.host("EX2016")
    host.install_windows("EX2016")
    host.mount_media("D", "2016 CU23")
    host.save()
    return host


def _setup(host: ExchangeHost, *switches: str) -> tuple[int, str, str]:
    return _run(host, "& 'D:\\Setup.exe' " + " ".join(f"'{s}'" for s in switches) +
                "\nexit $LASTEXITCODE")  # fmt: skip


def test_a_lost_server_answers_nothing_and_keeps_its_directory_objects(lab: Lab) -> None:
    faults.apply_host(lab, "lose-server", "EX2016")
    host = lab.host("EX2016")
    assert not host.answering()
    assert not host.path("E:\\ExchangeDatabases\\DB01\\DB01.edb").exists()
    assert lab.directory_store.computer("EX2016") is not None
    assert lab.directory_store.server_object("EX2016") is not None
    with lab.serving() as ports, pytest.raises(requests.ConnectionError):
        requests.post(f"http://127.0.0.1:{ports['EX2016']}/wsman", data=b"<x/>",
                      auth=(LAB_USER, lab.password), timeout=5)  # fmt: skip


def test_a_fresh_windows_has_no_exchange_and_no_domain(lab: Lab) -> None:
    host = _replacement(lab)
    code, out, _ = _run(host, "(Get-WmiObject -Class Win32_ComputerSystem).Domain")
    assert (code, out.strip()) == (0, "WORKGROUP")
    code, _, err = _run(host, "Get-MailboxDatabase")
    assert code == 1 and "not recognized" in err
    assert host.path("E:\\").is_dir() and not any(host.path("E:\\").iterdir())


def test_joining_with_a_reset_account_keeps_the_account_and_restarts(lab: Lab) -> None:
    before = lab.directory_store.computer("EX2016")
    host = _replacement(lab)
    code, boot_before, _ = _run(host, "(Get-WmiObject -Class Win32_OperatingSystem).LastBootUpTime")
    code, out, err = _run(host, JOIN)
    assert code == 0, err
    _, boot_after, _ = _run(host, "(Get-WmiObject -Class Win32_OperatingSystem).LastBootUpTime")
    assert boot_after != boot_before and boot_after.strip().endswith(".000000+000")
    code, out, _ = _run(host, "(Get-Service -Name Netlogon).Status")
    assert (code, out.strip()) == (0, "Running")
    after = lab.directory_store.computer("EX2016")
    assert after is not None and before is not None
    assert after["objectGUID"] == before["objectGUID"]


def test_joining_over_an_account_that_was_not_reset_is_refused(lab: Lab) -> None:
    host = _replacement(lab, reset=False)
    code, _, err = _run(host, JOIN)
    assert code == 1 and "Re-using the account was blocked by security policy" in err


def test_plain_text_needs_force_and_a_credential_needs_a_secure_string(lab: Lab) -> None:
    host = _replacement(lab)
    code, _, err = _run(host, "ConvertTo-SecureString 'x' -AsPlainText")
    assert code == 1 and "Force parameter" in err
    code, _, err = _run(host, "New-Object System.Management.Automation.PSCredential('u', 'x')")
    assert code == 1 and "Cannot find an overload" in err


def test_recover_server_installs_exchange_and_leaves_the_databases_to_restore(lab: Lab) -> None:
    host = _replacement(lab)
    assert _run(host, JOIN)[0] == 0
    code, out, _ = _setup(host, NEW_LICENSE, "/Mode:RecoverServer", f"/TargetDir:{INSTALL}",
                          "/DoNotStartTransport")  # fmt: skip
    assert code == 0, out
    assert "completed successfully" in out
    assert host.path(INSTALL + "\\Bin\\ExSetup.exe").exists()
    code, out, _ = _run(host, "Get-MailboxDatabase -Status | ForEach-Object { $_.Mounted }")
    assert code == 0 and set(out.split()) == {"False"}


@pytest.mark.parametrize(
    ("switches", "said"),
    [
        (("/IAcceptExchangeServerLicenseTerms", "/Mode:RecoverServer"), "no longer available"),
        ((NEW_LICENSE, "/Mode:Install", "/Roles:Mailbox"), "already exists in Active Directory"),
        ((NEW_LICENSE, "/Mode:RecoverServer", "/TargetDir:D:\\Exchange"), "/TargetDir must be"),
    ],
)
def test_setup_refuses_what_recovery_mode_refuses(
    lab: Lab, switches: tuple[str, ...], said: str
) -> None:
    host = _replacement(lab)
    assert _run(host, JOIN)[0] == 0
    code, out, _ = _setup(host, *switches)
    assert code != 0 and said in out, out
    assert not host.machine.installed


def test_setup_refuses_a_machine_outside_the_domain(lab: Lab) -> None:
    host = _replacement(lab)
    code, out, _ = _setup(host, NEW_LICENSE, "/Mode:RecoverServer")
    assert code == 1 and "isn't a member of a domain" in out


def test_setup_refuses_a_recreated_computer_account(lab: Lab) -> None:
    faults.apply_host(lab, "delete-computer-account", "EX2016")
    host = _replacement(lab, reset=False)
    assert _run(host, JOIN)[0] == 0  # the join makes a new account of the same name
    code, out, _ = _setup(host, NEW_LICENSE, "/Mode:RecoverServer")
    assert code == 1 and "was deleted and made again" in out


def test_setup_runs_only_from_its_media(lab: Lab) -> None:
    host = _replacement(lab)
    code, _, err = _run(host, "& 'C:\\Setup.exe' /Mode:RecoverServer")
    assert code == 1 and "not recognized" in err


def test_the_domain_controller_answers_dcdiag_and_nltest(lab: Lab) -> None:
    dc = lab.endpoint("DC1")
    code, out, _ = _run(dc, "dcdiag /s:DC1 /test:Advertising /test:Replications", "cmd")
    assert code == 0 and "DC1 passed test Replications" in out and "failed test" not in out
    code, out, _ = _run(dc, "nltest /dsgetdc:corp.contoso.com", "cmd")
    assert code == 0 and "The command completed successfully" in out
    code, out, _ = _run(dc, "nltest /dsgetdc:example.org", "cmd")
    assert code == 1355 and "ERROR_NO_SUCH_DOMAIN" in out
    code, out, _ = _run(dc, "dcdiag /test:NoSuchTest", "cmd")
    assert code != 0 and "not a valid test name" in out


def test_dsquery_finds_a_computer_account_until_it_is_deleted(lab: Lab) -> None:
    dc = lab.endpoint("DC1")
    code, out, _ = _run(dc, "dsquery computer domainroot -o dn -name EX2016", "cmd")
    assert (code, out) == (0, '"CN=EX2016,CN=Computers,DC=corp,DC=contoso,DC=com"\r\n')
    faults.apply_host(lab, "delete-computer-account", "EX2016")
    code, out, _ = _run(dc, "dsquery computer domainroot -o dn -name EX2016", "cmd")
    assert (code, out) == (0, "")
