"""Cross-reference checks of an inventory: what pydantic's per-field rules cannot see.

Every check adds problems located at the exact field (file:line:column and a path such as
``servers[2].storage_groups[1].log_prefix``) and all of them run, so one pass over the file
shows everything to fix. The checks are pure: they read the model and the position map.

A set that schedules incremental or differential backups of a storage group with circular
logging on is an **error**, not a warning: those backups would be refused at run time (the
logs they copy are already gone), so the estate as written cannot meet its own schedule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dr.errors import ParameterError, Problem
from dr.model.inventory import Inventory, Mailbox, RecoveryServer, Server, StorageGroup
from dr.model.refs import cover_matches_storage_group, database_candidates
from dr.model.sets import BackupSet, Schedule
from dr.model.yamlpos import Located, PathPart

P = tuple[PathPart, ...]

_DRIVE = re.compile(r"^([A-Za-z]):[\\/]")
_UNC = re.compile(r"^\\\\[^\\]+\\")
# Characters no Windows file or folder name can hold (learn.microsoft.com/windows/win32/
# fileio/naming-a-file): refused before a path can reach a command line or a script file.
_NOT_IN_PATHS = re.compile(r'["<>|\x00-\x1f]')


class Report:
    """Collects problems located through the position map."""

    def __init__(self, located: Located) -> None:
        self.located = located
        self.problems: list[Problem] = []

    def add(self, path: P, message: str) -> None:
        self.problems.append(self.located.problem(path, message))


def check_inventory(inv: Inventory, located: Located) -> list[Problem]:
    """Run every cross-reference check; the problems come back in file order."""
    report = Report(located)
    for check in CHECKS:
        check(inv, report)
    return sorted(report.problems, key=lambda p: (p.line or 0, p.column or 0, p.message))


def _key(name: str) -> str:
    return name.casefold()


def _q(text: str) -> str:
    """Quote a name or Windows path for a message without doubling its backslashes."""
    return f"'{text}'"


def _duplicates(
    report: Report, items: Iterable[tuple[P, str]], what: str, why: str = "names must be unique"
) -> None:
    """Report every name written a second time (case-insensitive, as Exchange compares)."""
    first: dict[str, P] = {}
    for path, name in items:
        if _key(name) in first:
            where = report.located.position(first[_key(name)])
            line = f" (first on line {where[0]})" if where else ""
            report.add(path, f"duplicate {what} {_q(name)}{line} — {why}")
        else:
            first[_key(name)] = path


def check_duplicates(inv: Inventory, report: Report) -> None:
    _duplicates(
        report, ((("servers", i, "name"), s.name) for i, s in enumerate(inv.servers)), "server"
    )
    _duplicates(
        report,
        (
            (("organization", "administrative_groups", i, "name"), g.name)
            for i, g in enumerate(inv.organization.administrative_groups)
        ),
        "administrative group",
    )
    domains = (
        (("forests", f, "domains", d, "name"), dom.name)
        for f, forest in enumerate(inv.forests)
        for d, dom in enumerate(forest.domains)
    )
    _duplicates(report, domains, "domain")
    mailboxes = ((("mailboxes", i, "alias"), m.alias) for i, m in enumerate(inv.mailboxes))
    _duplicates(report, mailboxes, "mailbox")
    sets = ((("backup_sets", i, "name"), b.name) for i, b in enumerate(inv.backup_sets))
    _duplicates(report, sets, "backup set")
    secrets = ((("secrets", i, "name"), s.name) for i, s in enumerate(inv.secrets))
    _duplicates(report, secrets, "secret")
    for i, server in enumerate(inv.servers):
        _storage_duplicates(report, ("servers", i), server.storage_groups)
    for f, forest in enumerate(inv.recovery_forests):
        base: P = ("recovery_forests", f)
        names = ((((*base, "servers", i, "name")), s.name) for i, s in enumerate(forest.servers))
        _duplicates(report, names, "recovery server")
        for i, rserver in enumerate(forest.servers):
            _storage_duplicates(report, (*base, "servers", i), rserver.storage_groups)


def _storage_duplicates(report: Report, base: P, groups: Sequence[StorageGroup]) -> None:
    sgs = (((*base, "storage_groups", g, "name"), sg.name) for g, sg in enumerate(groups))
    _duplicates(report, sgs, "storage group")
    prefixes = (
        ((*base, "storage_groups", g, "log_prefix"), sg.log_prefix) for g, sg in enumerate(groups)
    )
    _duplicates(report, prefixes, "log prefix", "each storage group on a server needs its own")
    for g, sg in enumerate(groups):
        dbs = (
            ((*base, "storage_groups", g, "databases", d, "name"), db.name)
            for d, db in enumerate(sg.databases)
        )
        _duplicates(report, dbs, "database")


def check_domains(inv: Inventory, report: Report) -> None:
    """Servers belong to a declared domain; domain controllers are servers of that domain."""
    known = {_key(d.name) for f in inv.forests for d in f.domains}
    servers = {_key(s.name): s for s in inv.servers}
    for i, server in enumerate(inv.servers):
        if _key(server.domain) not in known:
            report.add(
                ("servers", i, "domain"),
                f"unknown domain {server.domain!r} — declare it under forests[].domains",
            )
    for f, forest in enumerate(inv.forests):
        for d, domain in enumerate(forest.domains):
            for k, dc in enumerate(domain.domain_controllers):
                path: P = ("forests", f, "domains", d, "domain_controllers", k)
                found = servers.get(_key(dc))
                if found is None:
                    report.add(path, f"unknown server {dc!r} — declare it under servers")
                elif _key(found.domain) != _key(domain.name):
                    report.add(
                        path,
                        f"domain controller {dc!r} is a server of {found.domain!r}, "
                        f"not of {domain.name!r} — list it under its own domain",
                    )


def check_exchange_servers(inv: Inventory, report: Report) -> None:
    """Administrative groups, and the storage layout each Exchange version allows."""
    groups = {_key(g.name) for g in inv.organization.administrative_groups}
    for i, server in enumerate(inv.servers):
        base: P = ("servers", i)
        if server.exchange_version is None:
            if server.storage_groups:
                report.add(
                    (*base, "storage_groups"),
                    "storage groups on a server without exchange_version — set its version",
                )
            continue
        if server.administrative_group is None:
            report.add(
                (*base, "name"),
                f"Exchange server {server.name!r} has no administrative_group — restores into a "
                "recovery forest need its legacyExchangeDN; add administrative_group",
            )
        elif _key(server.administrative_group) not in groups:
            report.add(
                (*base, "administrative_group"),
                f"unknown administrative group {server.administrative_group!r} — declare it "
                "under organization.administrative_groups",
            )
        _storage_layout(report, base, server.exchange_version, server.storage_groups)


def _storage_layout(report: Report, base: P, version: int, groups: Sequence[StorageGroup]) -> None:
    for g, sg in enumerate(groups):
        sg_path: P = (*base, "storage_groups", g)
        if version >= 2010 and len(sg.databases) > 1:
            report.add(
                (*sg_path, "databases", 1),
                f"Exchange {version} has one database per log stream; storage group "
                f"{sg.name!r} holds {len(sg.databases)} — give each database its own entry",
            )
        for d, db in enumerate(sg.databases):
            if db.stm is not None and version >= 2007:
                report.add(
                    (*sg_path, "databases", d, "stm"),
                    f"Exchange {version} has no .stm streaming file (2000/2003 only) — remove stm",
                )


def _drive_of(path: str) -> str | None:
    match = _DRIVE.match(path)
    return match.group(1).upper() if match else None


def _check_path(report: Report, path: P, value: str | None, drives: set[str], host: str) -> None:
    """A Windows path must be absolute and, when drives are declared, on one of them."""
    if value is None:
        return
    bad = _NOT_IN_PATHS.search(value)
    if bad:
        report.add(path, f"{bad.group(0)!r} cannot be part of a Windows path — fix the path")
        return
    if _UNC.match(value):
        return
    letter = _drive_of(value)
    if letter is None:
        report.add(path, f"{_q(value)} is not an absolute Windows path (write like E:\\folder)")
    elif drives and letter not in drives:
        have = ", ".join(sorted(drives))
        report.add(
            path,
            f"{_q(value)} is on drive {letter}:, which {host} does not have (it has {have}) "
            "— fix the path or declare the drive",
        )


def check_paths(inv: Inventory, report: Report) -> None:
    """Database, log, system and temp paths sit on drives the server has."""
    for i, server in enumerate(inv.servers):
        _server_paths(report, ("servers", i), server)
        _check_path(
            report, ("servers", i, "temp_folder"), server.temp_folder, _drives(server), server.name
        )
    for f, forest in enumerate(inv.recovery_forests):
        for i, rserver in enumerate(forest.servers):
            _server_paths(report, ("recovery_forests", f, "servers", i), rserver)


def _drives(server: Server | RecoveryServer) -> set[str]:
    return {d.letter for d in server.drives}


def _server_paths(report: Report, base: P, server: Server | RecoveryServer) -> None:
    drives = _drives(server)
    for g, sg in enumerate(server.storage_groups):
        sg_path: P = (*base, "storage_groups", g)
        _check_path(report, (*sg_path, "log_path"), sg.log_path, drives, server.name)
        _check_path(report, (*sg_path, "system_path"), sg.system_path, drives, server.name)
        for d, db in enumerate(sg.databases):
            db_path: P = (*sg_path, "databases", d)
            _check_path(report, (*db_path, "edb"), db.edb, drives, server.name)
            _check_path(report, (*db_path, "stm"), db.stm, drives, server.name)


def _database_ref_problem(inv: Inventory, ref: str) -> str | None:
    """Why ``ref`` does not name exactly one database, or None when it does."""
    try:
        found = database_candidates(inv, ref)
    except ParameterError:
        return f"{ref!r} is not a database reference (write SERVER/SG/DB, SG/DB or DB)"
    if not found:
        return f"unknown database {ref!r} — write SERVER/SG/DB as declared under servers"
    if len(found) > 1:
        keys = ", ".join(d.key for d in found)
        return f"database {ref!r} is ambiguous ({keys}) — write it as SERVER/SG/DB"
    return None


def check_mailboxes(inv: Inventory, report: Report) -> None:
    for i, mailbox in enumerate(inv.mailboxes):
        path: P = ("mailboxes", i, "database")
        problem = _database_ref_problem(inv, mailbox.database)
        if problem:
            report.add(path, problem)
            continue
        (ref,) = database_candidates(inv, mailbox.database)
        if ref.database.kind != "mailbox":
            report.add(path, f"{ref.key} is a public folder store, not a mailbox database")


def check_sla(inv: Inventory, report: Report) -> None:
    for ref in inv.sla.databases:
        problem = _database_ref_problem(inv, ref)
        if problem:
            report.add(("sla", "databases", ref), problem)


def check_hosts(inv: Inventory, report: Report) -> None:
    """Secrets and throughput overrides name servers that exist."""
    servers = {_key(s.name) for s in inv.servers}
    servers |= {_key(r.name) for f in inv.recovery_forests for r in f.servers}
    for i, secret in enumerate(inv.secrets):
        if secret.host is not None and _key(secret.host) not in servers:
            report.add(("secrets", i, "host"), f"unknown server {secret.host!r}")
    for host in inv.throughput.hosts:
        if _key(host) not in servers:
            report.add(("throughput", "hosts", host), f"unknown server {host!r}")


def check_recovery_forests(inv: Inventory, report: Report) -> None:
    """Alternate-server restores need the organization and legacyExchangeDNs to match (B8)."""
    production = {_key(g.name): g for g in inv.organization.administrative_groups}
    for f, forest in enumerate(inv.recovery_forests):
        base: P = ("recovery_forests", f)
        if _key(forest.organization) != _key(inv.organization.name):
            report.add(
                (*base, "organization"),
                f"organization {forest.organization!r} does not match {inv.organization.name!r}"
                " — a restored store mounts only under the same organization name",
            )
        for g, group in enumerate(forest.administrative_groups):
            _recovery_group(report, (*base, "administrative_groups", g), group, production)
        names = {_key(g.name) for g in forest.administrative_groups}
        for i, rserver in enumerate(forest.servers):
            if _key(rserver.administrative_group) not in names:
                report.add(
                    (*base, "servers", i, "administrative_group"),
                    f"unknown administrative group {rserver.administrative_group!r} — declare "
                    f"it under recovery_forests[{f}].administrative_groups",
                )
            _storage_layout(
                report, (*base, "servers", i), rserver.exchange_version, rserver.storage_groups
            )


def _recovery_group(report: Report, path: P, group: Any, production: dict[str, Any]) -> None:
    source = production.get(_key(group.name))
    if source is None:
        report.add(
            (*path, "name"),
            f"unknown administrative group {group.name!r} — the organization has no such group",
        )
    elif source.legacy_exchange_dn.casefold() != group.legacy_exchange_dn.casefold():
        report.add(
            (*path, "legacy_exchange_dn"),
            f"legacyExchangeDN {group.legacy_exchange_dn!r} does not match the organization's "
            f"{source.legacy_exchange_dn!r} — restored stores would not mount",
        )


def check_backup_sets(inv: Inventory, report: Report) -> None:
    """Each set's host exists and has what the set covers; schedules are complete."""
    servers = {_key(s.name): s for s in inv.servers}
    for i, bset in enumerate(inv.backup_sets):
        base: P = ("backup_sets", i)
        _encryption_key(inv, report, base, bset)
        for k, schedule in enumerate(bset.schedules):
            _schedule_shape(report, (*base, "schedules", k), schedule)
        server = servers.get(_key(bset.host))
        if server is None:
            report.add((*base, "host"), f"unknown server {bset.host!r} — declare it under servers")
            continue
        SET_CHECKS[bset.type](inv, report, base, bset, server)
        _temp_folder(report, base, bset, server)


