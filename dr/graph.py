"""The artifact dependency graph: what each backup (and each live thing) needs to be useful.

Nodes are artifacts (``backup:<id>`` for a stream backup, ``artifact:<id>`` for the rest)
and live things: ``live:<stream>`` (the logs still on a server), ``database:<key>``,
``server:<name>``, ``directory:<domain>`` and ``secret:<kind>@<host>``. An edge ``a → b``
means *a needs b*:

* an incremental needs the previous full or incremental, a differential its full
  (``dr.exchange.rules.direct_needs``); the live logs continue the newest backup whose
  range they follow;
* mailbox items need their original database to exist (A11);
* an Exchange server needs its domain's directory, which needs a domain controller's
  system state;
* the IIS metabase needs the system state that holds its keys (research §3);
* the KMS database needs the CA certificates and the KMS startup password; the CA
  certificates need their password; a domain controller's system state needs the DSRM
  password.

``gaps`` lists what breaks a restore before anyone needs one: holes in a log sequence
(with the backups on each side and when they ran), backups whose base is gone, secrets
with no recorded location. Nodes and edges are listed in natural order (``run-14`` before
``run-1178``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import networkx as nx

from dr.exchange.rules import Gap, StreamBackup, check_sequence, direct_needs, gens
from dr.model.inventory import Inventory, Server
from dr.planner.facts import BackupVersion, FactsProvider, HostArtifact

HOST_KINDS = (
    "system-state",
    "system-image",
    "disk-image",
    "iis-metabase",
    "kms-database",
    "ca-database",
    "ca-certificates",
    "srs-database",
    "mailbox-items",
    "server-config",
)


@dataclass(frozen=True)
class GraphGap:
    """One thing that would stop a restore, found ahead of time."""

    kind: str  # "log-gap" | "missing-base" | "missing-secret" | "missing-artifact"
    subject: str
    message: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "message": self.message,
            "details": self.details,
        }


_DIGITS = re.compile(r"(\d+)")


def natural_key(node: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that reads numbers as numbers: ``run-14`` before ``run-1178``."""
    parts = _DIGITS.split(node)
    return tuple((1, int(p)) if i % 2 else (0, p.casefold()) for i, p in enumerate(parts))


def _nodes(g: nx.DiGraph) -> list[tuple[str, dict[str, Any]]]:
    return sorted(g.nodes(data=True), key=lambda item: natural_key(item[0]))


def _edges(g: nx.DiGraph) -> list[tuple[str, str, dict[str, Any]]]:
    return sorted(g.edges(data=True), key=lambda e: (natural_key(e[0]), natural_key(e[1])))


def streams(inv: Inventory) -> list[str]:
    return [f"{s.name}/{sg.name}" for s in inv.servers for sg in s.storage_groups]


def build_graph(provider: FactsProvider) -> nx.DiGraph:
    """The whole estate's graph, from the provider's inventory and catalog facts."""
    inv = provider.inventory()
    g: nx.DiGraph = nx.DiGraph()
    for stream in streams(inv):
        _add_stream(g, provider, stream)
    for server in inv.servers:
        _add_server(g, provider, inv, server)
    return g


def _add_stream(g: nx.DiGraph, provider: FactsProvider, stream: str) -> None:
    versions = [v for v in provider.stream_backups(stream)]
    as_rules = [StreamBackup(v.backup_type, v.at, v.logs, v.circular_logging) for v in versions]
    for version, needs in zip(versions, direct_needs(as_rules), strict=True):
        node = f"backup:{version.id}"
        g.add_node(
            node,
            kind="backup",
            backup_type=version.backup_type,
            stream=stream,
            at=version.at.isoformat(),
            expired=version.expired,
            logs=_range(version),
            missing_base=_lacks_base(version, needs),
        )
        for index in needs:
            g.add_edge(node, f"backup:{versions[index].id}", relation="needs")
        for image in version.databases:
            g.add_edge(f"database:{image.database}", node, relation="restorable-from")
    live = provider.live_logs(stream)
    if live is not None:
        node = f"live:{stream}"
        g.add_node(
            node,
            kind="live-logs",
            stream=stream,
            logs=f"{live.logs.first}-{live.logs.last}",
            at=live.at.isoformat(),
        )
        before = [
            v
            for v in versions
            if v.logs
            and v.logs.last >= live.logs.first - 1
            and v.logs.first <= live.logs.first
            and v.backup_type != "copy"
        ]
        if before:
            g.add_edge(node, f"backup:{max(before, key=lambda v: v.at).id}", relation="needs")


def _range(version: BackupVersion) -> str | None:
    return f"{version.logs.first}-{version.logs.last}" if version.logs else None


