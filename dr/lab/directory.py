"""The lab's directory: the objects a domain controller holds, built from the inventory.

A restore of a domain controller or a server rebuild is proved against these objects as a
database restore is proved against the mail truth: users with their mailboxes (alias, display
name, MailboxGuid, legacyExchangeDN), computer accounts (present, reset or deleted), the
Exchange server objects and the administrative groups. Objects are keyed by distinguished
name, lower-cased as LDAP compares them.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from dr.model.inventory import Inventory

__all__ = ["ACCOUNT_STATES", "Directory", "JoinRefused", "build_directory", "domain_dn"]

ACCOUNT_STATES = ("present", "reset", "deleted")


def domain_dn(domain: str) -> str:
    """``corp.contoso.com`` → ``DC=corp,DC=contoso,DC=com``."""
    return ",".join(f"DC={part}" for part in domain.split("."))


def _rdn(value: str) -> str:
    """Escape the characters RFC 4514 reserves in a relative distinguished name."""
    return "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)


def _guid(kind: str, name: str) -> str:
    """A stable GUID per object, so two labs built from one inventory agree."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dr-lab:{kind}:{name.lower()}"))


def build_directory(inventory: Inventory, domain: str) -> dict[str, dict[str, Any]]:
    """Every object of ``domain``'s forest that restores depend on, keyed by lower-cased DN."""
    base = domain_dn(domain)
    org = inventory.organization.name
    config = f"CN=Configuration,{base}"
    found: dict[str, dict[str, Any]] = {}

    def put(dn: str, **attrs: Any) -> None:
        found[dn.lower()] = {"distinguishedName": dn, **attrs}

    for group in inventory.organization.administrative_groups:
        put(
            f"CN={_rdn(group.name)},CN=Administrative Groups,CN={_rdn(org)},"
            f"CN=Microsoft Exchange,CN=Services,{config}",
            objectClass="msExchAdminGroup", name=group.name,
            legacyExchangeDN=group.legacy_exchange_dn,
        )  # fmt: skip
    for server in inventory.servers:
        if server.domain.lower() != domain.lower():
            continue
        put(
            f"CN={_rdn(server.name)},CN=Computers,{base}", objectClass="computer",
            name=server.name, objectGUID=_guid("computer", server.name), accountState="present",
        )  # fmt: skip
        if server.exchange_version and server.administrative_group:
            put(
                f"CN={_rdn(server.name)},CN=Servers,CN={_rdn(server.administrative_group)},"
                f"CN=Administrative Groups,CN={_rdn(org)},CN=Microsoft Exchange,"
                f"CN=Services,{config}",
                objectClass="msExchExchangeServer", name=server.name,
                installPath=server.install_path or "", domain=server.domain,
                computerGUID=_guid("computer", server.name),
            )  # fmt: skip
    for box in inventory.mailboxes:
        put(
            f"CN={_rdn(box.display_name or box.alias)},CN=Users,{base}", objectClass="user",
            mailNickname=box.alias, displayName=box.display_name or box.alias,
            msExchMailboxGuid=_guid("mailbox", box.alias),
            legacyExchangeDN=box.legacy_exchange_dn or "",
        )  # fmt: skip
    return found


class JoinRefused(Exception):
    """The domain refuses a computer's join; ``code`` is the Win32 error NetJoinDomain returns."""

    def __init__(self, text: str, code: int) -> None:
        super().__init__(text)
        self.code = code