def _encryption_key(inv: Inventory, report: Report, base: P, bset: BackupSet) -> None:
    ref = bset.encryption.key_ref
    if ref is None:
        return
    secret = next((s for s in inv.secrets if _key(s.name) == _key(ref)), None)
    path: P = (*base, "encryption", "key_ref")
    if secret is None:
        report.add(path, f"unknown secret {ref!r} — declare where it is kept under secrets")
    elif secret.kind != "backup-encryption-key":
        report.add(path, f"secret {ref!r} is a {secret.kind}, not a backup-encryption-key")


def _schedule_shape(report: Report, path: P, schedule: Schedule) -> None:
    """day needs at; week needs weekday and at; minutes needs minutes (and nothing else)."""
    if schedule.every in ("day", "week") and schedule.at is None:
        report.add((*path, "every"), f"every: {schedule.every} needs at: HH:MM")
    if schedule.every == "week" and schedule.weekday is None:
        report.add((*path, "every"), "every: week needs weekday: mon ... sun")
    if schedule.every != "week" and schedule.weekday is not None:
        report.add(
            (*path, "weekday"), f"weekday applies to every: week, not every: {schedule.every}"
        )
    if schedule.every == "minutes":
        if schedule.minutes is None:
            report.add((*path, "every"), "every: minutes needs minutes: N (e.g. 15)")
        if schedule.at is not None:
            report.add((*path, "at"), "at applies to every: day or week, not every: minutes")
    elif schedule.minutes is not None:
        report.add(
            (*path, "minutes"), f"minutes applies to every: minutes, not every: {schedule.every}"
        )


