"""Restoring stores and storage groups (B3), to a point in time (B4), and offline (B5).

The procedure (seeds/004 "Recovering Exchange Stores and Storage Groups"; Microsoft's
checklist "Recovering an Exchange Database", bb124040(v=exchg.65); research/
exchange-and-winrm.md §2.1): dismount the stores and let a restore overwrite them, copy
their own files aside (a mounted store's files are held open), one temporary folder per
storage group (its restore.env), restore the full (and a differential) and the log backups
in order, then the logs still on the server up to the last generation that closes before
the target (2007+ copies them; 2000/2003 replays them where they are), then replay:
``eseutil /cc`` on 2000/2003 (hard recovery: dr runs it itself rather than ticking "Last
Restore Set", so it can stop at the point in time and verify first), ``eseutil /r`` on
2007+. Verify the header is in Clean Shutdown with Log Required 0-0, mount, check.

Storage groups run in parallel; every step touching a group holds ``sg:SERVER/SG``, so its
stores go one after another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PureWindowsPath

from dr.errors import NoFullBefore
from dr.model.inventory import Database, RecoveryServer, Server, StorageGroup
from dr.model.refs import DatabaseRef, resolve_database
from dr.planner.builder import PlanBuilder, platform_of
from dr.planner.chain import Chain, select_chain
from dr.planner.common import (
    Family,
    Series,
    chain_facts,
    family,
    pre_restore_copy,
    require_images,
    sla_for,
    stamp,
    temp_root,
    use_chain,
    win_dir,
    worst_loss,
)
from dr.planner.facts import BackupVersion, FactsProvider, PlanReporter
from dr.planner.rto import ORCHESTRATOR
from engine.plan import Plan, Target

GB = 1_000_000_000


@dataclass(frozen=True)
class RestoreTarget:
    """Where one stream is restored: its own server, or a server of a recovery forest."""

    server: Server | RecoveryServer
    sg: StorageGroup
    databases: tuple[Database, ...]
    original: bool  # the original server: existing files to copy aside, live logs there
    source_keys: tuple[str, ...] = ()  # the backed-up databases, when names differ (an RDB)
    exists: bool = True  # False: no database object yet (an RDB is created after recovery)
    source_sg: str | None = None  # the backed-up storage group, when its name differs (an RDB)

    def source_key(self, chain: Chain, index: int) -> str:
        if self.source_keys:
            return self.source_keys[index]
        return f"{chain.stream}/{self.databases[index].name}"

    @property
    def host(self) -> str:
        return self.server.name

    @property
    def family(self) -> Family:
        return family(self.server)

    @property
    def temp_folder(self) -> str:
        return f"{temp_root(self.server)}\\{self.sg.name}"

    @property
    def staging(self) -> str:
        """Where fetched backups land on the host: beside the temp folder, never inside it,
        so the temp folder stays empty for restore.env and its replay (one per stream)."""
        return f"{staging_root(self.server)}\\{self.sg.name}"

    def staged(self, version_id: str) -> str:
        """A fetched run's folder; a dr backup keeps each storage group in a folder of its
        own name there, so a target of another name (an RDB) is pointed at the source's."""
        base = f"{self.staging}\\{version_id}"
        if self.source_sg and self.source_sg != self.sg.name:
            return f"{base}\\{self.source_sg}"
        return base

    def media(self, version_id: str, media: str) -> str:
        """Where a fetched run's NTBackup media file is on the host ('' for none)."""
        if not media:
            return ""
        return f"{self.staging}\\{version_id}\\" + media.replace("/", "\\")

    @property
    def lock(self) -> str:
        return f"sg:{self.server.name}/{self.sg.name}"

    def key(self, *more: str) -> list[str]:
        return [self.server.name, self.sg.name, *more]


def staging_root(server: Server | RecoveryServer) -> str:
    """``T:\\DRTemp`` → ``T:\\DRStaging``: the fetch target on the temp folder's drive."""
    drive = temp_root(server).split("\\", 1)[0]
    return f"{drive}\\DRStaging"


