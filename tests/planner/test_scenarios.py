"""Scenario plans on the recorded estate: both Exchange families, every scenario, refusals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from dr.errors import MissingSecret, NameMismatch, NotRecoverable, VersionMismatch
from dr.model.inventory import Inventory
from dr.planner import (
    plan_alternate,
    plan_database,
    plan_drill,
    plan_forest,
    plan_mailbox,
    plan_message,
    plan_offline,
    plan_server,
    plan_site,
)
from dr.planner.facts import BackupVersion, MemoryFacts
from engine.plan import Plan, validate_dag
from tests.planner.histories import (
    at,
    estate,
    estate_facts,
    host_artifact,
    mailbox_counts,
)

EX2003_MAIL = "First Storage Group/Mailbox Store (EX2003)"
EX2003_SALES = "Second Storage Group/Sales Store"


def kinds(plan: Plan) -> list[str]:
    return [s.kind for s in plan.steps]


def well_formed(plan: Plan) -> None:
    validate_dag(plan.steps)
    for step in plan.steps:
        if step.host not in ("operator", "orchestrator") and step.kind != "manual":
            server = _server(estate(), step.host)
            if server is not None and server.exchange_version is not None:
                assert step.platform["exchange"] == str(server.exchange_version), step.id
        if step.destructive:
            assert any(plan.step(n).kind == "approve" for n in step.needs), step.id
        for ref in step.secrets:
            assert ref.location  # a reference, never a value
    assert plan.critical_path and plan.rto_estimate_seconds > 0


def _server(inv: Inventory, name: str) -> object | None:
    for s in inv.servers:
        if s.name == name:
            return s
    for forest in inv.recovery_forests:
        for r in forest.servers:
            if r.name == name:
                return r
    return None


# --------------------------------------------------------------------------- B3 / B4


@pytest.mark.parametrize(
    ("db", "replay", "family_kinds"),
    [
        (EX2003_MAIL, "hard-recovery", {"allow-file-restore", "copy-existing-files"}),
        ("DB01", "soft-recovery", {"allow-file-restore", "copy-database-files"}),
    ],
)
def test_database_to_point_of_failure_both_families(
    db: str, replay: str, family_kinds: set[str]
) -> None:
    plan = plan_database(estate_facts(), [db])
    well_formed(plan)
    order = kinds(plan)
    assert replay in order and family_kinds <= set(order)
    copy = "copy-database-files" if replay == "soft-recovery" else "copy-existing-files"
    expected = [
        "check-backup-chain",
        "fetch-artifacts",
        # both families: dismount, let the restore overwrite, then copy the files aside
        # (Microsoft's checklist, "Recovering an Exchange Database", bb124040(v=exchg.65))
        "dismount-database",
        "allow-file-restore",
        copy,
        "prepare-temp-folder",
        "restore-database-backup",
        "restore-log-backup",
        # 2007+: the server's logs are copied to the restore folder; 2000/2003: eseutil /cc
        # replays them where they are (the open Enn.log is held by the group's other stores)
        *(["copy-live-logs"] if replay == "soft-recovery" else []),
        "verify-log-sequence",
        replay,
        "verify-database-header",
        "mount-database",
        "verify-mount",
    ]
    firsts = [order.index(k) for k in expected]
    assert firsts == sorted(firsts), order
    assert plan.recoverable_point == at(2) and plan.data_loss_window_seconds == 0
    assert plan.target.point_of_failure


def test_2003_to_the_point_of_failure_replays_the_servers_logs_in_place() -> None:
    """No copy of the live logs (their open E00.log is held by the Public Folder Store of
    the group); their sequence is checked where they are, before eseutil /cc without /t."""
    plan = plan_database(estate_facts(), [EX2003_MAIL])
    assert "copy-live-logs" not in kinds(plan)
    checks = [s for s in plan.steps if s.kind == "verify-log-sequence"]
    folders = [c.params["log_path"] for c in checks]
    assert folders == [r"T:\DRTemp\First Storage Group", r"F:\Exchsrvr\Logs\First Storage Group"]
    restored, server = checks
    assert restored.params["last_gen"] + 1 >= server.params["first_gen"], "no gap between them"
    replay = next(s for s in plan.steps if s.kind == "hard-recovery")
    assert replay.params["play_forward"] is True
    assert all(plan.steps.index(c) < plan.steps.index(replay) for c in checks)


def test_2003_copies_aside_only_the_restored_stores_files_and_not_the_open_log() -> None:
    """A mounted store holds its files open (robocopy: ERROR 32): the copy names the
    restored store's .edb and .stm, and leaves out E00.log while the Public Folder Store of
    the same group still writes to it; restoring every store of the group copies it too."""
    plan = plan_database(estate_facts(), [EX2003_MAIL], at(1.2))
    copies = {s.params["source"]: s.params for s in plan.steps if s.kind == "copy-existing-files"}
    assert copies[r"E:\Exchsrvr\mdbdata"]["files"] == ["priv1.edb", "priv1.stm"]
    assert copies[r"E:\Exchsrvr\mdbdata"]["exclude"] == []
    logs = copies[r"F:\Exchsrvr\Logs\First Storage Group"]
    assert logs["files"] == ["E00*.log", "E00.chk"] and logs["exclude"] == ["E00.log"]
    kinds_in_order = kinds(plan)
    assert kinds_in_order.index("allow-file-restore") < kinds_in_order.index("copy-existing-files")
    whole = plan_database(
        estate_facts(), [EX2003_MAIL, "First Storage Group/Public Folder Store (EX2003)"], at(1.2)
    )
    both = [s.params for s in whole.steps if s.kind == "copy-existing-files"]
    assert all(p["exclude"] == [] for p in both)
    assert ["priv1.edb", "priv1.stm", "pub1.edb", "pub1.stm"] in [p["files"] for p in both]


def test_2003_restore_steps_name_the_fetched_media_file_and_the_databases_checked() -> None:
    """A person restores from the .bkf the fetch put on the host; after eseutil /cc the
    check reads each restored database's header (restore.env is gone after success)."""
    facts = estate_facts()
    stream = "EX2003/First Storage Group"
    facts.backups[stream] = [
        replace(v, media="First-Storage-Group/backup.bkf") for v in facts.backups[stream]
    ]
    plan = plan_database(facts, [EX2003_MAIL], at(1.2))
    sets = [s for s in plan.steps if s.kind in ("restore-database-backup", "restore-log-backup")]
    assert len(sets) >= 2
    for step in sets:
        staged = step.params["staged"]
        assert step.params["bkf"] == f"{staged}\\First-Storage-Group\\backup.bkf"
    replay = next(s for s in plan.steps if s.kind == "hard-recovery")
    assert replay.params["edbs"] == [r"E:\Exchsrvr\mdbdata\priv1.edb"]
    modern = plan_database(facts, ["DB01"], at(1.2))
    assert all(s.params.get("bkf", "") == "" for s in modern.steps)


