"""A lab domain controller restored: DSRM, wbadmin, ntdsutil, replication, SYSVOL.

Each rule the lab enforces for ``dr plan forest`` has its own test; the whole restore,
planned from the catalog and run over WinRM with the console steps typed from the rendered
runbook, is ``tests/e2e/test_forest_restore.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ps_tinyhost import run_on as _run

from dr.errors import LabError
from dr.lab import faults
from dr.lab.estate import LAB_USER, Lab
from engine.errors import AuthenticationError
from engine.transports.base import Command
from engine.transports.credentials import Credential
from engine.transports.winrm import WinRMSettings, WinRMTransport

ROOT = Path(__file__).resolve().parents[2]
RESTORE = "wbadmin start systemstaterecovery -version:{v} -backupTarget:D: -machine:DC2016 -quiet"
MARK = ('ntdsutil "popups off" "activate instance ntds" "authoritative restore" '
        '"restore object \\"{dn}\\"" quit quit')  # fmt: skip


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab.create(tmp_path / "lab", ROOT / "examples" / "estate.yaml", seed=5)


def _cmd(dc: Any, line: str) -> tuple[int, str]:
    code, out, _ = _run(dc, line, "cmd")
    return code, out


def _backup(dc: Any) -> str:
    code, out = _cmd(dc, "wbadmin start systemstatebackup -backupTarget:D: -quiet")
    assert code == 0, out
    code, out = _cmd(dc, "wbadmin get versions -backupTarget:D: -machine:DC2016")
    assert code == 0, out
    return out.split("Version identifier: ")[-1].split()[0]


def _into_dsrm(dc: Any) -> None:
    assert _cmd(dc, "bcdedit /set {current} safeboot dsrepair")[0] == 0
    assert _cmd(dc, "shutdown /r /t 0")[0] == 0
    assert dc.load().mode == "dsrm"


def _out_of_dsrm(dc: Any) -> None:
    assert _cmd(dc, "bcdedit /deletevalue {current} safeboot")[0] == 0
    assert _cmd(dc, "shutdown /r /t 0")[0] == 0


def _user(lab: Lab) -> str:
    return next(o["distinguishedName"] for o in lab.directory_store.objects().values()
                if o["objectClass"] == "user")  # fmt: skip


def _transport(port: int, user: str, password: str) -> WinRMTransport:
    settings = WinRMSettings(
        host="127.0.0.1", port=port, scheme="http", auth="basic", allow_plaintext=True,
        operation_timeout=2, read_timeout=10,
    )  # fmt: skip
    return WinRMTransport(settings, Credential(user, password))


def test_wbadmin_get_versions_answers_in_its_own_format_with_its_identifier(lab: Lab) -> None:
    from dr.exchange.wbadmin import parse_versions

    dc = lab.dc("DC2016")
    identifier = _backup(dc)
    assert identifier == lab.now().strftime("%m/%d/%Y-%H:%M")
    _, listing = _cmd(dc, "wbadmin get versions -backupTarget:D: -machine:DC2016")
    (version,) = parse_versions(listing)
    assert version.version_identifier == identifier and "System State" in version.can_recover


def test_in_dsrm_a_domain_account_cannot_sign_in_over_winrm_only_the_dsrm_administrator(
    lab: Lab,
) -> None:
    dc = lab.dc("DC2016")
    _into_dsrm(dc)
    with lab.serving() as ports:
        with pytest.raises(AuthenticationError):
            _transport(ports["DC2016"], LAB_USER, lab.password).run(Command(script="'x'"), 20)
        local = _transport(ports["DC2016"], "DC2016\\Administrator", lab.dsrm_password("DC2016"))
        assert local.run(Command(script="'x'"), 20).ok
    _out_of_dsrm(dc)
    with lab.serving() as ports:
        assert _transport(ports["DC2016"], LAB_USER, lab.password).run(Command(script="'x'"), 20).ok


def test_wbadmin_restores_only_by_its_own_identifier_and_only_in_dsrm(lab: Lab) -> None:
    dc = lab.dc("DC2016")
    identifier = _backup(dc)
    code, out = _cmd(dc, RESTORE.format(v=identifier))
    assert code != 0 and "Directory Services Restore Mode" in out
    _into_dsrm(dc)
    code, out = _cmd(dc, RESTORE.format(v="artifact-7"))
    assert code != 0 and "version identifier" in out
    code, out = _cmd(dc, f"wbadmin start systemstaterecovery -version:{identifier} "
                         "-backupTarget:D: -quiet")  # fmt: skip
    assert code != 0 and "-machine" in out
    code, out = _cmd(dc, f"wbadmin start systemstaterecovery -version:{identifier} "
                         "-backupTarget:D: -machine:DC2016")  # fmt: skip
    assert code != 0 and "canceled" in out  # asks, and nobody answers a script
    assert _cmd(dc, RESTORE.format(v=identifier))[0] == 0


def test_with_its_catalog_lost_wbadmin_needs_the_backup_target(lab: Lab) -> None:
    dc = lab.dc("DC2016")
    identifier = _backup(dc)
    faults.lose_dc(lab, "DC2016")
    _into_dsrm(dc)
    code, out = _cmd(dc, f"wbadmin start systemstaterecovery -version:{identifier} -quiet")
    assert code != 0 and "-backupTarget" in out
    assert _cmd(dc, RESTORE.format(v=identifier))[0] == 0


def test_ntdsutil_scripted_needs_popups_off_and_raises_the_version_per_day(lab: Lab) -> None:
    from datetime import timedelta

    dc = lab.dc("DC2016")
    identifier = _backup(dc)
    dn = _user(lab)
    lab.set_now(lab.now() + timedelta(days=2, hours=1))
    _into_dsrm(dc)
    assert _cmd(dc, RESTORE.format(v=identifier))[0] == 0
    code, out = _cmd(dc, MARK.format(dn=dn).replace('"popups off" ', ""))
    assert code != 0 and "popups off" in out
    code, out = _cmd(dc, MARK.format(dn=dn).replace('"activate instance ntds" ', ""))
    assert code != 0 and "Active instance not set" in out
    code, out = _cmd(dc, MARK.format(dn=dn))
    assert code == 0 and "Increasing attribute version numbers by 200000" in out, out
    assert dc.state.copy["meta"]["versions"][dn.lower()] == 200001


def test_a_deletion_that_replicated_wins_unless_the_object_is_marked_authoritative(
    lab: Lab,
) -> None:
    dc = lab.dc("DC2016")
    identifier = _backup(dc)
    dn = _user(lab)
    faults.delete_object(lab, dn, None)
    for mark, back in ((False, False), (True, True)):
        _into_dsrm(dc)
        assert _cmd(dc, RESTORE.format(v=identifier))[0] == 0
        if mark:
            assert _cmd(dc, MARK.format(dn=dn))[0] == 0
        _out_of_dsrm(dc)
        assert (lab.directory_store.find(dn) is not None) is back
        assert dc.load().mode == "normal" and dc.state.copy is None


def test_authsysvol_in_a_targeted_restore_rolls_back_the_partners_sysvol(lab: Lab) -> None:
    """The wrong choice made visible: DC1 runs, and DC2016's older SYSVOL wins over it."""
    dc = lab.dc("DC2016")
    identifier = _backup(dc)
    newer = lab.directory_store.edit_policy()
    _into_dsrm(dc)
    assert _cmd(dc, RESTORE.format(v=identifier) + " -authsysvol")[0] == 0
    _out_of_dsrm(dc)
    assert lab.directory_store.meta()["sysvol"] == newer - 1, "the policy edit is lost"