def group_by_stream(refs: Sequence[DatabaseRef]) -> list[list[DatabaseRef]]:
    """Databases grouped by storage group, in the order first named; duplicates dropped."""
    groups: dict[str, list[DatabaseRef]] = {}
    for ref in refs:
        group = groups.setdefault(ref.storage_group_key, [])
        if all(r.key != ref.key for r in group):
            group.append(ref)
    return list(groups.values())


def stream_chain(
    provider: FactsProvider,
    dbs: Sequence[DatabaseRef],
    at: datetime | None,
    reporter: PlanReporter | None,
    *,
    live: bool = True,
) -> Chain:
    stream = dbs[0].storage_group_key
    chain = select_chain(
        stream,
        provider.stream_backups(stream),
        provider.live_logs(stream) if live else None,
        at,
        database=dbs[0].key,
        reporter=reporter,
    )
    require_images(chain, dbs)
    return chain


# --------------------------------------------------------------------------- steps


def restore_stream(
    b: PlanBuilder, chain: Chain, tgt: RestoreTarget, after: Sequence[str], *, mount: bool = True
) -> list[str]:
    """The steps restoring one stream's databases from ``chain``; returns the last ids.
    ``mount`` False stops after the header check (a recovery database is created then)."""
    use_chain(b, chain)
    s = Series(b, list(after))
    _prepare(s, chain, tgt)
    _restore_sets(s, chain, tgt)
    _replay(s, chain, tgt)
    return _verify_and_mount(s, tgt, mount=mount)


def _on(tgt: RestoreTarget) -> dict[str, object]:
    return {"host": tgt.host, "platform": platform_of(tgt.server), "resources": [tgt.lock]}


def _prepare(s: Series, chain: Chain, tgt: RestoreTarget) -> None:
    names = ", ".join(d.name for d in tgt.databases)
    s.add(
        "check-backup-chain",
        tgt.key(),
        host=ORCHESTRATOR,
        params={
            "db": names,
            "chain": chain.version_ids,
            "first_gen": chain.first_gen,
            "last_gen": chain.stop_gen,
        },
        title=f"Check the backups chosen for {tgt.sg.name} still exist and verify",
    )
    s.add(
        "fetch-artifacts",
        tgt.key(),
        host=ORCHESTRATOR,
        params={"versions": chain.version_ids, "dest": tgt.staging, "host": tgt.host},
        size_bytes=_chain_bytes(chain),
        title="Fetch the chosen backups from the repository",
    )
    if tgt.family == "modern":
        if tgt.exists:
            _dismount(s, tgt)
        if tgt.original:
            _copy_own_files(s, tgt)
    else:
        _dismount(s, tgt)
        if tgt.original:
            _copy_folders(s, tgt)
    s.add(
        "prepare-temp-folder",
        tgt.key(),
        **_on(tgt),
        params={"path": tgt.temp_folder, "sg": tgt.sg.name},
        title=f"An empty temporary folder for {tgt.sg.name} (its own restore.env)",
    )


def _copy_folders(s: Series, tgt: RestoreTarget) -> None:
    """2000/2003, after the dismount (Microsoft's order: "Recovering an Exchange Database",
    bb124040(v=exchg.65)): the restored stores' own files and their group's logs, folder by
    folder. The other stores of a folder stay mounted, and a mounted store holds its files
    open (robocopy: ERROR 32), so only the restored ones are named; the open ``Enn.log`` is
    left out while another store of the group still writes to it."""
    for n, (folder, files, exclude) in enumerate(_folders(tgt), start=1):
        s.add(
            "copy-existing-files",
            tgt.key(str(n)),
            **_on(tgt),
            params={
                "source": folder,
                "dest": pre_restore_copy(folder),
                "files": files,
                "exclude": exclude,
            },
            size_bytes=_folder_bytes(tgt, folder),
            title=f"Copy the existing files in {folder} aside before anything changes",
        )


def _copy_own_files(s: Series, tgt: RestoreTarget) -> None:
    """2007+: after the dismount, only the restored databases' files and their stream's."""
    files = [p for d in tgt.databases for p in (d.edb, d.stm) if p]
    s.add(
        "copy-database-files",
        tgt.key(),
        **_on(tgt),
        params={
            "db": ", ".join(d.name for d in tgt.databases),
            "files": files,
            "log_path": tgt.sg.log_path,
            "prefix": tgt.sg.log_prefix,
            "dest": pre_restore_copy(win_dir(tgt.databases[0].edb)),
        },
        size_bytes=int(sum((d.size_gb or 0) * GB for d in tgt.databases)),
        title="Copy the database's own files and its logs aside before they are replaced",
    )


