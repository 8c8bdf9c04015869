"""Recovering messages (B1) and mailboxes (B2).

Within the retention windows no backup is needed: deleted items are recovered by the user
or an administrator, a deleted mailbox is reconnected (seeds/004; research §2.4). Beyond
them: a mail-level restore into the original mailbox, or on 2010+ a recovery database and
``New-MailboxRestoreRequest``; for a whole mailbox on 2000/2003, the database restored into
the recovery forest and the mailbox extracted. Mail-level data only ever goes back into the
original database (A11).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import PureWindowsPath

from dr.errors import NotFoundError, NotRecoverable, WrongDatabase
from dr.model.inventory import Inventory, Mailbox, Server, StorageGroup
from dr.model.refs import DatabaseRef, resolve_database
from dr.planner.builder import PlanBuilder, platform_of
from dr.planner.chain import Chain
from dr.planner.common import Series, chain_facts, family, sla_for, stamp, temp_root
from dr.planner.database import RestoreTarget, restore_stream, stream_chain
from dr.planner.facts import FactsProvider, HostArtifact, PlanReporter
from dr.suggest import Placeholder, suggest
from engine.plan import Plan, Target


def find_mailbox(inv: Inventory, name: str) -> tuple[Mailbox, DatabaseRef]:
    """A mailbox by alias or display name, and the database it lives in."""
    wanted = name.casefold()
    for mailbox in inv.mailboxes:
        if wanted in (mailbox.alias.casefold(), (mailbox.display_name or "").casefold()):
            return mailbox, resolve_database(inv, mailbox.database)
    raise NotFoundError(
        f"no mailbox {name!r} in the inventory",
        hint="name it by alias as listed under mailboxes: in the inventory",
    )


def _mail_level(
    provider: FactsProvider, ref: DatabaseRef, mailbox: Mailbox, before: datetime | None
) -> HostArtifact | None:
    """The newest usable mail-level backup of the mailbox, from whichever server made it
    (a mailbox moved since keeps its older backups on its old server)."""
    hosts = [ref.server.name] + [s.name for s in provider.inventory().servers]
    found = {
        a.id: a
        for host in dict.fromkeys(h.upper() for h in hosts)
        for a in provider.host_artifacts(host, "mailbox-items")
        if not a.expired
        and (a.mailbox or "").casefold() == mailbox.alias.casefold()
        and (before is None or a.at <= before)
    }
    return max(found.values(), key=lambda a: (a.at, a.id)) if found else None


def _items_database(inv: Inventory, item_backup: HostArtifact) -> str | None:
    """The key of the database the items came from, as recorded (None: not recorded)."""
    if not item_backup.database:
        return None
    try:
        return resolve_database(inv, item_backup.database).key
    except NotFoundError:
        return item_backup.database


def check_original_database(
    inv: Inventory, mailbox: Mailbox, ref: DatabaseRef, item_backup: HostArtifact
) -> None:
    """A11: mail-level items carry no database structure and go back only into the database
    they were backed up from. Refuse when the mailbox now lives elsewhere."""
    source = _items_database(inv, item_backup)
    moved_server = item_backup.host.upper() != ref.server.name.upper()
    if source is None and not moved_server:
        return
    if source is not None and source.casefold() == ref.key.casefold():
        return
    origin = source or f"a database on {item_backup.host}"
    raise WrongDatabase(
        f"{mailbox.alias}: the mail-level backup {item_backup.id} ({stamp(item_backup.at)}) "
        f"holds items from {origin}, but the mailbox is now in {ref.key}; mail-level items "
        "restore only into their original database (A11)",
        hint=f"restore {origin} into a recovery database or the recovery forest and copy "
        "the items from there, or use a mail-level backup taken since the mailbox moved",
        details={
            "mailbox": mailbox.alias,
            "version": item_backup.id,
            "backup_database": source,
            "backup_host": item_backup.host,
            "current_database": ref.key,
        },
    )


# --------------------------------------------------------------------------- B1


def plan_message(
    provider: FactsProvider,
    mailbox_name: str,
    deleted_at: datetime,
    as_of: datetime,
    reporter: PlanReporter | None = None,
    *,
    purged: bool = False,
) -> Plan:
    """B1: deleted messages back; no backup inside deleted-item retention — unless they
    were ``purged`` (hard-deleted past Recoverable Items, "Purge Selected Items" in Recover
    Deleted Items): then no retention window brings them back and a backup does."""
    inv = provider.inventory()
    mailbox, ref = find_mailbox(inv, mailbox_name)
    b = PlanBuilder(provider, "message", Target(what=f"messages of {mailbox.alias}", at=deleted_at))
    b.facts.update({"mailbox": mailbox.alias, "database": ref.key, "as_of": as_of.isoformat()})
    retention = inv.retention.deleted_items
    within = (as_of - deleted_at).total_seconds() <= retention
    if within and not purged:
        return _within_retention(b, mailbox, ref, deleted_at, retention, "deleted-item")
    b.facts["needs_backup"] = True
    b.facts["purged"] = purged
    if within:
        b.warn(
            f"inside the {retention / 86400:g}-day deleted-item retention, but purged: "
            "Recover Deleted Items cannot bring them back, so a backup is restored"
        )
    item_backup = _mail_level(provider, ref, mailbox, deleted_at)
    if item_backup is not None:
        check_original_database(inv, mailbox, ref, item_backup)
        return _mail_level_plan(b, mailbox, ref, item_backup, deleted_at)
    if (ref.server.exchange_version or 0) >= 2010:
        return _recovery_database_plan(b, provider, mailbox, ref, deleted_at, reporter)
    extract = suggest(
        "dr", "plan", "mailbox", "--mailbox", mailbox.alias, "--at", Placeholder("TIME")
    )
    raise NotRecoverable(
        f"{mailbox.alias}: deleted {stamp(deleted_at)}, beyond the {retention / 86400:g}-day "
        f"deleted-item retention, and no mail-level backup of it exists before then",
        hint=f"restore {ref.key} into the recovery forest and extract the mailbox: `{extract}`",
        details={
            "mailbox": mailbox.alias,
            "database": ref.key,
            "deleted_at": deleted_at.isoformat(),
            "retention_seconds": retention,
        },
    )


def _within_retention(
    b: PlanBuilder,
    mailbox: Mailbox,
    ref: DatabaseRef,
    when: datetime,
    retention: float,
    what: str,
) -> Plan:
    b.facts["needs_backup"] = False
    b.warn(f"within the {retention / 86400:g}-day {what} retention: no backup is needed")
    if what == "deleted-item":
        b.add(
            "recover-deleted-items",
            [mailbox.alias],
            host="operator",
            platform=platform_of(ref.server),  # which client steps apply: the mailbox's version
            params={"mailbox": mailbox.alias, "deleted_at": when.isoformat()},
            title=f"Recover the deleted items of {mailbox.alias} (Recover Deleted Items)",
        )
    else:
        b.add(
            "connect-mailbox",
            [mailbox.alias],
            host=ref.server.name,
            platform=platform_of(ref.server),
            # Connect-Mailbox -Identity takes the disconnected mailbox by display name, GUID
            # or LegacyExchangeDN, -Database an Exchange identity (Connect-Mailbox reference)
            params={
                "mailbox": mailbox.display_name or mailbox.alias,
                "database": exchange_identity(ref),
                "user": mailbox.alias,
            },
            title=f"Reconnect the disconnected mailbox {mailbox.alias}",
        )
    return b.finish(recoverable_point=when, data_loss_seconds=0.0, sla=sla_for(b.inv, [ref.key]))


def exchange_identity(ref: DatabaseRef) -> str:
    """How Exchange names a database: ``DB01`` from 2010 on, ``SERVER\\SG\\DB`` on 2007,
    the path of names in System Manager on 2000/2003."""
    version = ref.server.exchange_version or 0
    if version >= 2010:
        return ref.database.name
    if version == 2007:
        return f"{ref.server.name}\\{ref.storage_group.name}\\{ref.database.name}"
    return f"{ref.server.name} / {ref.storage_group.name} / {ref.database.name}"


def _mail_level_plan(
    b: PlanBuilder,
    mailbox: Mailbox,
    ref: DatabaseRef,
    item_backup: HostArtifact,
    deleted_at: datetime,
) -> Plan:
    b.use(item_backup)
    s = Series(b, [])
    s.add(
        "fetch-artifacts",
        [mailbox.alias],
        host="orchestrator",
        params={
            "versions": [item_backup.id],
            "dest": f"{temp_root(ref.server)}\\mail-level",
            "host": ref.server.name,
        },
        size_bytes=item_backup.size_bytes,
        title="Fetch the mail-level backup",
    )
    s.add(
        "restore-mail-level",
        [mailbox.alias],
        host=ref.server.name,
        platform=platform_of(ref.server),
        size_bytes=item_backup.size_bytes,
        params={"mailbox": mailbox.alias, "version": item_backup.id, "items": "all"},
        title=f"Restore the items into {mailbox.alias}, in its original database {ref.key}",
    )
    b.facts["method"] = "mail-level"
    return b.finish(
        recoverable_point=item_backup.at,
        data_loss_seconds=(deleted_at - item_backup.at).total_seconds(),
        sla=sla_for(b.inv, [ref.key]),
    )


def _recovery_database_plan(
    b: PlanBuilder,
    provider: FactsProvider,
    mailbox: Mailbox,
    ref: DatabaseRef,
    at: datetime | None,
    reporter: PlanReporter | None,
    folder: str = "Recovered Items",
) -> Plan:
    chain = stream_chain(provider, [ref], at, reporter, live=False)
    last = recovery_database_steps(b, chain, ref, [mailbox.alias], folder)
    b.facts.update({"method": "recovery-database", "chains": [chain_facts(chain)]})
    del last
    return b.finish(
        recoverable_point=chain.point,
        data_loss_seconds=chain.data_loss_seconds,
        sla=sla_for(b.inv, [ref.key]),
    )


def recovery_database_steps(
    b: PlanBuilder, chain: Chain, ref: DatabaseRef, mailboxes: Sequence[str], folder: str
) -> list[str]:
    create, rdb, _ = restore_into_recovery_database(b, chain, ref, ref.server)
    return [_mail_requests_then_remove(b, ref.server.name, create, rdb, mailboxes, folder)]


def restore_into_recovery_database(
    b: PlanBuilder, chain: Chain, ref: DatabaseRef, server: Server
) -> tuple[str, str, StorageGroup]:
    """The chain restored into a new recovery database on ``server``, mounted: (the step
    that created it, its name, its storage group — files and logs)."""
    """2010+, in Microsoft's order ("Restore data using a recovery database"): the files
    restored into the recovery database's folder (the .edb keeps its name: its logs name
    it), ``eseutil /r`` to Clean Shutdown, only then ``New-MailboxDatabase -Recovery`` over
    them and the mount, then a restore request per mailbox, then the RDB removed.

    Three folders, never one: the restore's temp folder (its logs and restore.env), the
    RDB's database folder, and the RDB's own log folder for the stream it starts."""
    rdb = f"RDB-{ref.database.name}"
    drive = temp_root(server).split("\\", 1)[0]
    home = f"{drive}\\RecoveryDatabases\\{rdb}"
    rdb_db = ref.database.model_copy(
        update={"name": rdb, "edb": f"{home}\\{PureWindowsPath(ref.database.edb).name}"}
    )
    rdb_sg = StorageGroup(
        name=rdb,
        log_prefix=ref.storage_group.log_prefix,
        log_path=f"{home}\\Logs",
        system_path=f"{home}\\Logs",
        databases=[rdb_db],
    )
    on = {"host": server.name, "platform": platform_of(server)}
    tgt = RestoreTarget(
        server, rdb_sg, (rdb_db,), original=False, source_keys=(ref.key,), exists=False,
        source_sg=ref.storage_group.name,
    )  # fmt: skip
    recovered = restore_stream(b, chain, tgt, [], mount=False)
    create = b.add(
        "create-recovery-database",
        [server.name, rdb],
        **on,
        needs=recovered,
        params={
            "server": server.name,
            "name": rdb,
            "edb": rdb_db.edb,
            "log_path": rdb_sg.log_path,
        },
        title=f"New-MailboxDatabase -Recovery {rdb} over the recovered files, and mount it",
    )
    return create, rdb, rdb_sg


def _mail_requests_then_remove(
    b: PlanBuilder, host: str, create: str, rdb: str, mailboxes: Sequence[str], folder: str
) -> str:
    on = {"host": host, "platform": b.steps[-1].platform}
    names = {m.alias: m.display_name or m.alias for m in b.inv.mailboxes}
    requests = [
        b.add(
            "mailbox-restore-request",
            [m],
            **on,
            needs=[create],
            params={
                "mailbox": m,
                "display_name": names.get(m, m),
                "recovery_db": rdb,
                "target_folder": folder,
            },
            title=f"New-MailboxRestoreRequest {m} from {rdb} into its original database",
        )
        for m in mailboxes
    ]
    return b.add(
        "remove-recovery-database",
        [host, rdb],
        **on,
        needs=requests,
        params={"server": host, "name": rdb},
        title=f"Dismount and remove {rdb}",
    )


# --------------------------------------------------------------------------- B2


def plan_mailbox(
    provider: FactsProvider,
    mailbox_name: str,
    as_of: datetime,
    deleted_at: datetime | None = None,
    at: datetime | None = None,
    forest: str | None = None,
    reporter: PlanReporter | None = None,
) -> Plan:
    """B2: reconnect inside deleted-mailbox retention; else restore and extract it."""
    inv = provider.inventory()
    mailbox, ref = find_mailbox(inv, mailbox_name)
    when = at or deleted_at
    b = PlanBuilder(
        provider,
        "mailbox",
        Target(what=f"mailbox {mailbox.alias}", at=when, point_of_failure=when is None),
    )
    b.facts.update({"mailbox": mailbox.alias, "database": ref.key, "as_of": as_of.isoformat()})
    retention = inv.retention.deleted_mailboxes
    if deleted_at is not None and (as_of - deleted_at).total_seconds() <= retention:
        return _within_retention(b, mailbox, ref, deleted_at, retention, "deleted-mailbox")
    b.facts["needs_backup"] = True
    if deleted_at is None:
        b.warn(
            f"if {mailbox.alias} was deleted less than {retention / 86400:g} days ago, "
            "reconnect it instead (give --deleted-at)"
        )
    if family(ref.server) == "modern" and (ref.server.exchange_version or 0) >= 2010:
        return _recovery_database_plan(b, provider, mailbox, ref, when, reporter, "Recovered")
    from dr.planner.alternate import alternate_steps

    chain, last, rserver = alternate_steps(b, provider, ref, forest, when, reporter)
    b.add(
        "extract-mailbox",
        [mailbox.alias],
        host=rserver,
        needs=last,
        platform=next(s.platform for s in b.steps if s.host == rserver),
        params={
            "mailbox": mailbox.alias,
            "source_server": rserver,
            "dest": f"\\\\{ref.server.name}\\{mailbox.alias}.pst",
        },
        title=f"Extract {mailbox.alias} from the recovery forest (ExMerge)",
    )
    b.facts.update({"method": "recovery-forest", "chains": [chain_facts(chain)]})
    return b.finish(
        recoverable_point=chain.point,
        data_loss_seconds=chain.data_loss_seconds,
        sla=sla_for(inv, [ref.key]),
    )
