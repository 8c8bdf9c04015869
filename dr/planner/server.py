"""Full server recovery (B6) and what `plan site` composes from it.

Same name, same domain, same Windows version (or the disk image taken before Exchange was
installed), then ``setup /disasterrecovery`` (2000/2003) or ``Setup /m:RecoverServer``
(2007+) with the server's recorded components and install path (it reads the rest from
the directory), then the stores, the IIS metabase (whose keys only the system state
holds), SRS, the KMS database (CA certificates and the KMS startup password first) and the
CA (its certificate password). seeds/004 "Full Exchange Server Recovery"; research §2.5, §3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dr.errors import NotFoundError
from dr.model.inventory import Server
from dr.model.refs import DatabaseRef
from dr.planner.builder import PlanBuilder, platform_of
from dr.planner.chain import Chain
from dr.planner.common import Series, chain_facts, sla_for, worst_loss
from dr.planner.database import RestoreTarget, restore_stream, stream_chain
from dr.planner.facts import FactsProvider, PlanReporter
from dr.planner.forest import dc_steps, latest_artifact
from engine.plan import Plan, Target


@dataclass
class ServerSteps:
    """The ids later steps hang on: the rebuilt host, its CA, and every step's end."""

    ready: list[str] = field(default_factory=list)
    ca: str | None = None
    ends: list[str] = field(default_factory=list)
    chains: list[Chain] = field(default_factory=list)


def _on(server: Server) -> dict[str, object]:
    return {
        "host": server.name,
        "platform": platform_of(server),
        "resources": [f"host:{server.name}"],
    }


def rebuild_host(
    b: PlanBuilder,
    provider: FactsProvider,
    server: Server,
    after: Sequence[str],
    *,
    join: bool = True,
    reset: bool = True,
) -> list[str]:
    """Hardware and Windows: the disk image if one exists, else a clean install (joined to
    the domain under the old name with its account reset, unless ``join`` is False; a
    domain controller promoted again after its metadata was removed has no account left to
    reset, ``reset`` False: joining makes a new one)."""
    s = Series(b, list(after))
    windows_sp, media = _updates(server)
    needs = f"Windows {server.windows_version} {windows_sp}".strip()
    drives = ", ".join(f"{d.letter}: {d.size_gb:g} GB" for d in server.drives)
    s.add(
        "verify-hardware",
        [server.name],
        host="operator",
        params={"server": server.name, "requirements": f"{needs}; drives {drives}"},
        title=f"Hardware for {server.name}: same drives, {needs}",
    )
    image = disk_image(provider, server)
    if image is not None:
        b.use(image)
        s.add(
            "restore-disk-image",
            [server.name],
            host="operator",
            size_bytes=image.size_bytes,
            params={"server": server.name, "version": image.id},
            title=f"Restore the disk image of {server.name}",
        )
        return s.last
    b.warn(f"no disk image of {server.name}: Windows is installed by hand")
    if join and reset:
        s.add(
            "reset-computer-account",
            [server.name],
            host="operator",
            params={"server": server.name, "domain": server.domain},
            title=f"Reset (do not delete) the computer account of {server.name}",
        )
    s.add(
        "install-windows",
        [server.name],
        host="operator",
        params={
            "server": server.name,
            "windows_version": server.windows_version,
            "service_pack": windows_sp,
            "domain": server.domain,
            "exchange_media": media,
        },
        title=f"Install Windows {server.windows_version} as {server.name}",
    )
    if join:
        why = f"joining {server.name} to {server.domain}"
        s.add(
            "join-domain",
            [server.name],
            **_on(server),
            params={"server": server.name, "domain": server.domain},
            secrets=[
                b.secret("domain-join-account", None, why),
                b.secret("domain-join-password", None, why),
            ],
            title=f"Join {server.name} to {server.domain} under its old name",
        )
    return s.last


