"""Alternate-server recovery into a recovery forest (B8) and restore drills (C1).

A store restored into another server while the original exists must go into a separate
forest whose organization name, administrative group legacyExchangeDN, storage group and
database names match the source, or the store will not mount (seeds/004 "Alternate Server
Recovery"; research §2.6). The planner checks every one of those before planning and
names every mismatch at once (for the closest server of each candidate forest); a forest
or server that does not match is passed over, so it blocks only the restores that would
need it. A drill is the same restore plus verification (mount, item counts against the
catalog, a sample of mailboxes) and a clean-up of the recovery forest, so every database
is proven restorable at least once every six months.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dr.errors import NameMismatch, NotFoundError, VersionMismatch
from dr.model.inventory import Inventory, RecoveryForest, RecoveryServer
from dr.model.refs import DatabaseRef, resolve_database
from dr.planner.builder import PlanBuilder, platform_of
from dr.planner.chain import Chain
from dr.planner.common import chain_facts, sla_for
from dr.planner.database import RestoreTarget, restore_stream, stream_chain
from dr.planner.facts import FactsProvider, PlanReporter
from engine.plan import Plan, Target

SAMPLE_SIZE = 3


def find_forest(inv: Inventory, name: str | None) -> RecoveryForest:
    forests = inv.recovery_forests
    if name is None and len(forests) == 1:
        return forests[0]
    for forest in forests:
        if name is not None and forest.name.casefold() == name.casefold():
            return forest
    known = ", ".join(f.name for f in forests) or "none"
    raise NotFoundError(
        f"no recovery forest {name!r} in the inventory (known: {known})",
        hint="name one with --forest, as listed under recovery_forests:",
    )


def _legacy_dn(inv: Inventory, group: str | None) -> str | None:
    for ag in inv.organization.administrative_groups:
        if group is not None and ag.name.casefold() == group.casefold():
            return ag.legacy_exchange_dn
    return None


def _score(server: RecoveryServer, ref: DatabaseRef) -> tuple[bool, bool, bool, str]:
    sg = _sg(server, ref)
    has_db = sg is not None and any(
        d.name.casefold() == ref.database.name.casefold() for d in sg.databases
    )
    same_ag = (server.administrative_group or "").casefold() == (
        ref.server.administrative_group or ""
    ).casefold()
    return has_db, same_ag, server.exchange_version == ref.server.exchange_version, server.name


def _sg(server: RecoveryServer, ref: DatabaseRef) -> Any:
    for sg in server.storage_groups:
        if sg.name.casefold() == ref.storage_group.name.casefold():
            return sg
    return None


def mismatches(
    inv: Inventory, forest: RecoveryForest, server: RecoveryServer, ref: DatabaseRef
) -> list[dict[str, Any]]:
    """Every name or version in the recovery forest that differs from the source."""
    found: list[dict[str, Any]] = []

    def differ(what: str, expected: object, actual: object) -> None:
        if str(expected).casefold() != str(actual).casefold():
            found.append({"field": what, "expected": expected, "found": actual})

    differ("organization", inv.organization.name, forest.organization)
    group = ref.server.administrative_group
    forest_ag = next(
        (a for a in forest.administrative_groups if a.name.casefold() == (group or "").casefold()),
        None,
    )
    differ("administrative group", group, forest_ag.name if forest_ag else None)
    differ(
        "administrative group legacyExchangeDN",
        _legacy_dn(inv, group),
        forest_ag.legacy_exchange_dn if forest_ag else None,
    )
    sg = _sg(server, ref)
    differ("storage group", ref.storage_group.name, sg.name if sg else None)
    db = next(
        (
            d
            for d in (sg.databases if sg else [])
            if d.name.casefold() == ref.database.name.casefold()
        ),
        None,
    )
    differ("database", ref.database.name, db.name if db else None)
    differ("Exchange version", ref.server.exchange_version, server.exchange_version)
    return found


Candidate = tuple[RecoveryForest, RecoveryServer, list[dict[str, Any]]]


def _describe(found: list[dict[str, Any]]) -> str:
    return "; ".join(f"{m['field']} is {m['found']!r}, expected {m['expected']!r}" for m in found)


def _refuse(ref: DatabaseRef, candidates: Sequence[Candidate]) -> Exception:
    """The closest server of each recovery forest and every one of its mismatches, at once."""
    forest, server, found = candidates[0]
    only_version = all(m["field"] == "Exchange version" for m in found)
    cls = VersionMismatch if only_version else NameMismatch
    text = " | ".join(
        f"recovery forest {f.name} (server {s.name}): {_describe(m)}" for f, s, m in candidates
    )
    return cls(
        f"no recovery server can take {ref.key}: {text}",
        hint="make the recovery forest's names match the source (docs/scenarios.md, B8)",
        details={
            "forest": forest.name,
            "server": server.name,
            "database": ref.key,
            "mismatches": found,
            "candidates": [
                {"forest": f.name, "server": s.name, "mismatches": m} for f, s, m in candidates
            ],
        },
    )


def choose_recovery_server(
    inv: Inventory, forest_name: str | None, ref: DatabaseRef
) -> tuple[RecoveryForest, RecoveryServer]:
    """The recovery server that can take ``ref``: in the named forest, or in any when none is
    named. A forest or server whose names do not match is passed over (it blocks only the
    restores that would need it); when none matches, every mismatch of every candidate is
    named at once (for the closest server of each forest, the closest first)."""
    if forest_name is not None or len(inv.recovery_forests) < 2:
        forests = [find_forest(inv, forest_name)]  # none, or an unknown name: NotFoundError
    else:
        forests = list(inv.recovery_forests)
    candidates: list[Candidate] = [
        (forest, server, mismatches(inv, forest, server, ref))
        for forest in forests
        for server in forest.servers
    ]
    candidates.sort(key=lambda c: (len(c[2]), [not x for x in _score(c[1], ref)[:3]]))
    for forest, server, found in candidates:
        if not found:
            return forest, server
    closest = {
        id(forest): (forest, server, found) for forest, server, found in reversed(candidates)
    }
    raise _refuse(ref, sorted(closest.values(), key=candidates.index))


def forest_check(
    b: PlanBuilder, forest: RecoveryForest, server: RecoveryServer, ref: DatabaseRef
) -> tuple[Any, Any, str]:
    """The recovery server's storage group and database of ``ref``'s names, and the step
    that checks on the server that the forest carries the source's names."""
    sg = _sg(server, ref)
    db = next(d for d in sg.databases if d.name.casefold() == ref.database.name.casefold())
    check = b.add(
        "verify-recovery-forest",
        [forest.name, server.name, sg.name, db.name],
        host=server.name,
        platform=platform_of(server),
        params={
            "forest": forest.name,
            "organization": forest.organization,
            "administrative_group": server.administrative_group,
            "legacy_exchange_dn": _legacy_dn(b.inv, server.administrative_group),
            "sg": sg.name,
            "db": db.name,
        },
        title=f"Check {forest.name} carries the source's names",
    )
    return sg, db, check