def _lacks_base(version: BackupVersion, needs: tuple[int, ...]) -> bool:
    return version.backup_type in ("incremental", "differential") and not needs


def _newest(provider: FactsProvider, host: str, kind: str) -> HostArtifact | None:
    found = [a for a in provider.host_artifacts(host, kind) if not a.expired]
    return max(found, key=lambda a: (a.at, a.id)) if found else None


def _add_artifacts(g: nx.DiGraph, provider: FactsProvider, server: Server) -> None:
    for kind in HOST_KINDS:
        for a in provider.host_artifacts(server.name, kind):
            g.add_node(
                f"artifact:{a.id}",
                kind=kind,
                host=a.host,
                at=a.at.isoformat(),
                expired=a.expired,
                mailbox=a.mailbox,
            )
            if kind == "mailbox-items" and a.database:
                g.add_edge(f"artifact:{a.id}", f"database:{a.database}", relation="needs")


def _add_server(g: nx.DiGraph, provider: FactsProvider, inv: Inventory, server: Server) -> None:
    _add_artifacts(g, provider, server)
    state = _newest(provider, server.name, "system-state")
    if "domain-controller" in server.roles:
        directory = f"directory:{server.domain}"
        g.add_node(directory, kind="directory", domain=server.domain)
        if state is not None:
            g.add_edge(directory, f"artifact:{state.id}", relation="needs")
            g.add_edge(f"artifact:{state.id}", _secret(g, inv, "dsrm-password", server.name))
    if server.exchange_version is not None:
        node = f"server:{server.name}"
        g.add_node(node, kind="server", exchange=server.exchange_version)
        g.add_edge(node, f"directory:{server.domain}", relation="needs")
    meta = _newest(provider, server.name, "iis-metabase")
    if meta is not None and state is not None:
        g.add_edge(f"artifact:{meta.id}", f"artifact:{state.id}", relation="needs")
    kms = _newest(provider, server.name, "kms-database")
    if kms is not None:
        g.add_edge(f"artifact:{kms.id}", _secret(g, inv, "kms-startup-password", server.name))
        for ca in (s for s in inv.servers if s.certificate_authority):
            certs = _newest(provider, ca.name, "ca-certificates")
            if certs is not None:
                g.add_edge(f"artifact:{kms.id}", f"artifact:{certs.id}", relation="needs")
    certs = _newest(provider, server.name, "ca-certificates")
    if certs is not None:
        g.add_edge(f"artifact:{certs.id}", _secret(g, inv, "ca-certificate-password", server.name))


def _secret(g: nx.DiGraph, inv: Inventory, kind: str, host: str) -> str:
    node = f"secret:{kind}@{host}"
    ref = next(
        (s for s in inv.secrets if s.kind == kind and (s.host or "").upper() == host.upper()), None
    )
    g.add_node(
        node, kind="secret", secret_kind=kind, host=host, location=ref.location if ref else None
    )
    return node


# --------------------------------------------------------------------------- gaps


def gaps(provider: FactsProvider, g: nx.DiGraph | None = None) -> list[GraphGap]:
    """Log-sequence holes, backups whose base is gone, secrets with no recorded location."""
    g = g if g is not None else build_graph(provider)
    zone = provider.inventory().timezone
    found: list[GraphGap] = []
    for stream in streams(provider.inventory()):
        found += _log_gaps(stream, provider.stream_backups(stream), zone)
    found += _missing_bases(g)
    found += _secret_gaps(provider.inventory())
    return found


def _log_gaps(stream: str, versions: Sequence[BackupVersion], zone: str) -> list[GraphGap]:
    by_signature: dict[str | None, list[BackupVersion]] = {}
    for v in versions:
        if v.logs is not None and not v.expired:
            by_signature.setdefault(v.logs.signature, []).append(v)
    found: list[GraphGap] = []
    for group in by_signature.values():
        for gap in check_sequence([v.logs for v in group if v.logs is not None]):
            before, after = _around(gap, group)
            found.append(
                GraphGap(
                    "log-gap",
                    stream,
                    f"{stream}: log {gap.prefix} {gap_text(gap)} missing, "
                    + _between(before, after, zone),
                    {
                        "stream": stream,
                        "prefix": gap.prefix,
                        "first_missing": gap.first_missing,
                        "last_missing": gap.last_missing,
                        "backup_before": _backup_ref(before),
                        "backup_after": _backup_ref(after),
                    },
                )
            )
    return found


def _around(gap: Gap, group: Sequence[BackupVersion]) -> tuple[BackupVersion, BackupVersion]:
    """The backups on each side of a hole: the one whose logs end nearest before it, and
    the one whose logs start nearest after it (check_sequence found both, so both exist)."""
    same = [v for v in group if v.logs is not None and v.logs.prefix.upper() == gap.prefix]
    before = max(
        (v for v in same if v.logs is not None and v.logs.last < gap.first_missing),
        key=lambda v: (v.logs.last if v.logs else 0, v.at),
    )
    after = min(
        (v for v in same if v.logs is not None and v.logs.first > gap.last_missing),
        key=lambda v: (v.logs.first if v.logs else 0, v.at),
    )
    return before, after