def _updates(server: Server) -> tuple[str, str]:
    """(Windows service pack, Exchange setup media) from the inventory's ``service_pack``.

    On an Exchange server the recorded update is Exchange's (``CU23``, Exchange 2003 ``SP2``:
    what ``update.exe /disasterrecovery`` and the recovery media must match), not Windows';
    on any other server it is Windows' own."""
    update = server.service_pack or ""
    if server.exchange_version is None:
        return update, ""
    return "", f"Exchange Server {server.exchange_version} {update}".strip()


def disk_image(provider: FactsProvider, server: Server) -> Any:
    image = latest_artifact(provider, server.name, "disk-image", None, required=False)
    return image or latest_artifact(provider, server.name, "system-image", None, required=False)


def _only_dc(b: PlanBuilder, server: Server) -> bool:
    """A DC rebuilt alone takes SYSVOL from its partners; the domain's only DC is primary.
    (In a site plan the first DC of each domain is restored first, so the others have one.)"""
    for forest in b.inv.forests:
        for domain in forest.domains:
            if server.name in domain.domain_controllers:
                return len(domain.domain_controllers) == 1
    return True


def server_steps(
    b: PlanBuilder,
    provider: FactsProvider,
    server: Server,
    after: Sequence[str],
    reporter: PlanReporter | None = None,
    ca_steps: dict[str, str] | None = None,
    promote_from: str | None = None,
) -> ServerSteps:
    """Every step rebuilding one server; hangs on ``after`` (its domain's directory).

    ``promote_from``: in a forest recovery a domain controller other than the domain's
    first is not restored from backup (its metadata was removed) but installed afresh,
    joined, and promoted again, replicating from that one."""
    out = ServerSteps()
    if "domain-controller" in server.roles and promote_from:
        out.ready = _promote(b, provider, server, after, promote_from)
    elif "domain-controller" in server.roles:
        built = rebuild_host(b, provider, server, after)
        out.ready, _ = dc_steps(
            b, provider, server, built, None, sysvol_primary=_only_dc(b, server)
        )
    else:
        out.ready = _member(b, provider, server, after)
    out.ends = list(out.ready)
    if server.certificate_authority:
        out.ca = _ca(b, provider, server, out.ready)
        out.ends.append(out.ca)
    if server.exchange_version is not None:
        _exchange(b, provider, server, out, reporter, ca_steps or {})
    return out


def _promote(
    b: PlanBuilder, provider: FactsProvider, server: Server, after: Sequence[str], source: str
) -> list[str]:
    s = Series(b, rebuild_host(b, provider, server, after, reset=False))
    why = f"promoting {server.name} to a domain controller again"
    s.add(
        "promote-dc",
        [server.name],
        host="operator",
        platform=platform_of(server),
        params={"server": server.name, "domain": server.domain, "source": source},
        secrets=[b.secret("dsrm-password", server.name, why)],
        title=f"Promote {server.name} again: an additional domain controller of {server.domain}",
    )
    s.add(
        "verify-directory",
        [server.name],
        **_on(server),
        params={"server": server.name, "domain": server.domain},
        title=f"{server.name} answers for {server.domain} and replicates",
    )
    return s.last


def _legacy(server: Server) -> bool:
    return server.exchange_version is None or server.exchange_version <= 2003


