"""What a forest recovery changes in the lab's domain, and the tools that change it.

Kept beside the directory in ``lab/forest.json`` (one domain: the lab's), outside the
replicated copies, because the forest recovery's checks are about where things end up:

* ``fsmo`` — the holder of each operations master role (``schema``, ``naming``, ``pdc``,
  ``rid``, ``infrastructure``), at first the domain's first listed domain controller;
* ``rid_available_pool`` — ``rIDAvailablePool`` of ``CN=RID Manager$,CN=System,<domain>``
  (the large integer of Microsoft's example: next pool at 2100);
* ``krbtgt_resets`` / ``machine_resets`` — when krbtgt's password and each domain
  controller's own computer password were reset;
* ``removed`` — the domain controllers whose metadata was cleaned up (gone from the
  directory until promoted again).

The tools answer as Windows does where the recovery depends on it: ``ntdsutil roles``
connects only to a domain controller that runs its directory, and a seizure waits on its
confirmation dialog unless ``popups off`` came first; ``netdom query fsmo`` lists the
holders by FQDN; the Active Directory module reads and writes ``rIDAvailablePool`` and resets
krbtgt only on a domain controller that runs normally. Microsoft: "AD Forest Recovery -
Seizing an operations master role", "- Raising the value of available RID pools",
"- Resetting the krbtgt password" (docs/runbooks.md cites them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ROLES", "ForestState", "netdom", "seize_command"]

ROLES = ("schema", "naming", "pdc", "rid", "infrastructure")
SAMPLE_RID_POOL = 4611686014132422708  # Microsoft's example: upper 1073741823, next pool 2100
NETDOM_NAMES = {
    "schema": "Schema master",
    "naming": "Domain naming master",
    "pdc": "PDC",
    "rid": "RID pool manager",
    "infrastructure": "Infrastructure master",
}


class ForestState:
    def __init__(self, path: Path, first_dc: str) -> None:
        self.path, self.first_dc = path, first_dc

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {
                "fsmo": dict.fromkeys(ROLES, self.first_dc),
                "rid_available_pool": SAMPLE_RID_POOL,
                "krbtgt_resets": [],
                "machine_resets": {},
                "removed": [],
            }
        return json.loads(self.path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)


def forest_of(host: Any) -> ForestState:
    domain = next(
        d
        for f in host.directory_store.inventory.forests
        for d in f.domains
        if d.name.casefold() == host.domain.casefold()
    )
    return ForestState(host.directory_store.path.with_name("forest.json"),
                       domain.domain_controllers[0])  # fmt: skip


def _running(host: Any) -> bool:
    return bool(host.state.mode == "normal" and host.state.ntds == "ok")


# -- ntdsutil roles ----------------------------------------------------------------------------

_SEIZE_MODERN = {  # ntdsutil's "fsmo maintenance" menu, 2008 and later
    "seize schema master": "schema",
    "seize naming master": "naming",
    "seize pdc": "pdc",
    "seize rid master": "rid",
    "seize infrastructure master": "infrastructure",
}
_SEIZE = {  # Windows 2000/2003 say "domain naming master"
    "modern": _SEIZE_MODERN,
    "legacy": {
        ("seize domain naming master" if k == "seize naming master" else k): v
        for k, v in _SEIZE_MODERN.items()
    },
}


def seize_command(session: Any, low: str) -> bool:
    """One command of ntdsutil's ``roles`` menus (``session`` is the ntdsutil session)."""
    host = session.host
    if session.menu == "server connections":
        if low.startswith("connect to server "):
            name = low.removeprefix("connect to server ").strip()
            wanted = {host.name.lower(), f"{host.name}.{host.domain}".lower()}
            if name not in wanted or not _running(host):
                session.say(
                    f"Binding to {name} ...\nldap_bind_sW error 0x51(81 (Server Down).\n"
                    "The server is not running its directory (or is not this domain "
                    "controller).\n"
                )
                return False
            session.connected = name
            session.say(f"Binding to {name} ...\nConnected to {name} using credentials of "
                        "locally logged on user.\n")  # fmt: skip
            return True
        session.say("Error parsing Input - Invalid Syntax.\n")
        return False
    if low == "connections":
        session.menu = "server connections"
        return True
    family = "legacy" if str(host.windows) in ("2000", "2003", "2003R2") else "modern"
    role = _SEIZE[family].get(low)
    if role is None:
        session.say("Error parsing Input - Invalid Syntax.\n")
        return False
    if not session.connected:
        session.say("Not connected to a server. Use the connections menu first.\n")
        return False
    if session.popups:
        session.say(
            'A dialog box asks "Are you sure you want the computer to seize the role?" and '
            'waits: nothing answers it when ntdsutil is run from a script. Put "popups '
            'off" first.\n'
        )
        return False
    forest = forest_of(host)
    data = forest.load()
    before = data["fsmo"][role]
    if before.lower() != host.name.lower():
        session.say(
            f"Attempting safe transfer of {role} FSMO before seizure.\n"
            "ldap_modify_sW error 0x34(52 (Unavailable).\n"
            "Transfer of FSMO failed, proceeding with seizure ...\n"
        )
    data["fsmo"][role] = host.name
    forest.save(data)
    for name, holder in sorted(data["fsmo"].items()):
        session.say(f"{name} - CN=NTDS Settings,CN={holder},CN=Servers\n")
    return True


