"""Backup procedures as plans: the right step kinds and parameters per set type and family."""

from __future__ import annotations

import json

import pytest

from dr.backup.procedure import backup_plan
from dr.errors import ParameterError
from dr.model.inventory import Inventory
from dr.model.sets import BackupSet
from engine.executor import build_specs
from engine.runbook import Library


def _set(inv: Inventory, name: str) -> BackupSet:
    return next(s for s in inv.backup_sets if s.name == name)


def _kinds(inv: Inventory, name: str, backup_type: str) -> list[str]:
    return [s.kind for s in backup_plan(inv, _set(inv, name), backup_type).steps]  # type: ignore[arg-type]


def test_2016_full_is_a_vss_backup_per_database_with_its_header(estate: Inventory) -> None:
    plan = backup_plan(estate, _set(estate, "ex2016-exchange"), "full")
    per_db = ["check-circular-logging", "list-logs", "mailbox-counts", "vss-backup",
              "dump-database-header", "collect-backup-files"]  # fmt: skip
    assert [s.kind for s in plan.steps] == per_db * 2
    vss = plan.step("vss-backup.EX2016.DB01")
    counts = plan.step("mailbox-counts.EX2016.DB01.DB01")
    assert counts.params == {"server": "EX2016", "sg": "DB01", "db": "DB01"}
    assert vss.needs == [counts.id], "counted just before the snapshot"
    assert vss.params["backup_type"] == "full"
    assert vss.params["edb"] == r"E:\ExchangeDatabases\DB01\DB01.edb"
    assert vss.params["volumes"] == ["E", "F"]
    assert vss.params["dest"] == r"T:\DRTemp\dr-backup\ex2016-exchange\DB01"
    assert vss.platform == {"windows": "2016", "exchange": "2016"}
    assert "host-backup:EX2016" in vss.resources
    header = plan.step("dump-database-header.EX2016.DB01")
    assert header.params["edb"] == r"T:\DRTemp\dr-backup\ex2016-exchange\DB01\DB01.edb"
    assert header.needs == [vss.id]


@pytest.mark.parametrize("backup_type", ["incremental", "differential"])
def test_2016_log_backups_copy_logs_only(estate: Inventory, backup_type: str) -> None:
    plan = backup_plan(estate, _set(estate, "ex2016-exchange"), backup_type)  # type: ignore[arg-type]
    kinds = [s.kind for s in plan.steps]
    assert "vss-backup" not in kinds and "dump-database-header" not in kinds
    log = plan.step("log-backup.EX2016.DB02")
    assert log.params["prefix"] == "E01" and log.params["backup_type"] == backup_type
    check = plan.step("check-circular-logging.EX2016.DB02")
    assert check.params["backup_type"] == backup_type and check.params["db"] == "DB02"


@pytest.mark.parametrize("backup_type", ["full", "copy", "incremental", "differential"])
def test_2003_storage_groups_use_ntbackup(estate: Inventory, backup_type: str) -> None:
    plan = backup_plan(estate, _set(estate, "ex2003-exchange"), backup_type)  # type: ignore[arg-type]
    nt = plan.step("ntbackup-online.EX2003.First-Storage-Group")
    assert nt.params == {
        "server": "EX2003",
        "sg": "First Storage Group",
        "backup_type": backup_type,
        "dest": r"T:\DRTemp\dr-backup\ex2003-exchange\First-Storage-Group",
    }
    assert nt.platform["exchange"] == "2003"
    counted = [s for s in plan.steps if s.kind == "mailbox-counts"]
    stores = {"Mailbox Store (EX2003)", "Public Folder Store (EX2003)", "Sales Store"}
    assert {s.params["db"] for s in counted} == stores
    assert set(nt.needs) == {s.id for s in counted if s.params["sg"] == "First Storage Group"}
    assert {p["storage_group"] for p in plan.facts["parts"]} == {
        "EX2003/First Storage Group",
        "EX2003/Second Storage Group",
    }


def test_single_step_sets(estate: Inventory) -> None:
    assert _kinds(estate, "dc1-system-state", "full") == [
        "system-state-backup", "collect-backup-files"]  # fmt: skip
    assert _kinds(estate, "ex2003-iis-metabase", "full")[0] == "metabase-backup"
    kms = backup_plan(estate, _set(estate, "kms1-kms"), "full").steps[0]
    assert kms.kind == "kms-export"
    assert kms.params["kms_path"] == r"C:\Program Files\Exchsrvr\KMSDATA"


def test_the_ca_password_is_a_reference_never_a_value(estate: Inventory) -> None:
    plan = backup_plan(estate, _set(estate, "dc1-ca"), "full")
    step = plan.steps[0]
    assert step.kind == "ca-backup"
    assert [s.name for s in step.secrets] == ["ca-certificate-password"]
    assert step.secrets[0].location.startswith("KeePass DR vault")
    spec = build_specs(plan, Library.load())[step.id]
    assert spec.command is not None
    assert "$env:DR_SECRET_CA_CERTIFICATE_PASSWORD" in spec.command.script
    assert spec.secrets[0].source == "DR_CA_CERTIFICATE_PASSWORD"
    assert "password" not in json.dumps(step.params)


@pytest.mark.parametrize(
    ("name", "backup_type"),
    [("ex2016-exchange", "full"), ("ex2016-exchange", "incremental"),
     ("ex2003-exchange", "copy"), ("dc1-system-state", "full"), ("dc1-ca", "full"),
     ("ex2003-iis-metabase", "full"), ("ex2016-system-state", "full"), ("kms1-kms", "full")],
)  # fmt: skip
def test_every_step_renders_for_its_host(estate: Inventory, name: str, backup_type: str) -> None:
    plan = backup_plan(estate, _set(estate, name), backup_type)  # type: ignore[arg-type]
    specs = build_specs(plan, Library.load())
    # a command for every step, except on a host without PowerShell (Windows 2000's KMS1),
    # where the step is a person's, with instructions (issue 16)
    no_powershell = name == "kms1-kms"
    for spec in specs.values():
        assert spec.command is not None or (no_powershell and spec.instructions), spec.id


def test_hostile_names_reach_the_shell_as_data(estate: Inventory) -> None:
    sg = estate.server("EX2003").storage_groups[0]
    bad = sg.model_copy(update={"name": "SG'; Remove-Item C:\\ -Recurse #"})
    server = estate.server("EX2003").model_copy(update={"storage_groups": [bad]})
    inv = estate.model_copy(update={"servers": [server]})
    bset = BackupSet(name="x", host="EX2003", type="exchange", covers=["all"])
    plan = backup_plan(inv, bset, "full")
    specs = build_specs(plan, Library.load())
    step = next(s for s in plan.steps if s.kind == "ntbackup-online")
    assert " " not in step.id
    script = specs[step.id].command.script  # type: ignore[union-attr]
    assert "$sg = 'SG''; Remove-Item C:\\ -Recurse #'" in script


@pytest.mark.parametrize(
    ("name", "backup_type", "message"),
    [("ex2016-exchange", "weekly", "--type"), ("ex2016-system", "full", "system set"),
     ("dc1-system-state", "incremental", "only full")],
)  # fmt: skip
def test_refusals(estate: Inventory, name: str, backup_type: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        backup_plan(estate, _set(estate, name), backup_type)  # type: ignore[arg-type]