def _member(
    b: PlanBuilder, provider: FactsProvider, server: Server, after: Sequence[str]
) -> list[str]:
    """The operating system of a member server, in the order its family needs.

    2000/2003 (and plain Windows servers): install Windows under the old name, restore the
    system state (its machine keys, which the IIS metabase needs), restart, then reset the
    secure channel — the system state brought back the old machine secret. 2007+: a clean
    OS joined under the reset account, and no system-state restore before RecoverServer
    (Exchange reads its configuration from the directory; research §2.5). A disk image
    brings the whole system back (with the system state on top for 2000/2003)."""
    state = latest_artifact(provider, server.name, "system-state", None, required=False)
    legacy = _legacy(server)
    s = Series(b, rebuild_host(b, provider, server, after, join=not (legacy and state)))
    if not legacy:
        if state is not None:
            b.warn(f"{server.name}: the system state is not restored on Exchange "
                   f"{server.exchange_version}: Setup /m:RecoverServer rebuilds the server "
                   "from the directory, and the old system state would bring back the old "
                   "machine secret")  # fmt: skip
        return s.last
    if state is None:
        b.warn(f"no system-state backup of {server.name}: machine keys (IIS metabase) are lost")
        return s.last
    b.use(state)
    s.add(
        "restore-system-state",
        [server.name],
        **_on(server),
        size_bytes=state.size_bytes,
        params={
            "server": server.name,
            "version": state.native_id or state.id,
            "target": state.native_target or "",
            "authoritative": False,
            "dsrm": False,
        },
        title=f"Restore the system state of {server.name} (its machine keys)",
    )
    s.add(
        "reboot-host",
        [server.name, "system-state"],
        **_on(server),
        params={"server": server.name, "services": []},
        title=f"Restart {server.name}",
    )
    s.add(
        "reset-secure-channel",
        [server.name],
        host="operator",
        params={"server": server.name, "domain": server.domain},
        title=f"Reset the secure channel of {server.name} with {server.domain}",
    )
    return s.last


def _exchange(
    b: PlanBuilder,
    provider: FactsProvider,
    server: Server,
    out: ServerSteps,
    reporter: PlanReporter | None,
    ca_steps: dict[str, str],
) -> None:
    if disk_image(provider, server) is not None:
        setup = out.ends  # the image holds Exchange's programs and settings: no setup
        b.warn(f"{server.name}: restored from its disk image, so Exchange setup is not run")
    else:
        setup = _recover_exchange(b, server, out.ends)
    for sg in server.storage_groups:
        if not sg.databases:
            continue
        dbs = [DatabaseRef(server, sg, db) for db in sg.databases]
        chain = stream_chain(provider, dbs, None, reporter)
        tgt = RestoreTarget(server, sg, tuple(sg.databases), original=False)
        out.ends += restore_stream(b, chain, tgt, setup)
        out.chains.append(chain)
    out.ends += _ancillary(b, provider, server, setup, ca_steps)


def _recover_exchange(b: PlanBuilder, server: Server, after: list[str]) -> list[str]:
    """``setup /disasterrecovery`` or ``Setup /m:RecoverServer``; on 2007+ the certificates
    setup replaced with self-signed ones go back afterwards (recover-exchange-servers.md)."""
    s = Series(b, after)
    s.add(
        "exchange-recover-server",
        [server.name],
        **_on(server),
        params={
            "server": server.name,
            "install_path": server.install_path or "",
            "components": list(server.components),
            "version": str(server.exchange_version),
        },
        title=f"Exchange disaster-recovery setup on {server.name}",
    )
    if not _legacy(server):
        s.add(
            "reimport-certificates",
            [server.name],
            host="operator",
            platform=platform_of(server),
            params={"server": server.name},
            title=f"Import {server.name}'s certificates again and re-apply its customisations",
        )
    return s.last


def _ancillary(
    b: PlanBuilder,
    provider: FactsProvider,
    server: Server,
    after: list[str],
    ca_steps: dict[str, str],
) -> list[str]:
    ends: list[str] = []
    on = _on(server)
    if server.iis_metabase:
        meta = latest_artifact(provider, server.name, "iis-metabase", None, required=True)
        assert meta is not None
        b.use(meta)
        ends.append(
            b.add(
                "restore-iis-metabase",
                [server.name],
                **on,
                needs=after,
                params={"server": server.name, "version": meta.id, "backup_name": meta.id},
                secrets=[
                    b.secret(
                        "iis-backup-password",
                        server.name,
                        f"the IIS metabase backup of {server.name}",
                    )
                ],
                title="Restore the IIS metabase (its keys came with the system state)",
            )
        )
    if server.srs:
        srs = latest_artifact(provider, server.name, "srs-database", None, required=True)
        assert srs is not None
        b.use(srs)
        ends.append(
            b.add(
                "restore-srs-database",
                [server.name],
                **on,
                needs=after,
                params={"server": server.name, "version": srs.id},
                title="Restore the Site Replication Service database",
            )
        )
    if server.kms:
        ends.append(_kms(b, provider, server, after, ca_steps))
    return ends


