"""Turning the storage group / database names a manifest uses into canonical keys.

A manifest may write ``First Storage Group``, ``EX2003/First Storage Group`` or, for a
database, ``Sales Store`` or ``Second Storage Group/Sales Store``. The catalog stores the
canonical ``SERVER/SG`` and ``SERVER/SG/DB`` keys so that every spelling joins one history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dr.errors import DrError, ManifestError

if TYPE_CHECKING:
    from dr.model.inventory import Inventory


def _refs() -> object:
    from dr.model import refs

    return refs


def make_resolver(inventory: Inventory | None):  # type: ignore[no-untyped-def]
    """A function (host, sg, db) -> (sg key, db key); ManifestError names the bad field."""

    def resolve(host: str, sg: str | None, db: str | None) -> tuple[str | None, str | None]:
        if inventory is None:
            return _plain(host, sg), _plain(host, db)
        db_key, db_sg = _database(inventory, host, db) if db else (None, None)
        sg_key = _storage_group(inventory, host, sg) if sg else db_sg
        if db_sg and sg_key and db_sg.casefold() != sg_key.casefold():
            raise ManifestError(
                f"database {db!r} is in storage group {db_sg!r}, not {sg_key!r}",
                details={"field": "database"},
            )
        return sg_key, db_key

    return resolve


def _plain(host: str, ref: str | None) -> str | None:
    if ref is None:
        return None
    return ref if ref.upper().startswith(host.upper() + "/") else f"{host}/{ref}"


def _storage_group(inventory: Inventory, host: str, ref: str) -> str:
    refs = _refs()
    found = _first(lambda r: refs.resolve_storage_group(inventory, r), host, ref)  # type: ignore[attr-defined]
    if found is None or found.server.name.casefold() != host.casefold():
        raise ManifestError(
            f"no storage group {ref!r} on {host} in the inventory",
            details={"field": "storage_group"},
        )
    return str(found.key)


def _database(inventory: Inventory, host: str, ref: str) -> tuple[str, str]:
    refs = _refs()
    found = _first(lambda r: refs.resolve_database(inventory, r), host, ref)  # type: ignore[attr-defined]
    if found is None or found.server.name.casefold() != host.casefold():
        raise ManifestError(
            f"no database {ref!r} on {host} in the inventory", details={"field": "database"}
        )
    return str(found.key), str(found.storage_group_key)


def _first(lookup, host: str, ref: str):  # type: ignore[no-untyped-def]
    """Try the reference qualified with the run's host first, then as written."""
    for candidate in (f"{host}/{ref}", ref):
        try:
            return lookup(candidate)
        except DrError:
            continue
    return None