def test_point_in_time_on_2003_never_touches_the_live_log_folder() -> None:
    plan = plan_database(estate_facts(), [EX2003_MAIL], at(1.2))
    assert plan.recoverable_point == at(1)
    live = r"F:\Exchsrvr\Logs\First Storage Group"
    touching = [s for s in plan.steps if s.kind == "remove-logs-after"]
    assert all(s.params["log_path"] != live for s in touching), "other stores use those logs"
    replay = next(s for s in plan.steps if s.kind == "hard-recovery")
    assert replay.params["play_forward"] is False  # eseutil /cc <temp> /t
    assert plan.data_loss_window_seconds == pytest.approx(0.2 * 3600)


def test_point_of_failure_on_2003_plays_the_storage_groups_logs_forward() -> None:
    plan = plan_database(estate_facts(), [EX2003_MAIL])
    replay = next(s for s in plan.steps if s.kind == "hard-recovery")
    assert replay.params["play_forward"] is True  # plain eseutil /cc <temp>


def test_two_storage_groups_restore_in_parallel_stores_in_series() -> None:
    plan = plan_database(
        estate_facts(),
        [EX2003_MAIL, EX2003_SALES, "First Storage Group/Public Folder Store (EX2003)"],
    )
    well_formed(plan)
    first = [s for s in plan.steps if "sg:EX2003/First Storage Group" in s.resources]
    second = [s for s in plan.steps if "sg:EX2003/Second Storage Group" in s.resources]
    assert first and second
    ids_first = {s.id for s in first}
    assert not any(n in ids_first for s in second for n in s.needs)  # independent groups
    temps = {s.params["path"] for s in plan.steps if s.kind == "prepare-temp-folder"}
    assert len(temps) == 2  # one restore.env folder per storage group
    restores = [
        s for s in plan.steps if s.kind == "restore-database-backup" and "First" in s.params["sg"]
    ]
    assert len(restores) == 2
    assert restores[0].id in _ancestors(plan, restores[1].id)  # stores of a group in series


def _ancestors(plan: Plan, step_id: str) -> set[str]:
    seen: set[str] = set()
    pending = list(plan.step(step_id).needs)
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(plan.step(current).needs)
    return seen


def test_plans_are_deterministic_byte_for_byte() -> None:
    one = plan_database(estate_facts(), [EX2003_MAIL, "DB01"], at(1.2)).canonical_json()
    two = plan_database(estate_facts(), [EX2003_MAIL, "DB01"], at(1.2)).canonical_json()
    assert one == two
    other = plan_database(estate_facts(), [EX2003_MAIL, "DB01"], at(1.1)).canonical_json()
    assert other != one


