"""Losing every domain controller of a domain: Microsoft's forest recovery, as steps.

In a site loss no domain controller is left to replicate from, so one per domain is
restored from backup and becomes the domain for a while; the others are not restored but
promoted again once it runs ("AD Forest Recovery - Perform the initial recovery" and
"Redeploy remaining DCs", cited in docs/runbooks.md). For the first one:

1. its machine: a full-server (bare-metal) backup restored from Windows RE — a system-state
   backup restores only onto the installation it came from, and in a site loss that is
   gone (Windows 2000/2003: Windows installed again, same name and paths, then the system
   state, KB 263532);
2. its system state in DSRM with SYSVOL authoritative (``dc_steps``), told not to wait for
   replication partners before it offers the directory;
3. every operations master role of the domain seized (the forest-wide ones in the forest's
   root domain), the other domain controllers' metadata removed, the RID pool raised by
   100 000, its own computer password reset twice, krbtgt reset twice (the second at least
   10 hours after the first).

Only then does anything else join the domain: Exchange servers and the other domain
controllers, which are promoted again and replicate from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dr.errors import NotRecoverable
from dr.model.inventory import Domain, Forest, Inventory, Server
from dr.planner.builder import PlanBuilder, platform_of
from dr.planner.common import Series
from dr.planner.facts import FactsProvider
from dr.planner.forest import dc_steps, first_dc, latest_artifact
from dr.planner.server import disk_image, rebuild_host

LEGACY_WINDOWS = ("2000", "2003", "2003R2")
RID_POOL_INCREASE = 100_000
KRBTGT_WAIT_HOURS = 10  # the default maximum lifetime of user and service tickets


@dataclass
class RecoveredDomain:
    """The first domain controller of a domain and the step ids that others hang on."""

    dc: Server
    domain: Domain
    ready: list[str]  # the domain usable: everything that joins it waits for these
    others: list[str]  # the other domain controllers, to be promoted again

    def finish(self, b: PlanBuilder, after: Sequence[str]) -> None:
        """The second krbtgt reset, once ``after`` (the promoted domain controllers) run:
        it waits for tickets issued under the first password to expire, and holds nothing
        else up; it replicates to them."""
        second_krbtgt(b, self.dc, self.domain, [*self.ready, *after])


def recover_domain(
    b: PlanBuilder,
    provider: FactsProvider,
    forest: Forest,
    domain: Domain,
    after: Sequence[str],
) -> RecoveredDomain:
    """Every step that brings ``domain`` back on one domain controller, alone."""
    inv = b.inv
    dc = site_first_dc(inv, provider, domain)
    built = _machine(b, provider, dc, after)
    restored, _ = dc_steps(b, provider, dc, built, None, sysvol_primary=True)
    others = other_dcs(domain, dc)
    root = domain is forest.domains[0]
    ready = initial_recovery(b, dc, domain, root=root, others=others, after=restored)
    return RecoveredDomain(dc=dc, domain=domain, ready=ready, others=others)


def other_dcs(domain: Domain, dc: Server) -> list[str]:
    """The domain's other domain controllers: removed, then promoted again."""
    return [n for n in domain.domain_controllers if n.casefold() != dc.name.casefold()]


def site_first_dc(inv: Inventory, provider: FactsProvider, domain: Domain) -> Server:
    """The domain controller whose backups can rebuild it on new hardware, first listed
    first: a system state and, on 2008 and later, a full-server image as well."""
    for name in domain.domain_controllers:
        dc = inv.server(name)
        if latest_artifact(provider, dc.name, "system-state", None, required=False) is None:
            continue
        if dc.windows_version in LEGACY_WINDOWS or disk_image(provider, dc) is not None:
            return dc
    return first_dc(inv, provider, domain)