def _temp_folder(report: Report, base: P, bset: BackupSet, server: Server) -> None:
    """The staging folder exists on the host; for system backups, off critical volumes (A10)."""
    written = bset.temp_folder is not None
    folder = bset.temp_folder if written else server.temp_folder
    if folder is None:
        return
    path: P = (*base, "temp_folder") if written else (*base, "host")
    if written:
        _check_path(report, path, folder, _drives(server), server.name)
    if bset.type not in ("system-state", "system"):
        return
    critical = {d.letter for d in server.drives if d.critical}
    letter = _drive_of(folder)
    if letter in critical:
        origin = "" if written else f" (the temp_folder of {server.name})"
        report.add(
            path,
            f"temp folder {_q(folder)}{origin} is on critical volume {letter}: — a {bset.type} "
            "backup cannot stage on a volume it backs up; use a non-critical drive",
        )


SetCheck = Callable[[Inventory, Report, P, BackupSet, Server], None]


def _covers_nothing(report: Report, base: P, bset: BackupSet, what: str) -> bool:
    if bset.covers:
        return False
    report.add((*base, "covers"), f"a {bset.type} set must say what it covers: {what}")
    return True


def _exchange_set(inv: Inventory, report: Report, base: P, bset: BackupSet, server: Server) -> None:
    if server.exchange_version is None:
        report.add((*base, "host"), f"{server.name} runs no Exchange — an exchange set needs one")
        return
    if _covers_nothing(report, base, bset, "'all', storage groups or SG/DB"):
        return
    for c, cover in enumerate(bset.covers):
        if not any(cover_matches_storage_group(server, sg, cover) for sg in server.storage_groups):
            report.add(
                (*base, "covers", c),
                f"{server.name} has no storage group or database {cover!r}",
            )
    _circular_logging(report, base, bset, server)