class Directory:
    """The production forest's directory on disk (``lab/directory.json``), shared by the
    domain controllers that answer for it, the Exchange hosts that join it and run setup
    against it, and the lab's operator commands and faults. Every change is read, made and
    written at once, so separate processes (``dr lab serve``, ``dr lab operator``) agree."""

    def __init__(self, path: Path, inventory: Inventory) -> None:
        self.path, self.inventory = path, inventory

    def objects(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            found: dict[str, dict[str, Any]] = {}
            for forest in self.inventory.forests:
                for domain in forest.domains:
                    found.update(build_directory(self.inventory, domain.name))
            self._save(found)
            return found
        data: dict[str, dict[str, Any]] = json.loads(self.path.read_text(encoding="utf-8"))
        return data

    def _save(self, objects: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(objects, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)

    def domains(self) -> list[str]:
        return [d.name for f in self.inventory.forests for d in f.domains]

    # -- lookups --------------------------------------------------------------------------

    def computer(self, name: str) -> dict[str, Any] | None:
        """The computer account named ``name`` (None once deleted)."""
        for obj in self.objects().values():
            if obj["objectClass"] == "computer" and obj["name"].lower() == name.lower():
                return obj
        return None

    def server_object(self, name: str) -> dict[str, Any] | None:
        """The Exchange server object of ``name`` in the configuration partition."""
        for obj in self.objects().values():
            if obj["objectClass"] == "msExchExchangeServer" and obj["name"].lower() == name.lower():
                return obj
        return None

    # -- changes --------------------------------------------------------------------------

    def _change(self, name: str, change: Any) -> dict[str, Any]:
        objects = self.objects()
        for key, obj in objects.items():
            if obj["objectClass"] == "computer" and obj["name"].lower() == name.lower():
                result = change(objects, key, obj)
                self._save(objects)
                return result  # type: ignore[no-any-return]
        raise KeyError(name)

    def reset_account(self, name: str) -> dict[str, Any]:
        """Active Directory Users and Computers → Reset Account: the object stays (its GUID,
        its links), its password is reset so a machine of that name can join with it."""

        def reset(objects: dict[str, Any], key: str, obj: dict[str, Any]) -> dict[str, Any]:
            obj["accountState"] = "reset"
            return obj

        return self._change(name, reset)

    def delete_account(self, name: str) -> dict[str, Any]:
        """The computer account is deleted (what the runbook says not to do)."""

        def delete(objects: dict[str, Any], key: str, obj: dict[str, Any]) -> dict[str, Any]:
            self._bump(key, deleted=True)
            return objects.pop(key)  # type: ignore[no-any-return]

        return self._change(name, delete)

    # -- replication metadata (dr.lab.replication) ----------------------------------------

    @property
    def meta_path(self) -> Path:
        return self.path.with_name("replication.json")

    def meta(self) -> dict[str, Any]:
        """``versions``: DN → the object's version (1 when never changed); ``deleted``: the
        DNs deleted, whose deletion replicates as a change of its own; ``sysvol``: SYSVOL's
        version (raised by each policy change)."""
        if not self.meta_path.exists():
            return {"versions": {}, "deleted": [], "sysvol": 1}
        data: dict[str, Any] = json.loads(self.meta_path.read_text(encoding="utf-8"))
        return data

    def _save_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.meta_path)

    def _bump(self, key: str, *, deleted: bool = False) -> None:
        meta = self.meta()
        meta["versions"][key] = int(meta["versions"].get(key, 1)) + 1
        gone = set(meta["deleted"])
        (gone.add if deleted else gone.discard)(key)
        meta["deleted"] = sorted(gone)
        self._save_meta(meta)

    def find(self, dn: str) -> dict[str, Any] | None:
        return self.objects().get(dn.lower())

    def user(self, alias: str) -> dict[str, Any] | None:
        """The user whose mailNickname is ``alias``."""
        for obj in self.objects().values():
            if (
                obj["objectClass"] == "user"
                and obj.get("mailNickname", "").lower() == alias.lower()
            ):
                return obj
        return None

    def delete_object(self, dn: str) -> dict[str, Any]:
        """An object deleted on a domain controller; the deletion replicates to the others."""
        objects = self.objects()
        obj = objects.pop(dn.lower(), None)
        if obj is None:
            raise KeyError(dn)
        self._save(objects)
        self._bump(dn.lower(), deleted=True)
        return obj

    def modify(self, dn: str, attribute: str, value: Any) -> dict[str, Any]:
        """One attribute of an object changed (its version raised, as an originating write)."""
        objects = self.objects()
        obj = objects.get(dn.lower())
        if obj is None:
            raise KeyError(dn)
        obj[attribute] = value
        self._save(objects)
        self._bump(dn.lower())
        return obj

    def edit_policy(self) -> int:
        """A group policy edited: SYSVOL's content changes; its new version."""
        meta = self.meta()
        meta["sysvol"] = int(meta.get("sysvol", 1)) + 1
        self._save_meta(meta)
        return int(meta["sysvol"])

    def snapshot(self) -> dict[str, Any]:
        """What a domain controller holds: every object, their versions, SYSVOL's version."""
        return {"objects": self.objects(), "meta": self.meta()}

    def replace(self, copy: dict[str, Any]) -> None:
        """The directory every running domain controller holds becomes ``copy``."""
        self._save(copy["objects"])
        self._save_meta(copy["meta"])

    def join(self, name: str, domain: str) -> dict[str, Any]:
        """A computer named ``name`` joins ``domain``; the account it ends up with.

        A reset account is taken over (same objectGUID); none at all is created anew (a new
        objectGUID — the old server object no longer belongs to it); an account that still
        holds its old machine password and was not reset is refused, as domain-join hardening
        refuses to re-use it (KB5020276, error 2732)."""
        if domain.lower() not in (d.lower() for d in self.domains()):
            raise JoinRefused(
                f"The specified domain either does not exist or could not be contacted: {domain}",
                1355,
            )
        objects = self.objects()
        for obj in objects.values():
            if obj["objectClass"] == "computer" and obj["name"].lower() == name.lower():
                if obj["accountState"] == "present":
                    raise JoinRefused(
                        "An account with the same name exists in Active Directory. "
                        "Re-using the account was blocked by security policy.",
                        2732,
                    )
                obj["accountState"] = "present"
                self._save(objects)
                return obj
        generation = sum(1 for o in objects.values() if o.get("recreated_from") == name.lower())
        dn = f"CN={_rdn(name)},CN=Computers,{domain_dn(domain)}"
        obj = {
            "distinguishedName": dn, "objectClass": "computer", "name": name,
            "objectGUID": _guid("computer", f"{name}#{generation + 1}"),
            "accountState": "present", "recreated_from": name.lower(),
        }  # fmt: skip
        objects[dn.lower()] = obj
        self._save(objects)
        return obj
