"""Hand-made plans for the step-library and document tests: several kinds, both families."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.plan import Plan, SecretRef, Sla, Step, Target, critical_path

LEGACY = {"exchange": "2003", "windows": "2003"}
MODERN = {"exchange": "2016", "windows": "2016"}
HOSTILE = "'; Remove-Item C:\\ -Recurse #"


def _step(sid: str, kind: str, host: str, params: dict, platform: dict, **extra) -> Step:
    return Step(id=sid, kind=kind, host=host, params=params, platform=platform, **extra)


def storage_group_plan(
    db: str = "Mailbox Store", temp: str = r"D:\dr-temp\First Storage Group"
) -> Plan:
    """Restore one 2003 store (full + incremental + live logs) and one 2016 database."""
    sg = "First Storage Group"
    steps = [
        _step(
            "check-chain.EX2003.SG1",
            "check-backup-chain",
            "orchestrator",
            {"db": f"EX2003/{sg}/{db}", "chain": ["v1", "v2"], "first_gen": 40, "last_gen": 52},
            LEGACY,
            estimate_seconds=60,
        ),
        _step(
            "approve.EX2003",
            "approve",
            "operator",
            {"reason": f"overwrite store {db} on EX2003", "role": "Exchange service owner"},
            LEGACY,
            needs=["check-chain.EX2003.SG1"],
            estimate_seconds=600,
        ),
        _step(
            "copy-aside.EX2003.SG1",
            "copy-existing-files",
            "EX2003",
            {"source": r"E:\Exchsrvr\mdbdata", "dest": r"F:\aside\mdbdata"},
            LEGACY,
            needs=["approve.EX2003"],
            estimate_seconds=900,
        ),
        _step(
            "dismount.EX2003.SG1.DB",
            "dismount-database",
            "EX2003",
            {"server": "EX2003", "sg": sg, "db": db},
            LEGACY,
            needs=["copy-aside.EX2003.SG1"],
            estimate_seconds=60,
        ),
        _step(
            "temp.EX2003.SG1",
            "prepare-temp-folder",
            "EX2003",
            {"path": temp, "sg": sg},
            LEGACY,
            needs=["approve.EX2003"],
            estimate_seconds=10,
        ),
        _step(
            "restore-db.EX2003.SG1.DB",
            "restore-database-backup",
            "EX2003",
            {
                "sg": sg,
                "db": db,
                "version": "v1",
                "backup_type": "full",
                "edb": r"E:\Exchsrvr\mdbdata\priv1.edb",
                "stm": r"E:\Exchsrvr\mdbdata\priv1.stm",
                "temp_folder": temp,
                "last_restore_set": False,
                "install_path": r"D:\Exchsrvr",
            },
            LEGACY,
            needs=["dismount.EX2003.SG1.DB", "temp.EX2003.SG1"],
            estimate_seconds=3600,
            resources=["sg:EX2003/First Storage Group"],
        ),
        _step(
            "restore-logs.EX2003.SG1",
            "restore-log-backup",
            "EX2003",
            {
                "sg": sg,
                "version": "v2",
                "prefix": "E00",
                "first_gen": 40,
                "last_gen": 52,
                "temp_folder": temp,
                "last_restore_set": True,
            },
            LEGACY,
            needs=["restore-db.EX2003.SG1.DB"],
            estimate_seconds=600,
            resources=["sg:EX2003/First Storage Group"],
        ),
        _step(
            "header.EX2003.SG1.DB",
            "verify-database-header",
            "EX2003",
            {
                "edb": r"E:\Exchsrvr\mdbdata\priv1.edb",
                "expect_state": "Clean Shutdown",
                "install_path": r"D:\Exchsrvr",
            },
            LEGACY,
            needs=["restore-logs.EX2003.SG1"],
            estimate_seconds=30,
        ),
        _step(
            "mount.EX2003.SG1.DB",
            "mount-database",
            "EX2003",
            {"server": "EX2003", "sg": sg, "db": db},
            LEGACY,
            needs=["header.EX2003.SG1.DB"],
            estimate_seconds=120,
        ),
        _step(
            "approve.dsrm",
            "approve",
            "operator",
            {"reason": "authoritative restore of deleted users", "role": "Directory owner"},
            MODERN,
            estimate_seconds=300,
        ),
        _step(
            "authoritative.DC1",
            "authoritative-restore",
            "DC1",
            {"server": "DC1", "objects": ["CN=Alice,OU=Staff,DC=corp,DC=example"]},
            MODERN,
            needs=["approve.dsrm"],
            estimate_seconds=300,
            destructive=True,
            secrets=[],
        ),
        _step(
            "dismount.EX2016.DB01",
            "dismount-database",
            "EX2016",
            {"server": "EX2016", "sg": "DB01", "db": "DB01"},
            MODERN,
            estimate_seconds=60,
        ),
        _step(
            "soft.EX2016.DB01",
            "soft-recovery",
            "EX2016",
            {
                "prefix": "E01",
                "log_path": r"L:\DB01",
                "system_path": r"L:\DB01",
                "db_path": r"D:\DB01",
            },
            MODERN,
            needs=["dismount.EX2016.DB01"],
            estimate_seconds=1800,
        ),
        _step(
            "ca.CA1",
            "restore-ca",
            "CA1",
            {"server": "CA1", "version": "v9", "backup_path": r"C:\CABackup"},
            MODERN,
            estimate_seconds=600,
            secrets=[
                SecretRef(
                    name="ca-backup-password",
                    location="vault:pki/ca-backup",
                    env="DR_SECRET_CA_BACKUP_PASSWORD",
                )
            ],
        ),
    ]
    seconds, path = critical_path(steps)
    return Plan(
        scenario="storage-group",
        target=Target(what=f"EX2003/{sg}/{db}", at=datetime(2024, 3, 1, 9, 30, tzinfo=UTC)),
        created_from="0" * 64,
        recoverable_point=datetime(2024, 3, 1, 9, 27, tzinfo=UTC),
        data_loss_window_seconds=180,
        rto_estimate_seconds=seconds,
        critical_path=path,
        warnings=["the differential of 2024-02-28 failed verification and is not used"],
        sla=Sla(rpo_seconds=900, rto_seconds=4 * 3600),
        facts={"chain": "v1 (full) + v2 (incremental)"},
        steps=steps,
    ).sealed()
