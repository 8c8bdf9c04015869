"""The lab's directory: the objects a domain controller holds, built from the inventory.

A restore of a domain controller or a server rebuild is proved against these objects as a
database restore is proved against the mail truth: users with their mailboxes (alias, display
name, MailboxGuid, legacyExchangeDN), computer accounts (present, reset or deleted), the
Exchange server objects and the administrative groups. Objects are keyed by distinguished
name, lower-cased as LDAP compares them.
"""

from __future__ import annotations

import uuid
from typing import Any

from dr.model.inventory import Inventory

__all__ = ["ACCOUNT_STATES", "build_directory", "domain_dn"]

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
                installPath=server.install_path or "",
            )  # fmt: skip
    for box in inventory.mailboxes:
        put(
            f"CN={_rdn(box.display_name or box.alias)},CN=Users,{base}", objectClass="user",
            mailNickname=box.alias, displayName=box.display_name or box.alias,
            msExchMailboxGuid=_guid("mailbox", box.alias),
            legacyExchangeDN=box.legacy_exchange_dn or "",
        )  # fmt: skip
    return found