def _with_offline_copy() -> MemoryFacts:
    f = estate_facts()
    stream = "EX2003/First Storage Group"
    image = f.backups[stream][0].databases[0]
    f.backups[stream].append(
        BackupVersion("OFF", stream, "copy", at(1.7), None, (image,), offline=True)
    )
    return f


def test_an_offline_restore_goes_to_the_recovery_server_and_leaves_production_alone() -> None:
    """B5: on the recovery server (its own files and logs moved aside first), after its
    names are checked; no step runs on the production server, nothing is deleted."""
    plan = plan_offline(_with_offline_copy(), [EX2003_MAIL])
    well_formed(plan)
    order = kinds(plan)
    assert {s.host for s in plan.steps} == {"RX2003", "orchestrator"}
    assert plan.facts["recovery_server"] == "RX2003" and plan.facts["in_place"] is False
    assert order[0] == "verify-recovery-forest"
    assert "remove-database-files" not in order
    assert order.index("allow-file-restore") < order.index("restore-offline-files")
    assert order.index("restore-offline-files") < order.index("mount-database")
    fetch = next(s for s in plan.steps if s.kind == "fetch-artifacts")
    assert fetch.params["host"] == "RX2003"
    put = next(s for s in plan.steps if s.kind == "restore-offline-files")
    assert put.params["staged"] == fetch.params["dest"] + "\\OFF"
    assert plan.recoverable_point == at(1.7)


def test_offline_restore_in_place_moves_production_aside_and_copies_the_backup() -> None:
    plan = plan_offline(_with_offline_copy(), [EX2003_MAIL], in_place=True)
    well_formed(plan)
    order = kinds(plan)
    assert {s.host for s in plan.steps} == {"EX2003", "orchestrator"}
    assert "remove-database-files" not in order, "nothing of production is deleted"
    dismounted = {s.params["db"] for s in plan.steps if s.kind == "dismount-database"}
    assert dismounted == {"Mailbox Store (EX2003)", "Public Folder Store (EX2003)"}
    aside = next(s for s in plan.steps if s.kind == "move-aside-files")
    assert order.index("move-aside-files") > max(
        i for i, k in enumerate(order) if k == "dismount-database"
    )
    assert aside.params["prefix"] == "E00" and not aside.destructive
    put = next(s for s in plan.steps if s.kind == "restore-offline-files")
    fetch = next(s for s in plan.steps if s.kind == "fetch-artifacts")
    assert put.params["staged"] == fetch.params["dest"] + "\\OFF"
    assert put.params["edb"].endswith("priv1.edb") and put.params["stm"].endswith("priv1.stm")
    mounted = {s.params["db"] for s in plan.steps if s.kind == "mount-database"}
    assert mounted == dismounted
    assert plan.recoverable_point == at(1.7)


def test_offline_restore_without_an_offline_backup_is_refused() -> None:
    with pytest.raises(NotRecoverable):
        plan_offline(estate_facts(), [EX2003_MAIL])


# --------------------------------------------------------------------------- B1 / B2


def test_message_within_retention_needs_no_backup() -> None:
    plan = plan_message(estate_facts(), "jsmith", at(1), at(30))
    assert kinds(plan) == ["recover-deleted-items"] and plan.facts["needs_backup"] is False
    # the step names its platform, so it renders (and runs) for the mailbox's version
    from engine.render import render_step
    from engine.runbook import Library

    library = Library.load()
    step = plan.steps[0]
    rendered = render_step(library.variant(step), step, library.kind(step.kind))
    assert "Recover" in rendered.instructions
    assert any("no backup is needed" in w for w in plan.warnings)


def test_purged_messages_need_a_backup_even_inside_retention() -> None:
    """Purged past Recoverable Items, no retention window holds them: the backup path,
    said in a warning, as beyond retention."""
    plan = plan_message(estate_facts(), "tvisser", at(1), at(30), purged=True)
    well_formed(plan)
    assert plan.facts["needs_backup"] is True and plan.facts["purged"] is True
    assert "mailbox-restore-request" in kinds(plan)
    assert any("purged" in w for w in plan.warnings)
    later = plan_message(estate_facts(), "tvisser", at(1), at(24 * 30))
    assert kinds(later) == kinds(plan)


def test_message_beyond_retention_uses_the_mail_level_backup() -> None:
    plan = plan_message(estate_facts(), "administrator", at(1), at(24 * 30))
    assert "restore-mail-level" in kinds(plan)
    assert plan.step(plan.critical_path[-1]).params["mailbox"] == "administrator"


def test_message_on_2016_without_mail_level_uses_a_recovery_database() -> None:
    plan = plan_message(estate_facts(), "tvisser", at(1), at(24 * 30))
    well_formed(plan)
    assert {
        "create-recovery-database",
        "mailbox-restore-request",
        "soft-recovery",
        "remove-recovery-database",
    } <= set(kinds(plan))