def alternate_steps(
    b: PlanBuilder,
    provider: FactsProvider,
    ref: DatabaseRef,
    forest_name: str | None,
    at: datetime | None,
    reporter: PlanReporter | None,
) -> tuple[Chain, list[str], str]:
    """Check names, then restore ``ref`` into the recovery forest: (chain, last ids, server)."""
    forest, server = choose_recovery_server(b.inv, forest_name, ref)
    chain = stream_chain(provider, [ref], at, reporter, live=False)
    sg, db, check = forest_check(b, forest, server, ref)
    tgt = RestoreTarget(server, sg, (db,), original=False, source_keys=(ref.key,))
    b.warn(
        f"logs still on {ref.server.name} are not used: the recovery forest restores "
        "from backups only"
    )
    b.facts["forest"] = forest.name
    b.facts["recovery_server"] = server.name
    return chain, restore_stream(b, chain, tgt, [check]), server.name


def plan_alternate(
    provider: FactsProvider,
    db_ref: str,
    forest: str | None,
    at: datetime | None = None,
    reporter: PlanReporter | None = None,
) -> Plan:
    """B8: the database restored into the recovery forest, names checked first."""
    inv = provider.inventory()
    ref = resolve_database(inv, db_ref)
    b = PlanBuilder(
        provider,
        "alternate",
        Target(what=f"database {ref.key} in recovery forest", at=at, point_of_failure=at is None),
    )
    chain, _, _ = alternate_steps(b, provider, ref, forest, at, reporter)
    b.facts["chains"] = [chain_facts(chain)]
    return b.finish(
        recoverable_point=chain.point,
        data_loss_seconds=chain.data_loss_seconds,
        sla=sla_for(inv, [ref.key]),
    )