def _circular_logging(report: Report, base: P, bset: BackupSet, server: Server) -> None:
    """Incremental / differential need every log: refused where circular logging deletes them."""
    circular = [
        sg
        for sg in server.storage_groups
        if sg.circular_logging
        and any(cover_matches_storage_group(server, sg, c) for c in bset.covers)
    ]
    if not circular:
        return
    for k, schedule in enumerate(bset.schedules):
        if schedule.backup_type in ("incremental", "differential"):
            names = ", ".join(repr(sg.name) for sg in circular)
            report.add(
                (*base, "schedules", k, "backup_type"),
                f"{schedule.backup_type} backups of {names} are impossible with circular "
                "logging on — turn circular logging off (then take a full) or schedule fulls",
            )


def _mailboxes_on(inv: Inventory, server: Server) -> dict[str, Mailbox]:
    found: dict[str, Mailbox] = {}
    for mailbox in inv.mailboxes:
        refs = database_candidates(inv, mailbox.database) if mailbox.database.strip() else []
        if len(refs) == 1 and _key(refs[0].server.name) == _key(server.name):
            found[_key(mailbox.alias)] = mailbox
    return found


def _mail_level_set(
    inv: Inventory, report: Report, base: P, bset: BackupSet, server: Server
) -> None:
    if server.exchange_version is None:
        report.add((*base, "host"), f"{server.name} runs no Exchange — a mail-level set needs one")
        return
    if _covers_nothing(report, base, bset, "'all' (the mailbox root) or mailbox aliases"):
        return
    local = _mailboxes_on(inv, server)
    for c, cover in enumerate(bset.covers):
        if _key(cover) != "all" and _key(cover) not in local:
            report.add((*base, "covers", c), f"{server.name} holds no mailbox {cover!r}")