def test_message_on_2003_without_mail_level_is_refused_with_the_way_forward() -> None:
    with pytest.raises(NotRecoverable) as caught:
        plan_message(estate_facts(), "jsmith", at(1), at(24 * 30))
    assert "dr plan mailbox" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("mailbox", "expect"),
    [("jsmith", "extract-mailbox"), ("finance", "mailbox-restore-request")],
)
def test_mailbox_beyond_retention_both_families(mailbox: str, expect: str) -> None:
    plan = plan_mailbox(estate_facts(), mailbox, at(24 * 90), deleted_at=at(1))
    well_formed(plan)
    assert expect in kinds(plan)


def test_a_recovery_database_is_created_only_over_recovered_files() -> None:
    """Microsoft's order: restore the files, eseutil /r, New-MailboxDatabase -Recovery,
    mount, restore request (mounting an RDB before its files exist makes an empty one)."""
    plan = plan_mailbox(estate_facts(), "finance", at(24 * 90), deleted_at=at(1))
    order = kinds(plan)
    assert order.index("soft-recovery") < order.index("create-recovery-database")
    assert order.index("verify-database-header") < order.index("create-recovery-database")
    assert "dismount-database" not in order and "mount-database" not in order
    create = next(s for s in plan.steps if s.kind == "create-recovery-database")
    restore = next(s for s in plan.steps if s.kind == "restore-database-backup")
    temp = next(s for s in plan.steps if s.kind == "prepare-temp-folder").params["path"]
    assert create.params["edb"] == restore.params["edb"]
    assert create.params["edb"].endswith("\\DB02.edb"), "the file keeps the name its logs use"
    folders = {temp, create.params["log_path"], create.params["edb"].rsplit("\\", 1)[0]}
    assert len(folders) == 3, folders
    request = next(s for s in plan.steps if s.kind == "mailbox-restore-request")
    assert request.params["display_name"] == "Finance" and request.params["mailbox"] == "finance"


def test_mailbox_within_retention_is_reconnected() -> None:
    plan = plan_mailbox(estate_facts(), "jsmith", at(48), deleted_at=at(1))
    assert kinds(plan) == ["connect-mailbox"]


def test_connect_mailbox_gets_exchange_identities_not_dr_keys() -> None:
    plan = plan_mailbox(estate_facts(), "abakker", at(48), deleted_at=at(1))
    step = plan.steps[0]
    assert step.kind == "connect-mailbox"
    # Connect-Mailbox -Identity: the disconnected mailbox by display name; -Database: DB01
    assert step.params == {"mailbox": "Anouk Bakker", "database": "DB01", "user": "abakker"}


# --------------------------------------------------------------------------- B6 / B7


@pytest.mark.parametrize(("server", "setup_version"), [("EX2003", "2003"), ("EX2016", "2016")])
def test_server_rebuild_both_families(server: str, setup_version: str) -> None:
    plan = plan_server(estate_facts(), server)
    well_formed(plan)
    setup = next(s for s in plan.steps if s.kind == "exchange-recover-server")
    assert setup.params["version"] == setup_version and setup.params["components"]
    order = kinds(plan)
    assert order.index("verify-directory") < order.index("install-windows")
    assert order.index("exchange-recover-server") < order.index("restore-database-backup")
    if server == "EX2003":
        meta = next(s for s in plan.steps if s.kind == "restore-iis-metabase")
        assert setup.id in meta.needs


def _in_order(order: list[str], *wanted: str) -> bool:
    return [order.index(k) for k in wanted] == sorted(order.index(k) for k in wanted)


def test_a_2003_server_gets_its_system_state_then_a_new_secure_channel_then_setup() -> None:
    order = kinds(plan_server(estate_facts(), "EX2003"))
    assert _in_order(order, "install-windows", "restore-system-state", "reboot-host",
                     "reset-secure-channel", "exchange-recover-server")  # fmt: skip
    assert "join-domain" not in order, "the system state brings the membership back"


def test_a_2016_server_is_joined_clean_and_recovered_without_its_system_state() -> None:
    plan = plan_server(estate_facts(), "EX2016")
    order = kinds(plan)
    assert _in_order(order, "reset-computer-account", "install-windows", "join-domain",
                     "exchange-recover-server", "reimport-certificates")  # fmt: skip
    assert "restore-system-state" not in order
    assert any("machine secret" in w for w in plan.warnings)