def test_the_only_dc_restored_without_authsysvol_does_not_advertise(lab: Lab) -> None:
    dc = lab.dc("DC2016")
    identifier = _backup(dc)
    faults.lose_dc(lab, "DC2016")
    other = lab.dc("DC1")
    other.load().machine.present = False
    other.save()
    _into_dsrm(dc)
    assert _cmd(dc, RESTORE.format(v=identifier))[0] == 0
    _out_of_dsrm(dc)
    code, out = _cmd(dc, "dcdiag /s:DC2016 /test:Advertising")
    assert code != 0 and "failed test Advertising" in out
    _into_dsrm(dc)
    assert _cmd(dc, RESTORE.format(v=identifier) + " -authsysvol")[0] == 0
    _out_of_dsrm(dc)
    assert _cmd(dc, "dcdiag /s:DC2016 /test:Advertising")[0] == 0


def test_faults_refuse_what_is_not_there(lab: Lab) -> None:
    with pytest.raises(LabError, match="no object"):
        faults.delete_object(lab, "CN=Nobody,DC=corp,DC=contoso,DC=com", None)
    with pytest.raises(LabError, match="no user"):
        faults.delete_object(lab, None, "nobody")
    faults.lose_dc(lab, "DC2016")
    with pytest.raises(LabError, match="already unusable"):
        faults.lose_dc(lab, "DC2016")
    recorded = json.loads((lab.directory / "lab.json").read_text())["faults"]
    assert [f["kind"] for f in recorded] == ["lose-dc"]
