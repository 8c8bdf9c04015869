"""Losing the site: the whole estate as one plan, with the parallelism dependencies allow.

The directory first, as Microsoft's forest recovery guide has it: in each domain (the
forest root first) one domain controller is rebuilt from its full-server and system-state
backups and made the domain alone — operations master roles seized, the other domain
controllers' metadata removed, the RID pool raised, its computer and krbtgt passwords
reset (``forest_recovery``). Then every server: the other domain controllers promoted
again, the certificate authority before the KMS, the Exchange servers with their stores.
A server waits only for its own domain's directory, so servers rebuild in parallel and
storage groups restore in parallel after each server's disaster-recovery setup; the RTO
is the critical path through all of it.
"""

from __future__ import annotations

from dr.planner.builder import PlanBuilder
from dr.planner.chain import Chain
from dr.planner.common import chain_facts
from dr.planner.facts import FactsProvider, PlanReporter
from dr.planner.forest_recovery import RecoveredDomain, recover_domain
from dr.planner.server import _finish, server_steps
from engine.plan import Plan, Target


def plan_site(provider: FactsProvider, reporter: PlanReporter | None = None) -> Plan:
    """Everything of the estate after losing the site."""
    inv = provider.inventory()
    b = PlanBuilder(provider, "site", Target(what="site", point_of_failure=True))
    recovered: dict[str, RecoveredDomain] = {}
    for forest in inv.forests:
        root: list[str] = []
        for domain in forest.domains:  # the root first: a child waits for its parent
            done = recover_domain(b, provider, forest, domain, root)
            recovered[domain.name.casefold()] = done
            root = root or done.ready
    first = {r.dc.name for r in recovered.values()}
    directory = {name: r.ready for name, r in recovered.items()}
    # certificate authorities first, so a KMS can wait for its CA certificates
    order = sorted(
        (s for s in inv.servers if s.name not in first),
        key=lambda s: (not s.certificate_authority, s.name),
    )
    ca_steps: dict[str, str] = {}
    chains: list[Chain] = []
    promoted: dict[str, list[str]] = {}
    for server in order:
        after = directory.get(server.domain.casefold(), [])
        domain = recovered.get(server.domain.casefold())
        again = domain is not None and server.name.casefold() in {
            o.casefold() for o in domain.others
        }
        source = f"{domain.dc.name}.{server.domain}" if domain and again else None
        steps = server_steps(b, provider, server, after, reporter, ca_steps, source)
        if source:
            promoted.setdefault(server.domain.casefold(), []).extend(steps.ready)
        if steps.ca:
            ca_steps[server.name] = steps.ca
        chains += steps.chains
    for name, done in recovered.items():
        done.finish(b, promoted.get(name, []))
    for server in inv.servers:
        if server.name in first and server.certificate_authority:
            b.warn(
                f"{server.name} is restored from its system state; restore its CA "
                "database separately if the system state predates it"
            )
    b.facts.update(
        {
            "first_domain_controllers": sorted(first),
            "promoted_domain_controllers": sorted(
                name for r in recovered.values() for name in r.others
            ),
            "servers": [s.name for s in order],
            "chains": [chain_facts(c) for c in chains],
        }
    )
    keys = [
        f"{s.name}/{sg.name}/{d.name}"
        for s in inv.servers
        for sg in s.storage_groups
        for d in sg.databases
    ]
    return _finish(b, chains, keys)