# -- netdom query fsmo -------------------------------------------------------------------------


def netdom(argv: list[str], host: Any, stdin: bytes = b"") -> Any:
    from dr.lab.dctools import _result

    if [a.lower() for a in argv[:2]] != ["query", "fsmo"]:
        return _result("dr lab: only `netdom query fsmo` is modelled\n", 1)
    if not _running(host):
        down = "The specified domain either does not exist or could not be contacted.\n\n"
        return _result(down + "The command failed to complete successfully.\n", 1)
    data = forest_of(host).load()
    lines = [f"{NETDOM_NAMES[r]:<28}{data['fsmo'][r]}.{host.domain}" for r in ROLES]
    return _result("\n".join(lines) + "\nThe command completed successfully.\n\n")


# -- the Active Directory module ---------------------------------------------------------------


def import_module(call: Any) -> Iterator[Any]:
    from dr.lab.ps.values import enumerate_value, to_str

    for name in (to_str(n) for n in enumerate_value(call.params.get("Name"))):
        if name.lower() != "activedirectory":
            call.error(
                f"The specified module '{name}' was not loaded because no valid module file "
                "was found in any module directory.",
                category="ResourceUnavailable",
                target=name,
            )
    return
    yield


def _rid_manager(host: Any) -> str:
    return "cn=rid manager$,cn=system," + ",".join(
        f"dc={label}" for label in host.domain.lower().split(".")
    )


def _no_directory(call: Any) -> bool:
    if _running(call.host):
        return False
    call.error(
        "Unable to contact the server. This may be because this server does not exist, it is "
        "currently down, or it does not have the Active Directory Web Services running.",
        category="ResourceUnavailable",
    )
    return True


def get_ad_object(call: Any) -> Iterator[Any]:
    from dr.lab.ps.values import PSObject, to_str

    if _no_directory(call):
        return
    identity = to_str(call.params.get("Identity"))
    if identity.lower() != _rid_manager(call.host):
        call.error(
            f"Cannot find an object with identity: '{identity}' under: '{call.host.domain}'.",
            category="ObjectNotFound",
            target=identity,
        )
        return
    pool = forest_of(call.host).load()["rid_available_pool"]
    yield PSObject.of("Microsoft.ActiveDirectory.Management.ADObject",
                      DistinguishedName=identity, rIDAvailablePool=pool)  # fmt: skip


def set_ad_object(call: Any) -> Iterator[Any]:
    from dr.lab.ps.values import to_str

    if _no_directory(call):
        return
    identity = to_str(call.params.get("Identity"))
    replace = call.params.get("Replace") or {}
    if identity.lower() != _rid_manager(call.host) or list(k.lower() for k in replace) != [
        "ridavailablepool"
    ]:
        call.error(
            f"dr lab: only rIDAvailablePool of {_rid_manager(call.host)} is modelled "
            f"(got {identity} {list(replace)})",
            category="NotImplemented",
        )
        return
    forest = forest_of(call.host)
    data = forest.load()
    data["rid_available_pool"] = int(next(iter(replace.values())))
    forest.save(data)
    return
    yield


def set_ad_account_password(call: Any) -> Iterator[Any]:
    from dr.lab.ps.values import to_str

    if _no_directory(call):
        return
    identity = to_str(call.params.get("Identity"))
    if identity.lower() != "krbtgt" or not call.params.get("Reset"):
        call.error(f"dr lab: only `-Identity krbtgt -Reset` is modelled (got {identity})",
                   category="NotImplemented")  # fmt: skip
        return
    forest = forest_of(call.host)
    data = forest.load()
    data["krbtgt_resets"].append(call.host.clock().isoformat())
    forest.save(data)
    return
    yield


def reset_computer_machine_password(call: Any) -> Iterator[Any]:
    if _no_directory(call):
        return
    forest = forest_of(call.host)
    data = forest.load()
    data["machine_resets"].setdefault(call.host.name, []).append(call.host.clock().isoformat())
    forest.save(data)
    return
    yield