def _dismount(s: Series, tgt: RestoreTarget) -> None:
    """Each store dismounted, then marked as one a restore may overwrite: on 2000/2003 too,
    where the restore fails without "This database can be overwritten by a restore"
    (bb124040(v=exchg.65), KB 251409)."""
    for db in tgt.databases:
        p = {"server": tgt.host, "sg": tgt.sg.name, "db": db.name}
        s.add(
            "dismount-database", tgt.key(db.name), **_on(tgt), params=p, title=f"Dismount {db.name}"
        )
        s.add(
            "allow-file-restore",
            tgt.key(db.name),
            **_on(tgt),
            params=p,
            title=f"Allow {db.name} to be overwritten by a restore",
        )


def _folders(tgt: RestoreTarget) -> list[tuple[str, list[str], list[str]]]:
    """Each folder to copy aside, the file names to copy there, and those to leave out."""
    files: dict[str, list[str]] = {}
    for db in tgt.databases:
        for path in (db.edb, db.stm):
            if path:
                files.setdefault(win_dir(path), []).append(PureWindowsPath(path).name)
    prefix = tgt.sg.log_prefix
    files.setdefault(tgt.sg.log_path, []).extend([f"{prefix}*.log", f"{prefix}.chk"])
    restored = {d.name for d in tgt.databases}
    still_open = any(d.name not in restored for d in tgt.sg.databases)
    current = [f"{prefix}.log"] if still_open else []
    return [
        (folder, names, current if folder == tgt.sg.log_path else [])
        for folder, names in files.items()
    ]


def _folder_bytes(tgt: RestoreTarget, folder: str) -> int:
    return int(sum((d.size_gb or 0) * GB for d in tgt.databases if win_dir(d.edb) == folder))


def _chain_bytes(chain: Chain) -> int:
    return chain.base.size_bytes + sum(s.size_bytes for s in chain.sources if s.kind != "live")


def _restore_sets(s: Series, chain: Chain, tgt: RestoreTarget) -> None:
    for index, db in enumerate(tgt.databases):
        image = chain.base.image(tgt.source_key(chain, index))
        s.add(
            "restore-database-backup",
            tgt.key(db.name),
            **_on(tgt),
            params={
                "sg": tgt.sg.name,
                "db": db.name,
                "version": chain.base.id,
                "backup_type": chain.base.backup_type,
                "edb": db.edb,
                "stm": db.stm or "",
                "temp_folder": tgt.temp_folder,
                "last_restore_set": False,
                "staged": tgt.staged(chain.base.id),
                "bkf": tgt.media(chain.base.id, chain.base.media),
            },
            size_bytes=(image.size_bytes + image.stm_size_bytes) if image else 0,
            title=f"Restore {db.name} from {chain.base.backup_type} backup {chain.base.id}",
        )
    base = chain.base
    if tgt.family == "modern" and base.logs is not None:
        _log_step(s, tgt, (base.id, base.media), base.logs.prefix, base.logs.first,
                  base.logs.last, "the full backup's logs", 0)  # fmt: skip
    for source in chain.sources:
        if source.kind == "live":
            continue
        what = f"{source.kind} log backup {source.id}"
        _log_step(s, tgt, (source.id, source.media), source.logs.prefix, source.first,
                  source.last, what, source.size_bytes)  # fmt: skip


def _log_step(s: Series, tgt: RestoreTarget, version: tuple[str, str], prefix: str, first: int,
              last: int, what: str, size: int) -> None:  # fmt: skip
    s.add(
        "restore-log-backup",
        tgt.key(version[0]),
        **_on(tgt),
        params={
            "sg": tgt.sg.name,
            "version": version[0],
            "prefix": prefix,
            "first_gen": first,
            "last_gen": last,
            "temp_folder": tgt.temp_folder,
            "last_restore_set": False,
            "staged": tgt.staged(version[0]),
            "bkf": tgt.media(*version),
        },
        size_bytes=size,
        title=f"Restore {what}",
    )