def _between(before: BackupVersion, after: BackupVersion, zone: str) -> str:
    """When the hole is, on the inventory's clock: ``between backup:A (2024-05-01 22:00)
    and backup:B (2024-05-02 22:00), Europe/Amsterdam time``."""
    return (
        f"between backup:{before.id} ({_local(before.at, zone)}) "
        f"and backup:{after.id} ({_local(after.at, zone)}), {zone} time"
    )


def _local(at: datetime, zone: str) -> str:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo("UTC"))
    return aware.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _backup_ref(version: BackupVersion) -> dict[str, str]:
    return {"backup": f"backup:{version.id}", "at": version.at.isoformat()}


def gap_text(gap: Gap) -> str:
    return gens(gap.first_missing, gap.last_missing)


def _missing_bases(g: nx.DiGraph) -> list[GraphGap]:
    found: list[GraphGap] = []
    for node, data in _nodes(g):
        if data.get("kind") != "backup" or data.get("expired"):
            continue
        bases = [n for n in g.successors(node) if g.nodes[n].get("kind") == "backup"]
        gone = [n for n in bases if g.nodes[n].get("expired")]
        if data.get("missing_base") or gone:
            found.append(
                GraphGap(
                    "missing-base",
                    node,
                    f"{data['stream']}: {data['backup_type']} {node} needs "
                    + (
                        f"{', '.join(gone)}, expired by retention"
                        if gone
                        else "a full that is gone"
                    ),
                    {"stream": data["stream"], "backup": node, "expired_bases": gone},
                )
            )
    return found


def _secret_gaps(inv: Inventory) -> list[GraphGap]:
    wanted: list[tuple[str, str]] = []
    for server in inv.servers:
        if "domain-controller" in server.roles:
            wanted.append(("dsrm-password", server.name))
        if server.kms:
            wanted.append(("kms-startup-password", server.name))
        if server.certificate_authority:
            wanted.append(("ca-certificate-password", server.name))
    found: list[GraphGap] = []
    for kind, host in wanted:
        if not any(s.kind == kind and (s.host or "").upper() == host.upper() for s in inv.secrets):
            found.append(
                GraphGap(
                    "missing-secret",
                    f"secret:{kind}@{host}",
                    f"{host}: no recorded location for its {kind}",
                    {"secret_kind": kind, "host": host},
                )
            )
    return found


# --------------------------------------------------------------------------- rendering


def subgraph(g: nx.DiGraph, target: str) -> nx.DiGraph:
    """``target`` and everything it needs, transitively. Accepts a node id or a suffix."""
    node = (
        target
        if target in g
        else next(
            (n for n, _ in _nodes(g) if n.split(":", 1)[-1].casefold() == target.casefold()),
            None,
        )
    )
    if node is None:
        from dr.errors import NotFoundError

        raise NotFoundError(
            f"nothing called {target!r} in the graph",
            hint="name a node like database:EX1/SG/DB, server:EX1, backup:ID",
        )
    return g.subgraph({node, *nx.descendants(g, node)}).copy()


def _label(node: str, data: dict[str, Any]) -> str:
    extra = data.get("backup_type") or data.get("kind") or ""
    when = data.get("at", "")
    return f"{node}\\n{extra} {when}".strip()


def to_dot(g: nx.DiGraph) -> str:
    lines = ["digraph dr {", "  rankdir=LR;"]
    for node, data in _nodes(g):
        style = ' style="dashed"' if data.get("expired") else ""
        lines.append(f'  "{node}" [label="{_label(node, data)}"{style}];')
    for a, b, _ in _edges(g):
        lines.append(f'  "{a}" -> "{b}";')
    return "\n".join([*lines, "}"]) + "\n"


def to_mermaid(g: nx.DiGraph) -> str:
    order = [n for n, _ in _nodes(g)]
    ids = {n: f"n{i}" for i, n in enumerate(order)}
    lines = ["graph LR"]
    for node in order:
        lines.append(f'  {ids[node]}["{node}"]')
    for a, b, _ in _edges(g):
        lines.append(f"  {ids[a]} --> {ids[b]}")
    return "\n".join(lines) + "\n"


def to_json(g: nx.DiGraph) -> dict[str, Any]:
    return {
        "nodes": [{"id": n, **d} for n, d in _nodes(g)],
        "edges": [{"from": a, "to": b, **d} for a, b, d in _edges(g)],
    }