@pytest.mark.parametrize(
    ("exchange", "cu", "expect", "absent"),
    [
        ("2016", "CU23", "/IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF", None),
        ("2019", None, "/IAcceptExchangeServerLicenseTerms_DiagnosticDataOFF", None),
        ("2016", "CU21", "/IAcceptExchangeServerLicenseTerms /Mode", "DiagnosticData"),
        ("2013", "CU23", "/IAcceptExchangeServerLicenseTerms /Mode", "DiagnosticData"),
        ("2010", None, "Setup.com", "IAcceptExchangeServerLicenseTerms"),
    ],
)
def test_recover_server_uses_the_switches_the_version_accepts(
    exchange: str, cu: str | None, expect: str, absent: str | None
) -> None:
    from engine.plan import Step
    from engine.render import render_step
    from engine.runbook import Library

    platform = {"exchange": exchange, "windows": "2016"}
    if cu:
        platform["cu"] = cu.removeprefix("CU")
    params = {"server": "EX", "install_path": "C:\\Ex", "components": [], "version": exchange}
    step = Step(id="x", kind="exchange-recover-server", host="EX", params=params,
                platform=platform)  # fmt: skip
    library = Library.load()
    script = render_step(library.variant(step), step).command.script  # type: ignore[union-attr]
    assert expect in script
    assert absent is None or absent not in script
    if exchange >= "2013":
        assert "/DoNotStartTransport" in script


def test_kms_server_needs_the_startup_password_reference() -> None:
    plan = plan_server(estate_facts(), "KMS1")
    kms = next(s for s in plan.steps if s.kind == "restore-kms-database")
    assert [r.name for r in kms.secrets] == ["kms-startup-password"]
    assert "Safe 2" in kms.secrets[0].location


@pytest.mark.parametrize("scenario", ["forest", "kms", "ca", "site"])
def test_every_secret_a_step_needs_is_located_in_the_rendered_runbook(scenario: str) -> None:
    """The template asks for a secret by name; the runbook must say where it is kept."""
    from engine.documents import render
    from engine.runbook import Library

    plan = {
        "forest": lambda: plan_forest(estate_facts(), "CORP"),
        "kms": lambda: plan_server(estate_facts(), "KMS1"),
        "ca": lambda: plan_server(estate_facts(), "DC1"),
        "site": lambda: plan_site(estate_facts()),
    }[scenario]()
    text = render(plan, Library.load(), "md")
    assert "the plan does not say where it is kept" not in text
    assert "Safe 2" in text or "KeePass" in text


def test_missing_secret_location_is_refused() -> None:
    f = estate_facts()
    inv = f.inv.model_copy(
        update={"secrets": [s for s in f.inv.secrets if s.kind != "kms-startup-password"]}
    )
    with pytest.raises(MissingSecret) as caught:
        plan_server(MemoryFacts(inv, f.backups, f.live, f.artifacts, f.steps), "KMS1")
    assert caught.value.details["host"] == "KMS1"


def test_forest_restores_the_domain_controller_first() -> None:
    plan = plan_forest(estate_facts(), "corp.contoso.com")
    well_formed(plan)
    assert kinds(plan)[:2] == ["boot-dsrm", "restore-system-state"]
    # the first DC of a lost directory: nobody to take SYSVOL from, so it becomes primary
    assert plan.steps[1].params["authoritative"] is True
    # ...and the domain alone: Exchange's checks wait for the forest recovery's steps
    krbtgt = next(s for s in plan.steps if s.kind == "reset-krbtgt" and s.params["round"] == 1)
    names = next(s for s in plan.steps if s.kind == "manual" and s.id.endswith(".names"))
    assert krbtgt.id in names.needs
    order = [k for k in kinds(plan) if k in ("verify-directory", "seize-fsmo-roles",
             "cleanup-dc-metadata", "raise-rid-pool", "reset-machine-password")]  # fmt: skip
    assert order == ["verify-directory", "seize-fsmo-roles", "cleanup-dc-metadata",
                     "raise-rid-pool", "reset-machine-password"]  # fmt: skip
    assert plan.facts["removed_domain_controllers"] == ["DC2016"]  # DC1 restored, DC2016 gone


def test_a_dc_whose_partners_survive_needs_no_forest_recovery() -> None:
    plan = plan_forest(estate_facts(), "corp.contoso.com", partners_survive=True)
    assert not {"seize-fsmo-roles", "cleanup-dc-metadata", "reset-krbtgt"} & set(kinds(plan))


def test_authoritative_forest_restore_marks_objects_after_approval() -> None:
    dn = "CN=Sales,OU=Groups,DC=corp,DC=contoso,DC=com"
    plan = plan_forest(estate_facts(), "CORP", [dn])
    auth = next(s for s in plan.steps if s.kind == "authoritative-restore")
    assert auth.params["objects"] == [dn] and auth.destructive
    assert plan.step(auth.needs[0]).kind == "approve"
    restore = next(s for s in plan.steps if s.kind == "restore-system-state")
    assert restore.params["authoritative"] is False, "a targeted restore keeps partners' SYSVOL"


