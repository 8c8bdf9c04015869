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
  logged like any delete, so only a backup brings them back (:func:`purge_messages`).

Faults of a whole server (``--host``, :func:`apply_host`):

* ``lose-server`` — the machine is gone with its disks: nothing answers at its address, its
  databases, logs and staging folders are lost; its computer account and Exchange server
  object stay in the directory, which is what a rebuild recovers it from;
* ``delete-computer-account`` — someone deleted the server's computer account (what the
  runbook says not to do): a machine joined under the old name gets a new account, and
  ``Setup /Mode:RecoverServer`` then refuses it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from dr.errors import LabError
from dr.exchange import ese
from dr.lab import exstore

if TYPE_CHECKING:
    from dr.lab.estate import Lab

__all__ = ["HOST_FAULTS", "apply", "apply_host", "purge_messages"]


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
