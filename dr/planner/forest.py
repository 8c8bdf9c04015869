"""Recovery after Active Directory failure (B7): a domain controller's system state first.

Exchange is unusable without the directory, so the domain controller comes back first:
boot into Directory Services Restore Mode (with the DSRM password, by reference), restore
its system state non-authoritatively, or authoritatively with the objects to mark before
the first normal boot (research §2.7), restart, check the directory. Then what depends on
it: each Exchange server of the domain is checked against the names Exchange needs
(storage groups, stores, the administrative group's legacyExchangeDN) and its stores are
mounted again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dr.errors import ArtifactExpired, NotFoundError, NotRecoverable
from dr.model.inventory import Domain, Inventory, Server
from dr.planner.builder import PlanBuilder, platform_of
from dr.planner.common import Series, stamp
from dr.planner.facts import FactsProvider, HostArtifact
from engine.plan import Plan, Target

DC_SERVICES = ["NTDS", "DNS", "Netlogon"]
EXCHANGE_SERVICES = ["MSExchangeSA", "MSExchangeIS"]  # 2000-2007
EXCHANGE_SERVICES_2010 = ["MSExchangeADTopology", "MSExchangeIS"]  # 2010 and later


def find_domain(inv: Inventory, name: str) -> Domain:
    for forest in inv.forests:
        for domain in forest.domains:
            if name.casefold() in (domain.name.casefold(), (domain.netbios or "").casefold()):
                return domain
    raise NotFoundError(
        f"no domain {name!r} in the inventory", hint="name it as listed under forests: domains:"
    )


def latest_artifact(
    provider: FactsProvider, host: str, kind: str, at: datetime | None, *, required: bool
) -> HostArtifact | None:
    """The newest usable artifact of a kind for a host at or before ``at``."""
    everything = [a for a in provider.host_artifacts(host, kind) if at is None or a.at <= at]
    usable = [a for a in everything if not a.expired]
    if usable:
        return max(usable, key=lambda a: (a.at, a.id))
    if not required:
        return None
    if everything:
        raise ArtifactExpired(
            f"{host}: every {kind} backup at or before {stamp(at)} was expired by retention",
            hint="restore one from an offsite copy, or pick another target",
            details={"host": host, "kind": kind, "expired": sorted(a.id for a in everything)},
        )
    raise NotRecoverable(
        f"{host}: no {kind} backup at or before {stamp(at)}",
        hint=f"take a {kind} backup of {host}; without it this restore cannot be done",
        details={"host": host, "kind": kind, "target": at.isoformat() if at else None},
    )


def dc_steps(
    b: PlanBuilder,
    provider: FactsProvider,
    dc: Server,
    after: Sequence[str],
    at: datetime | None,
    objects: Sequence[str] = (),
    *,
    sysvol_primary: bool = False,
) -> tuple[list[str], HostArtifact]:
    """DSRM, system state, the ``objects`` marked authoritative, a normal start, verify.

    In DSRM domain accounts cannot sign in, so dr restarts the DC into it over WinRM and
    the steps there are a person's at the console with the DSRM password; the restore
    names the backup by wbadmin's own version identifier and volume (2008 and later).

    ``sysvol_primary``: this DC's SYSVOL becomes the primary copy (``wbadmin -authsysvol`` /
    NTBackup's "mark the restored data as the primary data"). Right for the first (or only)
    DC restored when no replication partner survives; wrong for a targeted object restore,
    whose partners hold the SYSVOL it must take (research §2.7)."""
    state = latest_artifact(provider, dc.name, "system-state", at, required=True)
    assert state is not None
    b.use(state)
    version, target = _native_version(dc, state)
    dsrm = b.secret("dsrm-password", dc.name, f"restoring the system state of {dc.name}")
    on = {"host": dc.name, "platform": platform_of(dc), "resources": [f"host:{dc.name}"]}
    s = Series(b, list(after))
    s.add(
        "boot-dsrm",
        [dc.name],
        **on,
        params={"server": dc.name},
        title=f"Restart {dc.name} into Directory Services Restore Mode",
    )
    mode = "SYSVOL primary" if sysvol_primary else "SYSVOL from its partners"
    s.add(
        "restore-system-state",
        [dc.name],
        **on,
        secrets=[dsrm],
        size_bytes=state.size_bytes,
        params={
            "server": dc.name,
            "version": version,
            "target": target,
            "authoritative": sysvol_primary,
            "dsrm": True,
        },
        title=f"Restore the system state of {dc.name} ({mode}), at its console in DSRM",
    )
    if objects:
        s.add(
            "authoritative-restore",
            [dc.name],
            **on,
            params={"server": dc.name, "objects": list(objects)},
            title=f"Mark {len(objects)} object(s) authoritative before the first normal boot",
        )
    s.add(
        "leave-dsrm",
        [dc.name],
        **on,
        params={"server": dc.name, "alone": sysvol_primary},
        title=f"Restart {dc.name} normally"
        + ("" if sysvol_primary else ": it replicates with its partners"),
    )
    s.add(
        "verify-directory",
        [dc.name],
        **on,
        params={"server": dc.name, "domain": dc.domain},
        title=f"The directory of {dc.domain} answers and replicates",
    )
    return s.last, state


def _native_version(dc: Server, state: HostArtifact) -> tuple[str, str]:
    """wbadmin's own version identifier of the backup and the volume holding it (Windows
    2008 and later): ``-version:`` takes nothing else, and dr's artifact ids are not it."""
    if dc.windows_version in ("2000", "2003", "2003R2"):
        return state.native_id or state.id, ""
    if not state.native_id or not state.native_target:
        raise NotRecoverable(
            f"{dc.name}: system state backup {state.id} has no wbadmin version identifier "
            "or backup volume in the catalog; wbadmin restores only by its own identifier",
            hint=f"import `wbadmin get versions -backupTarget:<volume> -machine:{dc.name}` "
            "with `dr catalog import`, or take the backup with `dr backup`",
            details={"host": dc.name, "artifact": state.id},
        )
    return state.native_id, state.native_target