def _kms(
    b: PlanBuilder,
    provider: FactsProvider,
    server: Server,
    after: list[str],
    ca_steps: dict[str, str],
) -> str:
    kms = latest_artifact(provider, server.name, "kms-database", None, required=True)
    assert kms is not None
    ca_host = next((s for s in b.inv.servers if s.certificate_authority), None)
    certs = latest_artifact(
        provider, ca_host.name if ca_host else server.name, "ca-certificates", None, required=True
    )
    b.use(kms, certs)
    secret = b.secret("kms-startup-password", server.name, f"the KMS database of {server.name}")
    needs = after + ([ca_steps[ca_host.name]] if ca_host and ca_host.name in ca_steps else [])
    return b.add(
        "restore-kms-database",
        [server.name],
        **_on(server),
        needs=needs,
        secrets=[secret],
        params={"server": server.name, "version": kms.id},
        title="Restore the KMS database (CA certificates and startup password first)",
    )


def _ca(b: PlanBuilder, provider: FactsProvider, server: Server, after: list[str]) -> str:
    db = latest_artifact(provider, server.name, "ca-database", None, required=True)
    assert db is not None
    b.use(db)
    secret = b.secret(
        "ca-certificate-password", server.name, f"the CA on {server.name}",
        name="ca-backup-password",  # what restore-ca's template asks for
    )  # fmt: skip
    return b.add(
        "restore-ca",
        [server.name],
        **_on(server),
        needs=after,
        secrets=[secret],
        params={
            "server": server.name,
            "version": db.id,
            "backup_path": f"{server.temp_folder or 'C:'}\\CABackup",
        },
        title=f"Restore the certificate authority on {server.name}",
    )


def directory_check(b: PlanBuilder, server: Server) -> list[str]:
    """A server needs its domain's directory: check a domain controller answers first."""
    for forest in b.inv.forests:
        for domain in forest.domains:
            if domain.name.casefold() == server.domain.casefold() and domain.domain_controllers:
                dc = b.inv.server(domain.domain_controllers[0])
                if dc.name == server.name:
                    return []
                answers = b.add(
                    "verify-directory",
                    [dc.name],
                    host=dc.name,
                    platform=platform_of(dc),
                    params={"server": dc.name, "domain": domain.name},
                    title=f"The directory of {domain.name} answers",
                )
                if server.exchange_version is None:
                    return [answers]
                return [  # Exchange's recovery setup needs the account: reset, never deleted
                    b.add(
                        "verify-computer-account",
                        [server.name],
                        host=dc.name,
                        platform=platform_of(dc),
                        needs=[answers],
                        params={"server": server.name, "domain": domain.name},
                        title=f"{server.name}'s computer account is still in {domain.name}",
                    )
                ]
    return []


def plan_server(provider: FactsProvider, name: str, reporter: PlanReporter | None = None) -> Plan:
    """B6: rebuild one server and everything it held, to the point of failure."""
    inv = provider.inventory()
    try:
        server = inv.server(name)
    except KeyError:
        raise NotFoundError(
            f"no server {name!r} in the inventory", hint="name it as listed under servers:"
        ) from None
    b = PlanBuilder(provider, "server", Target(what=f"server {server.name}", point_of_failure=True))
    steps = server_steps(b, provider, server, directory_check(b, server), reporter)
    b.facts.update(
        {
            "server": server.name,
            "components": list(server.components),
            "install_path": server.install_path,
            "chains": [chain_facts(c) for c in steps.chains],
        }
    )
    keys = [
        f"{server.name}/{sg.name}/{d.name}" for sg in server.storage_groups for d in sg.databases
    ]
    return _finish(b, steps.chains, keys)


def _finish(b: PlanBuilder, chains: list[Chain], keys: list[str]) -> Plan:
    point: datetime | None = min((c.point for c in chains), default=None)
    loss = worst_loss(c.data_loss_seconds for c in chains) if chains else None
    return b.finish(recoverable_point=point, data_loss_seconds=loss, sla=sla_for(b.inv, keys))
