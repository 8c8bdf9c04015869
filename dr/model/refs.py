"""References to storage groups and databases, as people write them.

A database is named ``SERVER/SG/DB`` in full; ``SG/DB`` or ``DB`` are accepted when they
name exactly one database in the estate (and ``SERVER/DB`` when that is unambiguous, which
suits 2010+ servers whose storage group carries the database's name). Names compare without
regard to case, as Exchange compares them. The canonical ``key`` is what the catalog and the
planner store, so two spellings of one database never become two histories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from dr.errors import NotFoundError, ParameterError
from dr.model.inventory import Database, Inventory, Server, StorageGroup


@dataclass(frozen=True)
class StorageGroupRef:
    server: Server
    storage_group: StorageGroup

    @property
    def key(self) -> str:
        return f"{self.server.name}/{self.storage_group.name}"


@dataclass(frozen=True)
class DatabaseRef:
    server: Server
    storage_group: StorageGroup
    database: Database

    @property
    def key(self) -> str:
        return f"{self.server.name}/{self.storage_group.name}/{self.database.name}"

    @property
    def storage_group_key(self) -> str:
        return f"{self.server.name}/{self.storage_group.name}"


_Ref = TypeVar("_Ref", DatabaseRef, StorageGroupRef)


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _split(ref: str) -> list[str]:
    parts = [p.strip() for p in ref.strip().strip("/").split("/")]
    if not ref.strip() or any(not p for p in parts):
        raise ParameterError(f"{ref!r} is not a reference", hint="write SERVER/SG/DB, SG/DB or DB")
    return parts


def all_storage_groups(inv: Inventory) -> list[StorageGroupRef]:
    """Every storage group (log stream) of the estate, server by server."""
    return [StorageGroupRef(s, sg) for s in inv.servers for sg in s.storage_groups]


def all_databases(inv: Inventory) -> list[DatabaseRef]:
    """Every database of the estate, in file order."""
    return [
        DatabaseRef(s, sg, db)
        for s in inv.servers
        for sg in s.storage_groups
        for db in sg.databases
    ]


def database_candidates(inv: Inventory, ref: str) -> list[DatabaseRef]:
    """All databases ``ref`` may mean (empty: none; more than one: ambiguous)."""
    parts = _split(ref)
    dbs = all_databases(inv)
    if len(parts) == 3:
        server, sg, db = parts
        return [
            d
            for d in dbs
            if _same(d.server.name, server)
            and _same(d.storage_group.name, sg)
            and _same(d.database.name, db)
        ]
    if len(parts) == 2:
        first, db = parts
        by_sg = [
            d for d in dbs if _same(d.storage_group.name, first) and _same(d.database.name, db)
        ]
        if by_sg:
            return by_sg
        return [d for d in dbs if _same(d.server.name, first) and _same(d.database.name, db)]
    if len(parts) == 1:
        return [d for d in dbs if _same(d.database.name, parts[0])]
    return []


def storage_group_candidates(inv: Inventory, ref: str) -> list[StorageGroupRef]:
    """All storage groups ``ref`` (``SERVER/SG`` or ``SG``) may mean."""
    parts = _split(ref)
    sgs = all_storage_groups(inv)
    if len(parts) == 2:
        return [
            g
            for g in sgs
            if _same(g.server.name, parts[0]) and _same(g.storage_group.name, parts[1])
        ]
    if len(parts) == 1:
        return [g for g in sgs if _same(g.storage_group.name, parts[0])]
    return []


def resolve_database(inv: Inventory, ref: str) -> DatabaseRef:
    """The one database ``ref`` names; NotFoundError if none, ParameterError if several."""
    return _one(database_candidates(inv, ref), ref, "database", "SERVER/SG/DB")


def resolve_storage_group(inv: Inventory, ref: str) -> StorageGroupRef:
    """The one storage group ``ref`` names; NotFoundError if none, ParameterError if several."""
    return _one(storage_group_candidates(inv, ref), ref, "storage group", "SERVER/SG")


def _one(found: list[_Ref], ref: str, what: str, form: str) -> _Ref:
    if not found:
        raise NotFoundError(
            f"no {what} {ref!r} in the inventory",
            hint=f"write {form}; `dr inventory show` lists them",
        )
    if len(found) > 1:
        raise ParameterError(
            f"{what} {ref!r} is ambiguous: " + ", ".join(f.key for f in found),
            hint=f"write it in full as {form}",
        )
    return found[0]


def covered_storage_groups(server: Server, covers: list[str]) -> list[StorageGroup]:
    """The storage groups of ``server`` an exchange set's ``covers`` selects, in server order.

    Entries are ``all``, ``SG``, ``SG/DB`` or the same prefixed with the server's name; an
    entry naming a database selects its storage group (its log stream is backed up with it).
    Entries that match nothing are ignored here; :mod:`dr.model.validate` reports them.
    """
    chosen: list[StorageGroup] = []
    for sg in server.storage_groups:
        if any(cover_matches_storage_group(server, sg, c) for c in covers):
            chosen.append(sg)
    return chosen


def cover_matches_storage_group(server: Server, sg: StorageGroup, cover: str) -> bool:
    """Whether one ``covers`` entry of an exchange set on ``server`` selects ``sg``."""
    if _same(cover.strip(), "all"):
        return True
    parts = [p.strip() for p in cover.strip().strip("/").split("/")]
    if len(parts) >= 2 and _same(parts[0], server.name) and not _names_sg(sg, parts):
        parts = parts[1:]
    return _names_sg(sg, parts)


def _names_sg(sg: StorageGroup, parts: list[str]) -> bool:
    if len(parts) == 1:
        return _same(sg.name, parts[0]) or any(_same(db.name, parts[0]) for db in sg.databases)
    if len(parts) == 2:
        return _same(sg.name, parts[0]) and any(_same(db.name, parts[1]) for db in sg.databases)
    return False