def _machine(
    b: PlanBuilder, provider: FactsProvider, dc: Server, after: Sequence[str]
) -> list[str]:
    """The replacement machine, not joined to anything: the directory comes from backup."""
    if dc.windows_version not in LEGACY_WINDOWS and disk_image(provider, dc) is None:
        raise NotRecoverable(
            f"{dc.name}: no full-server backup, and in a site loss its machine is gone; a "
            "system-state backup restores only onto the Windows installation it was taken "
            "from, so the domain's first domain controller cannot be rebuilt from it",
            hint=f"back up {dc.name} with `wbadmin start backup -allCritical -systemState "
            "-backupTarget:<volume> -quiet` (a bare-metal backup, which Microsoft's forest "
            "recovery guide requires for new hardware) and import it, or list first in the "
            "inventory a domain controller that has one",
            details={"host": dc.name, "needs": "system-image"},
        )
    if dc.windows_version in LEGACY_WINDOWS and disk_image(provider, dc) is None:
        b.warn(
            f"{dc.name}: Windows {dc.windows_version} is installed again by hand under the "
            "same name, drive letters and %SystemRoot%, then its system state is restored "
            "(KB 263532: not supported by Microsoft on different hardware)"
        )
    return rebuild_host(b, provider, dc, after, join=False)


def initial_recovery(
    b: PlanBuilder,
    dc: Server,
    domain: Domain,
    *,
    root: bool,
    others: Sequence[str],
    after: Sequence[str],
) -> list[str]:
    on = {"host": dc.name, "platform": platform_of(dc)}
    fqdn = f"{dc.name}.{domain.name}"
    s = Series(b, list(after))
    s.add(
        "seize-fsmo-roles",
        [dc.name],
        **on,
        resources=[f"host:{dc.name}"],
        params={"server": dc.name, "fqdn": fqdn, "domain": domain.name, "forest_roles": root},
        title=f"{dc.name} seizes every operations master role of {domain.name}"
        + (" and the forest's" if root else ""),
    )
    for other in others:
        s.add(
            "cleanup-dc-metadata",
            [dc.name, other],
            host="operator",
            platform=platform_of(dc),
            params={
                "server": dc.name,
                "removed": other,
                "removed_fqdn": f"{other}.{domain.name}",
                "domain": domain.name,
            },
            title=f"Remove {other} from the directory: it is promoted again later",
        )
    s.add(
        "raise-rid-pool",
        [dc.name],
        **on,
        params={
            "server": dc.name,
            "domain_dn": domain_dn(domain.name),
            "increase": RID_POOL_INCREASE,
        },
        title=f"Raise the RID pool of {domain.name} by {RID_POOL_INCREASE:,}",
    )
    s.add(
        "reset-machine-password",
        [dc.name],
        **on,
        params={"server": dc.name},
        title=f"Reset {dc.name}'s own computer password twice",
    )
    s.add(
        "reset-krbtgt",
        [domain.name, "1"],
        **on,
        params={"server": dc.name, "domain": domain.name, "round": 1},
        title=f"Reset the krbtgt password of {domain.name} (first of two)",
    )
    return s.last


def second_krbtgt(b: PlanBuilder, dc: Server, domain: Domain, after: Sequence[str]) -> None:
    wait = Series(b, list(after))
    wait.add(
        "manual",
        [domain.name, "krbtgt-wait"],
        host="operator",
        params={
            "instructions": f"Wait at least {KRBTGT_WAIT_HOURS} hours after the first krbtgt "
            f"reset of {domain.name} (the maximum lifetime of user and service tickets; "
            "longer if the domain's Kerberos policy sets more), then acknowledge",
            "record": "time the wait ended",
        },
        title=f"Wait {KRBTGT_WAIT_HOURS} h before the second krbtgt reset",
    )
    wait.add(
        "reset-krbtgt",
        [domain.name, "2"],
        host=dc.name,
        platform=platform_of(dc),
        params={"server": dc.name, "domain": domain.name, "round": 2},
        title=f"Reset the krbtgt password of {domain.name} (second of two)",
    )


def domain_dn(name: str) -> str:
    """``corp.contoso.com`` → ``DC=corp,DC=contoso,DC=com``."""
    return ",".join(f"DC={label}" for label in name.split("."))