# --------------------------------------------------------------------------- C1


def expected_counts(
    provider: FactsProvider, ref: DatabaseRef, point: datetime
) -> tuple[dict[str, int], dict[str, str], datetime | None]:
    """The item count of every mailbox of the database as the last backup at or before
    ``point`` recorded it (``mailbox-counts``: mailbox GUID → count, GUID → display name,
    and when they were counted). Empty when no backup recorded counts — an imported history
    or Exchange 2000: the inventory's ``item_count`` is a size estimate, not a fact to
    compare a restore with."""
    rows = [
        a
        for a in provider.host_artifacts(ref.server.name, "mailbox-counts")
        if (a.database or "").casefold() == ref.key.casefold() and a.at <= point and a.name
    ]
    if not rows:
        return {}, {}, None
    when = max(a.at for a in rows)
    latest = [a for a in rows if a.at == when and a.item_count is not None]
    counts = {str(a.name): int(a.item_count or 0) for a in latest}
    names = {str(a.name): a.mailbox or str(a.name) for a in latest}
    return counts, names, when


def _recovery_server(inv: Inventory, name: str) -> RecoveryServer:
    return next(s for f in inv.recovery_forests for s in f.servers if s.name == name)


def _restored_files(b: PlanBuilder, server: Any, ref: DatabaseRef) -> dict[str, Any]:
    """What the drill left on ``server``: the database file, its storage group's logs, and
    the staging and temporary folders its steps filled."""
    sg = _sg(server, ref)
    db = next(d for d in sg.databases if d.name.casefold() == ref.database.name.casefold())
    return {"edb": db.edb, "stm": db.stm or "", "log_path": sg.log_path,
            "prefix": sg.log_prefix, "folders": _folders(b, server.name)}  # fmt: skip


def _folders(b: PlanBuilder, host: str) -> list[str]:
    """The staging and temporary folders the plan's steps fill on ``host``."""
    return sorted({
        str(step.params[name])
        for step in b.steps
        for kind, name in (("fetch-artifacts", "dest"), ("prepare-temp-folder", "path"))
        if step.kind == kind and host in (step.host, step.params.get("host"))
        and step.params.get(name)
    })  # fmt: skip


def _drill_method(inv: Inventory, ref: DatabaseRef) -> str:
    version = ref.server.exchange_version or 0
    return "rdb" if inv.drills.recovery_database_server and version >= 2010 else "forest"


def _into_recovery_database(
    b: PlanBuilder,
    provider: FactsProvider,
    ref: DatabaseRef,
    at: datetime | None,
    reporter: PlanReporter | None,
) -> tuple[Chain, list[str], str, str, str]:
    """2010+: the chain restored into a recovery database (Microsoft's "Restore data using a
    recovery database"): on the policy's server, which runs the source's Exchange version."""
    from dr.planner.mailbox import restore_into_recovery_database

    inv = b.inv
    if (ref.server.exchange_version or 0) < 2010:
        raise VersionMismatch(
            f"{ref.key} is on Exchange {ref.server.exchange_version}: recovery databases "
            "are Exchange 2010 and later",
            hint="drill it into the recovery forest (`--into forest`)",
        )
    name = inv.drills.recovery_database_server or ref.server.name
    try:
        server = inv.server(name)
    except KeyError:
        raise NotFoundError(
            f"drills.recovery_database_server {name!r} is not a server of the inventory",
            hint="name a mailbox server of the same Exchange version",
        ) from None
    if server.exchange_version != ref.server.exchange_version:
        raise VersionMismatch(
            f"{server.name} runs Exchange {server.exchange_version}, {ref.key} is on "
            f"{ref.server.exchange_version}: a recovery database takes a database of its "
            "server's version",
            hint="set drills.recovery_database_server to a server of the same version",
        )
    chain = stream_chain(provider, [ref], at, reporter, live=False)
    create, rdb, rdb_sg = restore_into_recovery_database(b, chain, ref, server)
    b.facts.update({"method": "recovery-database", "recovery_server": server.name,
                    "recovery_database": rdb, "rdb_files": {
                        "edb": rdb_sg.databases[0].edb, "log_path": rdb_sg.log_path}})  # fmt: skip
    return chain, [create], server.name, rdb_sg.name, rdb


