"""Turning the storage group / database names a manifest uses into canonical keys.

A manifest may write ``First Storage Group``, ``EX2003/First Storage Group`` or, for a
database, ``Sales Store`` or ``Second Storage Group/Sales Store``. The catalog stores the
canonical ``SERVER/SG`` and ``SERVER/SG/DB`` keys so that every spelling joins one history.

A manifest of a year of log backups names the same few streams a million times, so each
distinct spelling is resolved once and remembered. The inventory also says whether a
storage group runs with circular logging: that is the default for a record that does not
say (without an inventory, off).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dr.errors import DrError, ManifestError

if TYPE_CHECKING:
    from dr.model.inventory import Inventory

_Keys = tuple[str | None, str | None]
_CACHE_LIMIT = 10_000


class Resolver:
    """``resolver(host, sg, db) -> (sg key, db key)``; ManifestError names the bad field."""

    def __init__(self, inventory: Inventory | None) -> None:
        self.inventory = inventory
        self._cache: dict[tuple[str, str | None, str | None], _Keys | ManifestError] = {}
        self._circular = _circular_by_key(inventory)

    def __call__(self, host: str, sg: str | None, db: str | None) -> _Keys:
        key = (host, sg, db)
        found = self._cache.get(key)
        if found is None:
            try:
                found = self._resolve(host, sg, db)
            except ManifestError as exc:
                found = exc
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        if isinstance(found, ManifestError):
            raise ManifestError(found.message, details=found.details)
        return found

    def circular_logging(self, sg_key: str) -> bool:
        """The inventory's circular-logging setting of a storage group (off if unknown)."""
        return self._circular.get(sg_key.casefold(), False)

    def _resolve(self, host: str, sg: str | None, db: str | None) -> _Keys:
        inventory = self.inventory
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


def make_resolver(inventory: Inventory | None) -> Resolver:
    return Resolver(inventory)


def _circular_by_key(inventory: Inventory | None) -> dict[str, bool]:
    if inventory is None:
        return {}
    return {
        f"{server.name}/{sg.name}".casefold(): sg.circular_logging
        for server in inventory.servers
        for sg in server.storage_groups
    }


def _refs() -> Any:
    from dr.model import refs

    return refs


def _plain(host: str, ref: str | None) -> str | None:
    if ref is None:
        return None
    return ref if ref.upper().startswith(host.upper() + "/") else f"{host}/{ref}"


def _storage_group(inventory: Inventory, host: str, ref: str) -> str:
    refs = _refs()
    found = _first(lambda r: refs.resolve_storage_group(inventory, r), host, ref)
    if found is None or found.server.name.casefold() != host.casefold():
        raise ManifestError(
            f"no storage group {ref!r} on {host} in the inventory",
            details={"field": "storage_group"},
        )
    return str(found.key)


def _database(inventory: Inventory, host: str, ref: str) -> tuple[str, str]:
    refs = _refs()
    found = _first(lambda r: refs.resolve_database(inventory, r), host, ref)
    if found is None or found.server.name.casefold() != host.casefold():
        raise ManifestError(
            f"no database {ref!r} on {host} in the inventory", details={"field": "database"}
        )
    return str(found.key), str(found.storage_group_key)


def _first(lookup: Callable[[str], Any], host: str, ref: str) -> Any:
    """Try the reference qualified with the run's host first, then as written."""
    for candidate in (f"{host}/{ref}", ref):
        try:
            return lookup(candidate)
        except DrError:
            continue
    return None