def test_a_dc_restored_while_its_partners_run_takes_their_sysvol() -> None:
    plan = plan_forest(estate_facts(), "CORP", partners_survive=True)
    restore = next(s for s in plan.steps if s.kind == "restore-system-state")
    assert restore.params["authoritative"] is False


def test_site_restores_one_dc_per_domain_and_promotes_the_others_again() -> None:
    """Microsoft's forest recovery: the first DC from backup with SYSVOL primary; the
    others are not restored (their backups hold metadata the cleanup removes) but promoted
    again, replicating from it, after it holds the domain alone."""
    plan = plan_site(estate_facts())
    restores = {s.host: s.params for s in plan.steps if s.kind == "restore-system-state"}
    assert restores["DC1"]["authoritative"] is True and "DC2016" not in restores
    by_kind = {s.kind: s for s in plan.steps if s.host in ("DC1", "DC2016", "operator")}
    promote = next(s for s in plan.steps if s.kind == "promote-dc")
    assert promote.params == {"server": "DC2016", "domain": "corp.contoso.com",
                              "source": "DC1.corp.contoso.com"}  # fmt: skip
    assert "boot-dsrm" not in [s.kind for s in plan.steps if s.params.get("server") == "DC2016"]
    assert "reset-computer-account" not in [
        s.kind for s in plan.steps if s.params.get("server") == "DC2016"
    ]  # the metadata cleanup deleted it: joining makes a new one
    cleanup = by_kind["cleanup-dc-metadata"]
    assert cleanup.params["removed"] == "DC2016" and cleanup.params["server"] == "DC1"
    assert _before(plan, cleanup.id, promote.id)
    leave = next(s for s in plan.steps if s.kind == "leave-dsrm")
    assert leave.params == {"server": "DC1", "alone": True}


def test_site_makes_the_first_dc_the_domain_before_anything_joins_it() -> None:
    plan = plan_site(estate_facts())
    dc1 = [s.kind for s in plan.steps if s.params.get("server") == "DC1"]
    recovery = ["restore-system-state", "leave-dsrm", "verify-directory", "seize-fsmo-roles",
                "raise-rid-pool", "reset-machine-password", "reset-krbtgt"]  # fmt: skip
    assert [k for k in dc1 if k in recovery] == [*recovery, "reset-krbtgt"], dc1
    seize = next(s for s in plan.steps if s.kind == "seize-fsmo-roles")
    assert seize.params["forest_roles"] is True  # the forest's only (root) domain
    rid = next(s for s in plan.steps if s.kind == "raise-rid-pool")
    assert rid.params["domain_dn"] == "DC=corp,DC=contoso,DC=com"
    assert rid.params["increase"] == 100_000
    first, second = [s for s in plan.steps if s.kind == "reset-krbtgt"]
    assert (first.params["round"], second.params["round"]) == (1, 2)
    wait = next(s for s in plan.steps if s.id in second.needs)
    assert wait.kind == "manual" and "10 hours" in wait.params["instructions"]
    # everything else waits for the first krbtgt reset, nothing for the second, which
    # replicates to the domain controllers promoted again
    for setup in (s for s in plan.steps if s.kind in ("exchange-recover-server", "promote-dc")):
        assert _before(plan, first.id, setup.id), setup.id
    assert not any(second.id in s.needs for s in plan.steps)
    promoted = next(s for s in plan.steps if s.kind == "verify-directory" and s.host == "DC2016")
    assert _before(plan, promoted.id, second.id)


def test_site_refuses_a_2008_first_dc_without_a_full_server_backup() -> None:
    """In a site loss the machine is gone, and a system-state backup restores only onto the
    installation it came from: the plan says so instead of planning a restore that cannot
    run (DC2016 is the only DC with a backup here)."""
    f = estate_facts()
    kept = [a for a in f.artifacts if (a.host, a.kind) != ("DC1", "system-state")]
    with pytest.raises(NotRecoverable) as caught:
        plan_site(MemoryFacts(f.inv, f.backups, f.live, kept, f.steps))
    assert "DC2016" in caught.value.message and "full-server" in caught.value.message
    assert "wbadmin start backup -allCritical" in (caught.value.hint or "")


def test_site_takes_a_2016_first_dc_from_its_full_server_image() -> None:
    f = estate_facts()
    kept = [a for a in f.artifacts if (a.host, a.kind) != ("DC1", "system-state")]
    kept.append(host_artifact("system-image", "DC2016", 0.4))
    plan = plan_site(MemoryFacts(f.inv, f.backups, f.live, kept, f.steps))
    dc = [s.kind for s in plan.steps if s.params.get("server") == "DC2016"]
    assert dc[:3] == ["verify-hardware", "restore-disk-image", "boot-dsrm"], dc
    assert "install-windows" not in dc and "join-domain" not in dc
    assert next(s for s in plan.steps if s.kind == "promote-dc").params["server"] == "DC1"


