"""Losing the site: the whole estate as one plan, with the parallelism dependencies allow.

Forests first (one domain controller per domain, from its system state), then every
server: the other domain controllers, the certificate authority before the KMS, the
Exchange servers with their stores. A server waits only for its own domain's directory,
so servers rebuild in parallel and storage groups restore in parallel after each
server's disaster-recovery setup; the RTO is the critical path through all of it.
"""

from __future__ import annotations

from dr.planner.builder import PlanBuilder
from dr.planner.chain import Chain
from dr.planner.common import chain_facts
from dr.planner.facts import FactsProvider, PlanReporter
from dr.planner.forest import dc_steps, first_dc
from dr.planner.server import _finish, server_steps
from engine.plan import Plan, Target


def plan_site(provider: FactsProvider, reporter: PlanReporter | None = None) -> Plan:
    """Everything of the estate after losing the site."""
    inv = provider.inventory()
    b = PlanBuilder(provider, "site", Target(what="site", point_of_failure=True))
    directory: dict[str, list[str]] = {}
    first: set[str] = set()
    for forest in inv.forests:
        for domain in forest.domains:
            dc = first_dc(inv, provider, domain)
            directory[domain.name.casefold()], _ = dc_steps(
                b,
                provider,
                dc,
                [],
                None,
                sysvol_primary=True,  # the first DC: no partner left
            )
            first.add(dc.name)
    # certificate authorities first, so a KMS can wait for its CA certificates
    order = sorted(
        (s for s in inv.servers if s.name not in first),
        key=lambda s: (not s.certificate_authority, s.name),
    )
    ca_steps: dict[str, str] = {}
    chains: list[Chain] = []
    for server in order:
        after = directory.get(server.domain.casefold(), [])
        steps = server_steps(b, provider, server, after, reporter, ca_steps)
        if steps.ca:
            ca_steps[server.name] = steps.ca
        chains += steps.chains
    for server in inv.servers:
        if server.name in first and server.certificate_authority:
            b.warn(
                f"{server.name} is restored from its system state; restore its CA "
                "database separately if the system state predates it"
            )
    b.facts.update(
        {
            "first_domain_controllers": sorted(first),
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