def _system_set(inv: Inventory, report: Report, base: P, bset: BackupSet, server: Server) -> None:
    if _covers_nothing(report, base, bset, "drive letters such as C:"):
        return
    drives = _drives(server)
    for c, cover in enumerate(bset.covers):
        letter = cover.strip().rstrip(":\\").upper()
        if _key(cover) != "all" and letter not in drives:
            report.add((*base, "covers", c), f"{server.name} has no drive {cover!r}")


def _files_set(inv: Inventory, report: Report, base: P, bset: BackupSet, server: Server) -> None:
    if _covers_nothing(report, base, bset, "paths such as D:\\Shares"):
        return
    for c, cover in enumerate(bset.covers):
        _check_path(report, (*base, "covers", c), cover, _drives(server), server.name)


def _feature_set(flag: str, what: str) -> SetCheck:
    """A set of a server feature (IIS metabase, KMS, CA) needs a host that has it."""

    def check(inv: Inventory, report: Report, base: P, bset: BackupSet, server: Server) -> None:
        if not getattr(server, flag):
            report.add(
                (*base, "host"),
                f"{server.name} has no {what} (servers[].{flag} is not true) — "
                "move the set to the server that has it",
            )

    return check


def _no_covers(inv: Inventory, report: Report, base: P, bset: BackupSet, server: Server) -> None:
    """System state is all or nothing: nothing to select."""


SET_CHECKS: dict[str, SetCheck] = {
    "exchange": _exchange_set,
    "exchange-mail-level": _mail_level_set,
    "system": _system_set,
    "files": _files_set,
    "system-state": _no_covers,
    "iis-metabase": _feature_set("iis_metabase", "IIS metabase"),
    "kms": _feature_set("kms", "Key Management Service"),
    "ca": _feature_set("certificate_authority", "certificate authority"),
}

CHECKS: list[Callable[[Inventory, Report], None]] = [
    check_duplicates,
    check_domains,
    check_exchange_servers,
    check_paths,
    check_mailboxes,
    check_sla,
    check_hosts,
    check_recovery_forests,
    check_backup_sets,
]