def _remove_recovery_database(
    b: PlanBuilder, inv: Inventory, server: str, rdb: str, checks: list[str]
) -> None:
    on = {"host": server, "platform": b.steps[-1].platform}
    removed = b.add(
        "remove-recovery-database", [server, rdb], **on, needs=checks,
        params={"server": server, "name": rdb}, title=f"Dismount and remove {rdb}",
    )  # fmt: skip
    files = b.facts["rdb_files"]
    b.add(
        "remove-recovery-database-files", [server, rdb], **on, needs=[removed],
        params={"server": server, "name": rdb, "edb": files["edb"],
                "log_path": files["log_path"], "folders": _folders(b, server)},
        title=f"Delete {rdb}'s files and the drill's folders",
    )  # fmt: skip


def sample(mailboxes: Sequence[str], seed: str, size: int = SAMPLE_SIZE) -> list[str]:
    """A deterministic sample: the same database and point always check the same mailboxes."""
    ranked = sorted(mailboxes, key=lambda m: hashlib.sha256(f"{seed}|{m}".encode()).hexdigest())
    return sorted(ranked[:size])


def plan_drill(
    provider: FactsProvider,
    db_ref: str,
    forest: str | None = None,
    at: datetime | None = None,
    reporter: PlanReporter | None = None,
    into: str | None = None,
) -> Plan:
    """C1: the restore, the checks on the restored data, the clean-up.

    ``into`` is ``"forest"`` (the alternate restore into a recovery forest) or ``"rdb"`` (2010+:
    a recovery database on the policy's ``recovery_database_server``, else the database's own
    server). Default: the RDB when the policy names a recovery-database server and the
    database is on Exchange 2010 or later, else the recovery forest."""
    inv = provider.inventory()
    ref = resolve_database(inv, db_ref)
    method = into or _drill_method(inv, ref)
    b = PlanBuilder(
        provider,
        "drill",
        Target(what=f"drill of database {ref.key}", at=at, point_of_failure=at is None),
    )
    if method == "rdb":
        chain, last, server, sg_name, db_name = _into_recovery_database(b, provider, ref, at,
                                                                      reporter)  # fmt: skip
    else:
        chain, last, server = alternate_steps(b, provider, ref, forest, at, reporter)
        sg_name, db_name = ref.storage_group.name, ref.database.name
    b.facts["restored_as"] = db_name
    counts, names, counted_at = expected_counts(provider, ref, chain.point)
    on = {"host": server, "platform": b.steps[-1].platform}
    key = [server, sg_name, db_name]
    common = {"server": server, "sg": sg_name, "db": db_name}
    checks = []
    if counts:
        checks.append(b.add(
            "verify-item-counts", key, **on, needs=last,
            params={**common, "expected": counts, "names": names},
            title=f"Item counts of the {len(counts)} restored mailboxes against the backup's",
        ))  # fmt: skip
    else:
        b.warn(
            f"no backup of {ref.key} at or before the point recorded its mailboxes' item "
            "counts (a history imported from another tool, or Exchange 2000): the drill "
            "checks the mount and a sample, not the counts"
        )
    seed = f"{ref.key}|{chain.point.isoformat()}"
    picked = sample(sorted(counts), seed)
    checks.append(b.add(
        "verify-mailbox-sample", key, **on, needs=last,
        params={**common, "mailboxes": {guid: names[guid] for guid in picked}},
        title=f"Open the restored database and find a sample of {len(picked)} mailboxes",
    ))  # fmt: skip
    if method == "rdb":
        _remove_recovery_database(b, inv, server, db_name, checks)
    else:
        b.add(
            "cleanup-recovery-forest",
            key,
            **on,
            needs=checks,
            params={
                "forest": b.facts["forest"],
                **common,
                **_restored_files(b, _recovery_server(inv, server), ref),
            },
            title="Remove the restored database and logs from the recovery forest",
        )
    b.facts["sample"] = {"seed": seed, "method": "sha256(seed|guid), lowest first",
                         "size": len(picked), "of": len(counts)}  # fmt: skip
    if counted_at is not None:
        b.facts["item_counts_at"] = counted_at.isoformat()
    b.facts["chains"] = [chain_facts(chain)]
    b.facts["expected_item_counts"] = counts
    return b.finish(
        recoverable_point=chain.point,
        data_loss_seconds=chain.data_loss_seconds,
        sla=sla_for(inv, [ref.key]),
    )