def first_dc(inv: Inventory, provider: FactsProvider, domain: Domain) -> Server:
    """The domain controller restored first: the first listed with a system-state backup."""
    dcs = [inv.server(name) for name in domain.domain_controllers]
    if not dcs:
        raise NotRecoverable(
            f"domain {domain.name} lists no domain controllers",
            hint="add domain_controllers to the domain in the inventory",
        )
    with_state = [
        dc
        for dc in dcs
        if any(not a.expired for a in provider.host_artifacts(dc.name, "system-state"))
    ]
    return (with_state or dcs)[0]


def _alone(
    b: PlanBuilder, inv: Inventory, dc: Server, domain: Domain, after: list[str]
) -> tuple[list[str], list[str]]:
    """The restored DC is the domain now: roles seized, the lost DCs' metadata removed, the
    RID pool raised, its computer password and krbtgt reset; the second krbtgt reset later."""
    from dr.planner.forest_recovery import initial_recovery, other_dcs, second_krbtgt

    forest = next(f for f in inv.forests if any(d is domain for d in f.domains))
    others = other_dcs(domain, dc)
    ready = initial_recovery(b, dc, domain, root=domain is forest.domains[0], others=others,
                             after=after)  # fmt: skip
    second_krbtgt(b, dc, domain, ready)
    if others:
        b.warn(
            f"{', '.join(others)}: removed from the directory (metadata cleanup); install "
            f"them again as domain controllers of {domain.name} once it runs (`dr plan site` "
            "plans that too)"
        )
    return ready, others


def exchange_checks(b: PlanBuilder, server: Server, after: Sequence[str]) -> list[str]:
    """After the directory is back: Exchange's names checked, services restarted, stores up."""
    on = {"host": server.name, "platform": platform_of(server)}
    ag = next(
        (
            a
            for a in b.inv.organization.administrative_groups
            if a.name == server.administrative_group
        ),
        None,
    )
    names = "; ".join(
        f"{sg.name}: {', '.join(d.name for d in sg.databases)}" for sg in server.storage_groups
    )
    s = Series(b, list(after))
    s.add(
        "manual",
        [server.name, "names"],
        host="operator",
        params={
            "instructions": f"Check in the directory that {server.name} has storage groups "
            f"and stores {names} and that administrative group "
            f"{server.administrative_group} has legacyExchangeDN "
            f"{ag.legacy_exchange_dn if ag else '(not recorded)'}",
            "record": "what the directory shows",
        },
        title=f"Exchange's names for {server.name} are in the directory",
    )
    s.add(
        "reboot-host",
        [server.name],
        **on,
        resources=[f"host:{server.name}"],
        params={
            "server": server.name,
            "services": EXCHANGE_SERVICES_2010
            if (server.exchange_version or 0) >= 2010
            else EXCHANGE_SERVICES,
        },
        title=f"Restart {server.name} and its Exchange services",
    )
    ends: list[str] = []
    for sg in server.storage_groups:
        for db in sg.databases:
            p = {"server": server.name, "sg": sg.name, "db": db.name}
            ends.append(
                b.add(
                    "verify-mount",
                    [server.name, sg.name, db.name],
                    **on,
                    params=p,
                    needs=s.last,
                    resources=[f"sg:{server.name}/{sg.name}"],
                    title=f"{db.name} is mounted and answers",
                )
            )
    return ends or s.last


def plan_forest(
    provider: FactsProvider,
    domain_name: str,
    objects: Sequence[str] = (),
    at: datetime | None = None,
    partners_survive: bool = False,
) -> Plan:
    """B7: the domain controller's system state first, then what depends on it.

    Named ``objects`` mean a targeted restore into a directory whose other domain
    controllers survive; otherwise (``partners_survive`` False) this DC is the first of a
    lost directory and its SYSVOL becomes the primary copy."""
    inv = provider.inventory()
    domain = find_domain(inv, domain_name)
    b = PlanBuilder(
        provider, "forest", Target(what=f"domain {domain.name}", at=at, point_of_failure=at is None)
    )
    dc = first_dc(inv, provider, domain)
    primary = not objects and not partners_survive
    done, state = dc_steps(b, provider, dc, [], at, objects, sysvol_primary=primary)
    others: list[str] = []
    if primary:  # no partner left: the domain's forest recovery (dr.planner.forest_recovery)
        done, others = _alone(b, inv, dc, domain, done)
    exchange = [
        s
        for s in inv.servers
        if s.domain.casefold() == domain.name.casefold()
        and s.exchange_version is not None
        and s.storage_groups  # a KMS or front-end server has no stores to mount
    ]
    for server in exchange:
        exchange_checks(b, server, done)
    if not objects:
        b.warn(
            "non-authoritative: objects deleted since the backup come back only if no "
            "other domain controller replicates their deletion (use --object DN to mark)"
        )
    b.facts.update(
        {
            "domain": domain.name,
            "domain_controller": dc.name,
            "removed_domain_controllers": others,
            "system_state": state.id,
            "authoritative_objects": list(objects),
            "sysvol_primary": primary,
            "exchange_servers": [s.name for s in exchange],
        }
    )
    loss = (at - state.at).total_seconds() if at else None
    return b.finish(recoverable_point=state.at, data_loss_seconds=loss)