def _replay(s: Series, chain: Chain, tgt: RestoreTarget) -> None:
    prefix = tgt.sg.log_prefix
    stop = chain.stop_gen
    live = chain.live
    # 2000/2003 to the point of failure: eseutil /cc replays the group's own logs where they
    # are, after the restored ones. Copying them would fail: while another store of the
    # group is mounted its open Enn.log is held (and needs no copy: the store's own
    # recovery reads it). They are checked in place instead.
    in_place = tgt.family == "legacy" and _play_forward(chain, tgt)
    if live is not None and stop is not None and not in_place:
        s.add(
            "copy-live-logs",
            tgt.key(),
            **_on(tgt),
            params={
                "sg": tgt.sg.name,
                "prefix": prefix,
                "log_path": tgt.sg.log_path,
                "first_gen": live.first,
                "last_gen": min(live.last, stop),
                "dest": tgt.temp_folder,
                # the newest generation is the open Enn.log itself (0: not needed / not listed)
                "current_gen": live.current if live.current and live.current <= stop else 0,
            },
            size_bytes=live.size_bytes,
            title="Use the logs still on the server",
        )
    if stop is not None and chain.trimmed:
        _remove_after(s, tgt, tgt.temp_folder, stop, "temp")
    restored_top = _restored_top(chain) if in_place and live is not None else stop
    if stop is not None and chain.first_gen is not None and restored_top is not None:
        s.add(
            "verify-log-sequence",
            tgt.key(),
            **_on(tgt),
            params={
                "prefix": prefix,
                "log_path": tgt.temp_folder,
                "first_gen": chain.first_gen,
                "last_gen": restored_top,
            },
            title="Check no log is missing or foreign in the range to replay",
        )
    if in_place and live is not None and stop is not None:
        s.add(
            "verify-log-sequence",
            tgt.key("server"),
            **_on(tgt),
            params={
                "prefix": prefix,
                "log_path": tgt.sg.log_path,
                "first_gen": live.first,
                "last_gen": min(live.last, stop),
            },
            title="Check the logs still on the server, which the replay plays where they are",
        )
    replay = (stop - (chain.first_gen or stop) + 1) if stop is not None else 0
    if tgt.family == "legacy":
        s.add(
            "hard-recovery",
            tgt.key(),
            **_on(tgt),
            replay_logs=replay,
            params={
                "temp_folder": tgt.temp_folder,
                "log_path": tgt.sg.log_path,
                "play_forward": _play_forward(chain, tgt),
                "edbs": [d.edb for d in tgt.databases],
            },
            title="Replay the logs: eseutil /cc (the last restore set)",
        )
    else:
        s.add(
            "soft-recovery",
            tgt.key(),
            **_on(tgt),
            replay_logs=replay,
            params={
                "prefix": prefix,
                "log_path": tgt.temp_folder,
                "system_path": tgt.temp_folder,
                "db_path": win_dir(tgt.databases[0].edb),
            },
            title="Replay the logs: eseutil /r",
        )


def _play_forward(chain: Chain, tgt: RestoreTarget) -> bool:
    """To a point in time (or on another server) only the restore folder's logs play
    (``/t``); to the point of failure the storage group's own logs follow."""
    return tgt.original and chain.target is None


def _restored_top(chain: Chain) -> int | None:
    """The last generation the restored backups bring to the temporary folder."""
    tops = [s.last for s in chain.sources if s.kind != "live"]
    tops += [chain.base.logs.last] if chain.base.logs else []
    return max(tops) if tops else chain.first_gen


def _remove_after(s: Series, tgt: RestoreTarget, path: str, stop: int, where: str) -> None:
    s.add(
        "remove-logs-after",
        tgt.key(where),
        **_on(tgt),
        params={"prefix": tgt.sg.log_prefix, "log_path": path, "after_gen": stop},
        title=f"Move logs after generation {stop} out of {path} so replay stops there",
    )