def _before(plan: Plan, first: str, later: str) -> bool:
    """Whether ``later`` (transitively) needs ``first``."""
    needs = {s.id: s.needs for s in plan.steps}
    seen, todo = set(), [later]
    while todo:
        for dep in needs[todo.pop()]:
            if dep == first:
                return True
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return False


# --------------------------------------------------------------------------- B8 / C1 / site


@pytest.mark.parametrize(("db", "server"), [(EX2003_SALES, "RX2003"), ("DB02", "RX2016")])
def test_alternate_restore_into_the_recovery_forest(db: str, server: str) -> None:
    plan = plan_alternate(estate_facts(), db, "recovery.contoso.lab")
    well_formed(plan)
    assert plan.steps[0].kind == "verify-recovery-forest" and plan.steps[0].host == server
    assert "copy-live-logs" not in kinds(plan)
    assert plan.recoverable_point == at(1)


def _renamed_forest(**changes: object) -> MemoryFacts:
    f = estate_facts()
    forest = f.inv.recovery_forests[0].model_copy(update=changes)
    return MemoryFacts(
        f.inv.model_copy(update={"recovery_forests": [forest]}), f.backups, f.live, f.artifacts
    )


def test_alternate_refused_naming_each_mismatch() -> None:
    f = _renamed_forest(organization="Fabrikam")
    ags = [
        ag.model_copy(update={"legacy_exchange_dn": "/o=Fabrikam/ou=Other"})
        for ag in f.inv.recovery_forests[0].administrative_groups
    ]
    f = _renamed_forest(organization="Fabrikam", administrative_groups=ags)
    with pytest.raises(NameMismatch) as caught:
        plan_alternate(f, EX2003_SALES, None)
    fields = [m["field"] for m in caught.value.details["mismatches"]]
    assert fields == ["organization", "administrative group legacyExchangeDN"]
    assert caught.value.exit_code == 3


def test_alternate_refused_on_version_mismatch() -> None:
    f = estate_facts()
    forest = f.inv.recovery_forests[0]
    servers = [
        s.model_copy(update={"exchange_version": 2007}) if s.name == "RX2003" else s
        for s in forest.servers
    ]
    forest = forest.model_copy(update={"servers": servers})
    f = MemoryFacts(
        f.inv.model_copy(update={"recovery_forests": [forest]}), f.backups, f.live, f.artifacts
    )
    with pytest.raises(VersionMismatch):
        plan_alternate(f, EX2003_SALES, None)


@pytest.mark.parametrize("db", [EX2003_MAIL, "DB02"])
def test_drill_verifies_and_cleans_up(db: str) -> None:
    plan = plan_drill(estate_facts(), db)
    well_formed(plan)
    counts = next(s for s in plan.steps if s.kind == "verify-item-counts")
    assert counts.params["expected"]
    assert kinds(plan)[-1] == "cleanup-recovery-forest"
    if db == "DB02":
        # what the backup counted, by mailbox GUID — not the inventory's size estimate
        assert counts.params["expected"] == {"f1": 61000, "h1": 22}
        assert counts.params["names"] == {"f1": "Finance", "h1": "Helpdesk"}
    sampled = next(s for s in plan.steps if s.kind == "verify-mailbox-sample")
    assert set(sampled.params["mailboxes"]) <= set(counts.params["expected"])
    assert plan.facts["sample"]["seed"] and plan.facts["sample"]["of"] == len(
        counts.params["expected"]
    )
    cleanup = plan.steps[-1]
    assert cleanup.params["edb"] and cleanup.params["log_path"] and cleanup.params["folders"]


def test_a_drill_compares_with_the_counts_of_the_last_backup_before_its_point() -> None:
    f = estate_facts()
    later = mailbox_counts(
        "EX2016/DB02/DB02", 0.8, {"f1": ("Finance", 61010), "h1": ("Helpdesk", 23)}
    )
    too_late = mailbox_counts("EX2016/DB02/DB02", 1.3, {"f1": ("Finance", 1)})
    f = MemoryFacts(f.inv, f.backups, f.live, [*f.artifacts, *later, *too_late], f.steps)
    plan = plan_drill(f, "DB02")
    counts = next(s for s in plan.steps if s.kind == "verify-item-counts")
    assert counts.params["expected"] == {"f1": 61010, "h1": 23}


def test_a_drill_without_recorded_counts_says_so_and_checks_no_counts() -> None:
    f = estate_facts()
    kept = [a for a in f.artifacts if a.kind != "mailbox-counts"]
    plan = plan_drill(MemoryFacts(f.inv, f.backups, f.live, kept, f.steps), "DB02")
    assert "verify-item-counts" not in kinds(plan)
    assert any("recorded its mailboxes' item counts" in w for w in plan.warnings)
    assert "verify-mailbox-sample" in kinds(plan) and kinds(plan)[-1] == "cleanup-recovery-forest"


