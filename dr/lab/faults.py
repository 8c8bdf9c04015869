"""Faults the lab can suffer, as a failure would cause them (``dr lab break``).

Each changes the lab host's files and state the way the real failure leaves a server, and
is recorded in ``lab.json`` with the lab time it happened:

* ``crash-store`` — the store stops with the database attached: Dirty Shutdown, the mounted
  flag gone, the files no longer held open;
* ``corrupt-page`` — a crash, and one data page damaged (``eseutil /k`` reports a bad
  checksum; replay and mount stop with -1018);
* ``lose-database`` — the ``.edb`` (and ``.stm``) is gone, as after a failed disk;
* ``delete-log`` / ``swap-log`` — one numbered log of the stream is deleted, or replaced by a
  log of another stream (another log signature);
* ``purge-messages`` — a user deletes messages of one mailbox and they are purged (a hard
  delete past Recoverable Items, or deleted-item retention run out): gone from the store,
  logged like any delete, so only a backup brings them back (:func:`purge_messages`);
* ``fill-disk`` — a drive of a host has no free space left (:func:`fill_disk`);
* ``unreachable`` — a host stops answering on the network, at once or mid-run
  (:func:`unreachable`, :mod:`dr.lab.network`);
* ``expire-backups`` — a database's backups are gone: expired by retention in the catalog,
  or lost from the repository while the catalog still lists them (:func:`expire_backups`).

``fill-disk`` and ``unreachable`` are undone by :func:`repair` (``dr lab repair``), so a
responder can practise what comes after: free the space, bring the host back, resume.

Faults of a whole server (``--host``, :func:`apply_host`):

* ``lose-server`` — the machine is gone with its disks: nothing answers at its address, its
  databases, logs and staging folders are lost; its computer account and Exchange server
  object stay in the directory, which is what a rebuild recovers it from;
* ``delete-computer-account`` — someone deleted the server's computer account (what the
  runbook says not to do): a machine joined under the old name gets a new account, and
  ``Setup /Mode:RecoverServer`` then refuses it.

Faults of the directory (:func:`lose_dc`, :func:`delete_object`):

* ``lose-dc`` — a domain controller's directory database is unusable and its local backup
  catalog lost; the machine answers, NTDS does not start;
* ``delete-object`` — an object (``--dn``, or a user by ``--user ALIAS``) deleted by mistake;
  the deletion replicates, so only an authoritative restore brings it back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dr.errors import LabError
from dr.exchange import ese
from dr.lab import exstore

if TYPE_CHECKING:
    from dr.lab.estate import Lab

__all__ = ["DC_FAULTS", "HOST_FAULTS", "apply", "apply_host", "delete_object",
           "expire_backups", "fill_disk", "lose_dc", "purge_messages", "repair",
           "unreachable"]  # fmt: skip


def apply(lab: Lab, kind: str, db: str, generation: int | None = None) -> str:
    server, db_name = lab._locate(db, None)
    host = lab.host(server)
    sg, database = host.find_db(db_name)
    said = _APPLY[kind](lab, host, sg, database, generation)
    host.save()
    lab.state.setdefault("faults", []).append(
        {
            "kind": kind,
            "database": f"{server}/{sg.name}/{database.name}",
            "generation": generation,
            "at": lab.now().isoformat(),
        }
    )
    lab.save()
    return said


def _crash(lab, host, sg, database, generation) -> str:  # type: ignore[no-untyped-def]
    host.crash(database.name)
    return f"{host.name}: the store stopped with {database.name} attached (Dirty Shutdown)"


def _corrupt(lab, host, sg, database, generation) -> str:  # type: ignore[no-untyped-def]
    host.crash(database.name)
    path = host.path(database.edb)
    header = exstore.read_db_header(path)
    page = generation or 1
    with path.open("r+b") as fh:
        fh.seek((page + 1) * header.page_size + 40)
        fh.write(b"\xde\xad\xbe\xef")
    return f"{host.name}: {database.name} crashed and page {page} is damaged"


def _lose(lab, host, sg, database, generation) -> str:  # type: ignore[no-untyped-def]
    host.crash(database.name)
    for path in (database.edb, database.stm):
        if path and host.path(path).exists():
            host.path(path).unlink()
    return f"{host.name}: {database.edb} is gone"


def _log_path(host, sg, generation):  # type: ignore[no-untyped-def]
    if generation is None:
        raise LabError("say which log: --gen N")
    path = host.log_dir(host.streams[sg.name]) / host.log_name(host.streams[sg.name], generation)
    if not path.exists():
        raise LabError(f"{host.name}: there is no log generation {generation} of {sg.name} on the "
                       "server", hint="`dr lab status` shows the current generation")  # fmt: skip
    return path


def _delete_log(lab, host, sg, database, generation) -> str:  # type: ignore[no-untyped-def]
    path = _log_path(host, sg, generation)
    path.unlink()
    return f"{host.name}: log {path.name} deleted"


def _swap_log(lab, host, sg, database, generation) -> str:  # type: ignore[no-untyped-def]
    path = _log_path(host, sg, generation)
    log = exstore.read_log(path)
    other = ese.Signature(log.header.signature.random ^ 0x5A5A5A, log.header.signature.created)
    header = replace(log.header, signature=other)
    exstore.write_log(path, header, list(log.records), path.stat().st_size)
    return f"{host.name}: log {path.name} replaced by one of another stream"


_APPLY = {"crash-store": _crash, "corrupt-page": _corrupt, "lose-database": _lose,
          "delete-log": _delete_log, "swap-log": _swap_log}  # fmt: skip


def apply_host(lab: Lab, kind: str, name: str) -> str:
    """A fault of a whole server (``lose-server``, ``delete-computer-account``)."""
    server = lab.server(name)
    if kind == "lose-server":
        host = lab.host(server.name)
        if not host.machine.present:
            raise LabError(f"{server.name} is already lost", hint="`dr lab status` shows it")
        host.lose()
        host.save()
        said = (f"{server.name}: the server is lost with its disks (databases, logs, "
                "staging); its computer account and Exchange server object stay in the "
                "directory")  # fmt: skip
    elif kind == "delete-computer-account":
        try:
            lab.directory_store.delete_account(server.name)
        except KeyError:
            raise LabError(f"{server.name} has no computer account to delete") from None
        said = f"{server.name}: its computer account is deleted from the directory"
    else:
        raise LabError(f"unknown fault {kind!r}", hint="one of: " + ", ".join(HOST_FAULTS))
    lab.state.setdefault("faults", []).append(
        {"kind": kind, "host": server.name, "at": lab.now().isoformat()}
    )
    lab.save()
    return said


HOST_FAULTS = ("lose-server", "delete-computer-account")
DC_FAULTS = ("lose-dc", "delete-object")


def lose_dc(lab: Lab, name: str) -> str:
    """A domain controller's directory database is unusable (a failed disk, a damaged
    ``ntds.dit``) and its local backup catalog with it: NTDS does not start, the machine
    still answers; only a system state restore (in DSRM) brings its directory back."""
    dc = lab.dc(name)
    state = dc.load()
    if state.ntds != "ok":
        raise LabError(f"{dc.name}'s directory database is already unusable")
    state.ntds, state.catalog, state.copy = "unusable", False, None
    dc.save()
    _record(lab, {"kind": "lose-dc", "host": dc.name})
    return (f"{dc.name}: its directory database is unusable (NTDS does not start) and its "
            "local backup catalog is lost; its backups on D: are still there")  # fmt: skip


def delete_object(lab: Lab, dn: str | None, user: str | None) -> str:
    """An object deleted by mistake on a domain controller that runs: the deletion
    replicates to every domain controller that runs (the lab records the object as it was:
    the truth a restore is checked against)."""
    store = lab.directory_store
    if user is not None:
        found = store.user(user)
        if found is None:
            raise LabError(f"no user with alias {user!r} in the directory",
                           hint="`dr inventory show` lists the mailboxes")  # fmt: skip
        dn = found["distinguishedName"]
    if not dn:
        raise LabError("say which object: --dn DN or --user ALIAS")
    try:
        obj = store.delete_object(dn)
    except KeyError:
        raise LabError(
            f"no object {dn!r} in the directory",
            hint="give the distinguished name as the directory holds it",
        ) from None
    _record(lab, {"kind": "delete-object", "dn": obj["distinguishedName"], "object": obj})
    return f"{obj['distinguishedName']} deleted; the deletion replicates to every DC that runs"


def purge_messages(lab: Lab, alias: str, count: int) -> str:
    """The ``count`` oldest messages of mailbox ``alias`` deleted and purged, as the store
    logs a delete (the truth records it); the fault names them in ``lab.json``."""
    from dr.model.refs import resolve_database

    if count < 1:
        raise LabError("--count: purge at least one message")
    mailbox = next((m for m in lab.inventory.mailboxes if m.alias.lower() == alias.lower()), None)
    if mailbox is None:
        raise LabError(
            f"no mailbox {alias!r} in the lab",
            hint="name one by alias, as the inventory's mailboxes: list them",
        )
    ref = resolve_database(lab.inventory, mailbox.database)
    host = lab.host(ref.server.name)
    sg, database = host.find_db(ref.database.name)
    if not host.dbs[host.db_key(sg, database)].mounted:
        raise LabError(f"{host.name}: {database.name} is not mounted; a user deletes nothing there",
                       hint="mount it first (Mount-Database through `dr lab exec`)")  # fmt: skip
    held = {m.id: m for m in exstore.contents(host.path(database.edb)).values()
            if m.mailbox == mailbox.alias}  # fmt: skip
    delivered = {txn.message.id: txn.at for txn in lab.transactions(host.name)
                 if txn.op == "deliver" and txn.message.id in held}  # fmt: skip
    oldest = sorted(held.values(), key=lambda m: (delivered.get(m.id, lab.now()), m.id))[:count]
    if not oldest:
        raise LabError(f"{mailbox.alias} holds no message to purge")
    for message in oldest:
        host.delete(database.name, message)
    host.save()
    lab.state.setdefault("faults", []).append(
        {
            "kind": "purge-messages",
            "database": f"{host.name}/{sg.name}/{database.name}",
            "mailbox": mailbox.alias,
            "messages": [m.id for m in oldest],
            "at": lab.now().isoformat(),
        }
    )
    lab.save()
    return (f"{host.name}: {len(oldest)} messages of {mailbox.alias} deleted and purged from "
            f"{database.name}: " + ", ".join(f"{m.folder}/{m.id}" for m in oldest))  # fmt: skip


# -- faults of a host, not of one database -------------------------------------------------


def _record(lab: Lab, entry: dict[str, Any], key: str = "faults") -> None:
    lab.state.setdefault(key, []).append({**entry, "at": lab.now().isoformat()})
    lab.save()


def _host_and_drive(lab: Lab, host: str | None, drive: str | None, db: str | None):  # type: ignore[no-untyped-def]
    """The host and drive letter named, or the server and drive of database ``db``."""
    if db is not None:
        server, db_name = lab._locate(db, host)
        target = lab.host(server)
        _, database = target.find_db(db_name)
        return target, (drive or database.edb)[0].upper()
    if host is None or drive is None:
        raise LabError("say which drive: --host H --drive E, or --db DB (the database's drive)")
    target = lab.host(host)
    letter = drive.strip().rstrip(":\\").upper()
    if len(letter) != 1 or not (target.root / letter).is_dir():
        drives = sorted(p.name for p in target.root.iterdir() if len(p.name) == 1 and p.is_dir())
        raise LabError(
            f"{target.name} has no drive {drive!r}", hint="its drives: " + ", ".join(drives)
        )
    return target, letter


def fill_disk(lab: Lab, host: str | None, drive: str | None, db: str | None) -> str:
    """The drive has no free space left, as when a dump or a runaway log fills it: every
    write that needs room fails as Windows fails it ("There is not enough space on the
    disk.", robocopy's ERROR 112, eseutil's -1808); Get-PSDrive and Win32_LogicalDisk show
    0 free. Deleting files there frees their size, as on a real disk."""
    target, letter = _host_and_drive(lab, host, drive, db)
    target.refresh()
    used = target.fs.used(letter)
    target.fs.set_quota(letter, used)
    target.save()
    _record(lab, {"kind": "fill-disk", "host": target.name, "drive": letter})
    return (f"{target.name}: drive {letter}: is full (0 bytes free, {used} bytes used); `dr "
            f"lab repair fill-disk --host {target.name} --drive {letter}` frees it")  # fmt: skip


def unreachable(
    lab: Lab,
    host: str,
    after: int | None = None,
    at_command: str | None = None,
    at_step: tuple[str, str] | None = None,
) -> str:
    """The host stops answering WinRM: now, after ``after`` more commands, during the first
    command matching ``at_command``, or during ``at_step`` (a plan step's id and the script
    its command sends) — that command runs to its end, its answer is lost."""
    import re

    from dr.lab.network import Reachability

    target = lab.endpoint(host)  # an Exchange server or a domain controller
    if sum(x is not None for x in (after, at_command, at_step)) > 1:
        raise LabError("give one of --after-commands, --at-command, --at-step")
    if after is not None and after < 0:
        raise LabError("--after-commands counts commands: 0 or more")
    try:
        Reachability(target.root).break_(after, at_command, at_step)
    except re.error as exc:
        raise LabError(f"--at-command {at_command!r} is not a regular expression: {exc}") from None
    step = at_step[0] if at_step else None
    _record(lab, {"kind": "unreachable", "host": target.name, "after_commands": after,
                  "at_command": at_command, "at_step": step})  # fmt: skip
    repair_hint = f"`dr lab repair unreachable --host {target.name}` brings it back"
    if at_step is not None:
        return (f"{target.name} will stop answering during step {at_step[0]} (its command "
                f"runs; its answer is lost); {repair_hint}")  # fmt: skip
    if at_command is not None:
        return (f"{target.name} will stop answering during the first command matching "
                f"{at_command!r} (it runs; its answer is lost); {repair_hint}")  # fmt: skip
    if after is not None:
        return (f"{target.name} will answer {after} more commands, then stop answering during "
                f"the next (it runs; its answer is lost); {repair_hint}")  # fmt: skip
    return f"{target.name} no longer answers WinRM (connections refused); {repair_hint}"


REPAIRABLE = ("fill-disk", "unreachable")


def repair(lab: Lab, kind: str, host: str | None, drive: str | None = None,
           db: str | None = None) -> str:  # fmt: skip
    """Undo ``fill-disk`` (the filler is deleted: the drive's space is back) or
    ``unreachable`` (the host answers again; ``dr lab serve`` listens within a second)."""
    if kind == "fill-disk":
        target, letter = _host_and_drive(lab, host, drive, db)
        target.refresh()
        if target.fs.quotas.pop(letter, None) is None:
            raise LabError(f"{target.name}: drive {letter}: is not full")
        target.save()
        _record(lab, {"kind": kind, "host": target.name, "drive": letter}, "repairs")
        return f"{target.name}: drive {letter}: has free space again"
    if kind == "unreachable":
        from dr.lab.network import Reachability

        if host is None:
            raise LabError("say which host: --host H")
        target = lab.endpoint(host)
        if not Reachability(target.root).repair():
            raise LabError(f"{target.name} is reachable: there is nothing to repair")
        _record(lab, {"kind": kind, "host": target.name}, "repairs")
        return f"{target.name} answers WinRM again"
    raise LabError(
        f"{kind!r} cannot be repaired from the lab", hint="one of: " + ", ".join(REPAIRABLE)
    )


def expire_backups(
    lab: Lab,
    catalog_path: Path,
    repository: Path | None,
    db: str,
    before: datetime | None = None,
    lost: bool = False,
) -> str:
    """Database ``db``'s backups taken before ``before`` (default: all of them) are gone.

    As retention leaves them (the default): every artifact of those runs' backups of the
    database's stream is marked expired in the catalog, exactly as `dr retention apply`
    marks what it expires (``Catalog.mark_expired``); the planner no longer chooses them and
    a plan made before refuses at its first step. With ``lost``, as a lost tape or a deleted
    repository folder leaves them: the repository versions holding those runs are deleted
    (whole versions: another database backed up in the same run loses those backups too)
    while the catalog still lists them — a plan is made, and its run stops when it checks
    or fetches them."""
    from dr.catalog import Catalog
    from dr.catalog.model import FACT_KINDS

    server, db_name = lab._locate(db, None)
    sg, _ = lab.host(server).find_db(db_name)
    with Catalog.open(catalog_path) as catalog:
        runs = {r.id: r for r in catalog.runs(host=server)}
        chosen = [
            a for a in catalog.artifacts(storage_group=f"{server}/{sg.name}")
            if a.host == server and a.kind not in FACT_KINDS and a.run_id in runs
            and (before is None or runs[a.run_id].started < before)
        ]  # fmt: skip
        run_ids = sorted({a.run_id for a in chosen})
        if not run_ids:
            when = f" before {before.isoformat()}" if before else ""
            raise LabError(f"{server}/{sg.name}: no backup of {db_name}{when} in the catalog "
                           "to expire")  # fmt: skip
        if not lost:
            catalog.mark_expired(artifact_ids=[a.id for a in chosen])
        else:
            gone = _lose_versions(catalog, repository, run_ids)
    names = ", ".join(f"run-{i}" for i in run_ids)
    _record(lab, {"kind": "expire-backups", "database": f"{server}/{sg.name}/{db_name}",
                  "runs": [f"run-{i}" for i in run_ids], "lost": lost,
                  "before": before.isoformat() if before else None})  # fmt: skip
    if not lost:
        return f"{server}: {db_name}'s backups {names} are expired in the catalog (retention)"
    return (f"{server}: the repository lost the versions holding {names} ({len(gone)} "
            f"versions); the catalog still lists them")  # fmt: skip


def _lose_versions(catalog: Any, repository: Path | None, run_ids: list[int]) -> list[str]:
    from dr.catalog.model import FACT_KINDS
    from dr.store.fetch import _stored_in
    from dr.store.format import MANIFEST_DIR

    if repository is None:
        raise LabError("the workspace has no repository: nothing to lose")
    versions = set()
    for run_id in run_ids:
        artifacts = [a for a in catalog.artifacts(run_id=run_id) if a.kind not in FACT_KINDS]
        _, version = _stored_in(artifacts)
        if version is not None:
            versions.add(version)
    if not versions:
        raise LabError("those backups are not in dr's repository (another tool's): nothing to lose")
    for version in sorted(versions):
        (Path(repository) / MANIFEST_DIR / version).unlink(missing_ok=True)
    return sorted(versions)