def _verify_and_mount(s: Series, tgt: RestoreTarget, *, mount: bool = True) -> list[str]:
    for db in tgt.databases:
        s.add(
            "verify-database-header",
            tgt.key(db.name),
            **_on(tgt),
            params={"edb": db.edb, "expect_state": "Clean Shutdown"},
            title=f"eseutil /mh {db.name}: Clean Shutdown, Log Required 0-0",
        )
    if not mount:
        return s.last
    for db in tgt.databases:
        p = {"server": tgt.host, "sg": tgt.sg.name, "db": db.name}
        s.add("mount-database", tgt.key(db.name), **_on(tgt), params=p, title=f"Mount {db.name}")
        s.add(
            "verify-mount",
            tgt.key(db.name),
            **_on(tgt),
            params=p,
            title=f"Check {db.name} is mounted and answers",
        )
    return s.last


# --------------------------------------------------------------------------- the scenario


def _target(refs: Sequence[DatabaseRef], at: datetime | None, what: str = "database") -> Target:
    return Target(
        what=f"{what} " + ", ".join(r.key for r in refs), at=at, point_of_failure=at is None
    )


def plan_database(
    provider: FactsProvider,
    refs: Sequence[str],
    at: datetime | None = None,
    reporter: PlanReporter | None = None,
) -> Plan:
    """B3/B4: restore databases on their own server, to ``at`` or the point of failure."""
    inv = provider.inventory()
    dbs = [resolve_database(inv, r) for r in refs]
    b = PlanBuilder(provider, "database", _target(dbs, at))
    chains = []
    for group in group_by_stream(dbs):
        chain = stream_chain(provider, group, at, reporter)
        tgt = RestoreTarget(
            group[0].server, group[0].storage_group, tuple(r.database for r in group), original=True
        )
        restore_stream(b, chain, tgt, [])
        chains.append(chain)
    b.facts["chains"] = [chain_facts(c) for c in chains]
    b.facts["family"] = sorted({family(d.server) for d in dbs})
    return b.finish(
        recoverable_point=min(c.point for c in chains),
        data_loss_seconds=worst_loss(c.data_loss_seconds for c in chains),
        sla=sla_for(inv, [d.key for d in dbs]),
    )


# --------------------------------------------------------------------------- offline (B5)


def offline_version(
    provider: FactsProvider, ref: DatabaseRef, at: datetime | None
) -> BackupVersion:
    """The latest offline (.edb + .stm file) backup of the database at or before ``at``."""
    found = [
        v
        for v in provider.stream_backups(ref.storage_group_key)
        if v.offline
        and not v.expired
        and v.image(ref.key) is not None
        and (at is None or v.at <= at)
    ]
    if not found:
        raise NoFullBefore(
            f"{ref.key}: no offline backup at or before {stamp(at)}",
            hint="an offline restore needs a file copy of the stopped database (.edb and .stm); "
            "use `dr plan database` for an online restore",
            details={"database": ref.key, "target": at.isoformat() if at else None},
        )
    return max(found, key=lambda v: (v.at, v.id))


def plan_offline(
    provider: FactsProvider,
    refs: Sequence[str],
    at: datetime | None = None,
    *,
    forest: str | None = None,
    in_place: bool = False,
) -> Plan:
    """B5: the offline copy (.edb and .stm together, one directory) put on the recovery
    server after its own database and log files are moved aside; the production database
    is not touched. ``in_place``: over the original database instead (an online restore has
    failed), its files and the group's logs moved aside first, never deleted."""
    inv = provider.inventory()
    dbs = [resolve_database(inv, r) for r in refs]
    where = "over the original" if in_place else "on the recovery server"
    b = PlanBuilder(provider, "database-offline", _target(dbs, at, f"offline database ({where})"))
    points = []
    for ref in dbs:
        version = offline_version(provider, ref, at)
        b.use(version)
        if in_place:
            tgt = RestoreTarget(ref.server, ref.storage_group, (ref.database,), original=True)
            after: list[str] = []
        else:
            tgt, after = _recovery_target(b, ref, forest)
        _offline_steps(b, tgt, version, ref.key, after)
        points.append(version.at)
    b.warn("an offline restore cannot roll forward: changes after the backup are lost")
    point = min(points)
    loss = (at - point).total_seconds() if at else None
    b.facts["versions"] = sorted({p.isoformat() for p in points})
    b.facts["in_place"] = in_place
    return b.finish(
        recoverable_point=point, data_loss_seconds=loss, sla=sla_for(inv, [d.key for d in dbs])
    )