def test_site_plan_orders_forest_then_servers_then_stores() -> None:
    plan = plan_site(estate_facts())
    well_formed(plan)
    order = kinds(plan)
    # DC1 (2003) has no image here: Windows again under its name, then its system state
    assert order[:3] == ["verify-hardware", "install-windows", "boot-dsrm"]
    dc_verify = next(s.id for s in plan.steps if s.kind == "verify-directory")
    setups = [s for s in plan.steps if s.kind == "exchange-recover-server"]
    assert {s.host for s in setups} == {"EX2003", "EX2016", "KMS1"}
    # a server waits for its directory; the servers themselves rebuild in parallel
    total = sum(s.estimate_seconds for s in plan.steps)
    assert plan.rto_estimate_seconds < total
    assert dc_verify in plan.critical_path or plan.critical_path[0] == plan.steps[0].id


REFUSALS: list[tuple[str, Callable[[MemoryFacts], object], str]] = [
    ("no full", lambda f: plan_database(f, ["DB01"], at(-1)), "E3120"),
    ("unknown db", lambda f: plan_database(f, ["nope"]), "E2600"),
]


@pytest.mark.parametrize(("name", "make", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_carry_stable_codes(
    name: str, make: Callable[[MemoryFacts], object], code: str
) -> None:
    with pytest.raises(Exception) as caught:
        make(estate_facts())
    assert caught.value.ident == code  # type: ignore[attr-defined]


def test_a_drill_into_a_recovery_database_restores_checks_and_removes_it() -> None:
    plan = plan_drill(estate_facts(), "DB02", into="rdb")
    well_formed(plan)
    order = kinds(plan)
    assert "verify-recovery-forest" not in order and "cleanup-recovery-forest" not in order
    assert order.index("create-recovery-database") < order.index("verify-item-counts")
    assert order[-2:] == ["remove-recovery-database", "remove-recovery-database-files"]
    counts = next(s for s in plan.steps if s.kind == "verify-item-counts")
    assert counts.params["db"] == "RDB-DB02" and counts.host == "EX2016"
    assert plan.facts["method"] == "recovery-database" and plan.facts["restored_as"] == "RDB-DB02"
    files = plan.steps[-1].params
    assert files["edb"].endswith("RDB-DB02\\DB02.edb") and files["folders"]


def test_the_policy_chooses_the_recovery_database_for_2010_and_later_only() -> None:
    f = estate_facts()
    policy = f.inv.drills.model_copy(update={"recovery_database_server": "EX2016"})
    inv = f.inv.model_copy(update={"drills": policy})
    g = MemoryFacts(inv, f.backups, f.live, f.artifacts, f.steps)
    assert plan_drill(g, "DB02").facts["method"] == "recovery-database"
    assert "verify-recovery-forest" in kinds(plan_drill(g, EX2003_MAIL)), "2003: the forest"
    with pytest.raises(VersionMismatch, match="Exchange 2010 and later"):
        plan_drill(g, EX2003_MAIL, into="rdb")


def test_2003_eseutil_runs_from_the_servers_own_install_path() -> None:
    """On Exchange 2000/2003 eseutil is in the install's bin folder and not on the PATH (KB
    825088): an install on D: is run from there, not from %ProgramFiles%."""
    from dataclasses import replace as copy_facts

    from engine.render import render_step
    from engine.runbook import Library

    facts = estate_facts()
    inv = facts.inv
    moved = inv.model_copy(update={"servers": [
        s.model_copy(update={"install_path": "D:\\Exchsrvr"}) if s.name == "EX2003" else s
        for s in inv.servers
    ]})  # fmt: skip
    plan = plan_database(copy_facts(facts, inv=moved), [EX2003_MAIL])
    library = Library.load()
    for kind in ("verify-log-sequence", "hard-recovery", "verify-database-header"):
        step = next(s for s in plan.steps if s.kind == kind)
        assert step.params["install_path"] == "D:\\Exchsrvr", kind
        rendered = render_step(library.variant(step), step, library.kind(kind))
        scripts = [c.script for c in (rendered.command, rendered.verify) if c is not None]
        assert any('"D:\\Exchsrvr\\bin\\eseutil.exe"' in t for t in scripts), (kind, scripts)
        assert not any("Program Files" in t for t in scripts), kind
    default = plan_database(estate_facts(), [EX2003_MAIL])
    step = next(s for s in default.steps if s.kind == "hard-recovery")
    assert step.params["install_path"] == "C:\\Program Files\\Exchsrvr", "the inventory's"