def _recovery_target(
    b: PlanBuilder, ref: DatabaseRef, forest_name: str | None
) -> tuple[RestoreTarget, list[str]]:
    """The recovery forest's server whose names match ``ref`` (checked first, as for an
    alternate restore): the offline copy goes into its database of the same name."""
    from dr.planner.alternate import choose_recovery_server, forest_check

    forest, server = choose_recovery_server(b.inv, forest_name, ref)
    sg, db, check = forest_check(b, forest, server, ref)
    b.facts["forest"] = forest.name
    b.facts["recovery_server"] = server.name
    return RestoreTarget(server, sg, (db,), original=False, source_keys=(ref.key,)), [check]


def _offline_steps(
    b: PlanBuilder, tgt: RestoreTarget, version: BackupVersion, source: str, after: list[str]
) -> None:
    """Fetch, dismount every store of the target's group, allow the files to be replaced,
    move the target's files and the group's logs aside (never delete: the way back is to
    move them home), copy the staged .edb and .stm together, check, mount."""
    db = tgt.databases[0]
    image = version.image(source)
    s = Series(b, list(after))
    s.add(
        "fetch-artifacts",
        tgt.key(db.name),
        host=ORCHESTRATOR,
        params={"versions": [version.id], "dest": tgt.staging, "host": tgt.host},
        size_bytes=version.size_bytes,
        title="Fetch the offline backup from the repository",
    )
    siblings = tgt.sg.databases
    for other in siblings:  # the group's logs are moved: none of its stores may be mounted
        p = {"server": tgt.host, "sg": tgt.sg.name, "db": other.name}
        s.add("dismount-database", tgt.key(other.name), **_on(tgt), params=p,
              title=f"Dismount {other.name}")  # fmt: skip
    # Database portability (OfficeDocs-Exchange database-portability.md): Set-MailboxDatabase
    # -AllowFileRestore $true before the files are moved in and mounted; on 2000/2003 "This
    # database can be overwritten by a restore" (bb124040(v=exchg.65), KB 251409)
    s.add(
        "allow-file-restore",
        tgt.key(db.name),
        **_on(tgt),
        params={"server": tgt.host, "sg": tgt.sg.name, "db": db.name},
        title=f"Allow {db.name} to be overwritten by a restore",
    )
    s.add(
        "move-aside-files",
        tgt.key(db.name),
        **_on(tgt),
        params={
            "files": [db.edb, *([db.stm] if db.stm else [])],
            "log_path": tgt.sg.log_path,
            "prefix": tgt.sg.log_prefix,
            "dest": pre_restore_copy(win_dir(db.edb)),
        },
        size_bytes=int((db.size_gb or 0) * GB),
        title="Move the replaced database files and the group's logs aside (kept, not deleted)",
    )
    s.add(
        "restore-offline-files",
        tgt.key(db.name),
        **_on(tgt),
        params={
            "version": version.id,
            "edb": db.edb,
            "stm": db.stm or "",
            "dest_dir": win_dir(db.edb),
            "staged": tgt.staged(version.id),
        },
        size_bytes=(image.size_bytes + image.stm_size_bytes) if image else 0,
        title=".edb and .stm from the fetched backup, together into one directory",
    )
    s.add(
        "verify-database-header",
        tgt.key(db.name),
        **_on(tgt),
        params={"edb": db.edb, "expect_state": "Clean Shutdown"},
        title="eseutil /mh: Clean Shutdown, Log Required 0-0",
    )
    for other in [db, *(d for d in siblings if d.name != db.name)]:
        p = {"server": tgt.host, "sg": tgt.sg.name, "db": other.name}
        s.add("mount-database", tgt.key(other.name), **_on(tgt), params=p,
              title=f"Mount {other.name}")  # fmt: skip
        s.add(
            "verify-mount",
            tgt.key(other.name),
            **_on(tgt),
            params=p,
            title=f"Check {other.name} is mounted and answers",
        )
