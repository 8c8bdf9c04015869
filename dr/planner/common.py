"""What every scenario shares: paths, SLA lookup, chain facts, sequencing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from dr.errors import NotRecoverable, VersionMismatch
from dr.model.inventory import Inventory, RecoveryServer, Server
from dr.model.refs import DatabaseRef, database_candidates
from dr.planner.builder import PlanBuilder
from dr.planner.chain import Chain
from engine.plan import Sla

Family = Literal["legacy", "modern"]


def family(server: Server | RecoveryServer) -> Family:
    """'legacy' for Exchange 2000/2003 (streaming restore), 'modern' for 2007+."""
    version = server.exchange_version
    if version is None:
        raise VersionMismatch(
            f"{server.name} runs no Exchange in the inventory, so there is nothing to restore",
            hint="set exchange_version for the server in the inventory",
            details={"server": server.name},
        )
    return "legacy" if version <= 2003 else "modern"


def temp_root(server: Server | RecoveryServer) -> str:
    """The server's restore temp folder; else a DRTemp folder on its first data drive."""
    folder = getattr(server, "temp_folder", None)
    if folder:
        return str(folder).rstrip("\\")
    data = [d.letter for d in server.drives if not d.critical]
    return f"{data[0] if data else 'C'}:\\DRTemp"


def win_dir(path: str) -> str:
    """The directory part of a Windows path (``E:\\a\\b.edb`` → ``E:\\a``)."""
    return path.rsplit("\\", 1)[0] if "\\" in path else path


def pre_restore_copy(folder: str) -> str:
    """Where the existing files of ``folder`` are copied before a restore.

    A sibling on the same volume (``E:\\mdbdata`` → ``E:\\mdbdata.pre-restore``): the copy is
    fast (the operations guide keeps database drives under half full for this), and it is
    never inside the folder being copied, so a second run cannot copy the copy into itself.
    """
    trimmed = folder.rstrip("\\")
    if len(trimmed) <= 2:  # a drive root such as E: — copy beside the data, not into it
        return f"{trimmed}\\dr-pre-restore.{trimmed[0]}"
    return f"{trimmed}.pre-restore"


def stamp(at: datetime | None) -> str:
    return "the point of failure" if at is None else at.strftime("%Y-%m-%d %H:%M:%SZ")


def sla_for(inv: Inventory, keys: Iterable[str]) -> Sla:
    """The strictest SLA over the databases (keys ``SERVER/SG/DB``); the default otherwise."""
    wanted = set(keys)
    objectives = [inv.sla.default] if not wanted else []
    for ref, objective in inv.sla.databases.items():
        if any(c.key in wanted for c in database_candidates(inv, ref)):
            objectives.append(objective)
    matched = {c.key for ref in inv.sla.databases for c in database_candidates(inv, ref)}
    if wanted - matched:
        objectives.append(inv.sla.default)
    return Sla(
        rpo_seconds=min(o.rpo for o in objectives), rto_seconds=min(o.rto for o in objectives)
    )


def worst_loss(losses: Iterable[float | None]) -> float | None:
    """The largest data-loss window; unknown if any of them is unknown."""
    values = list(losses)
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


def chain_facts(chain: Chain) -> dict[str, Any]:
    """What a document shows about a chain: which backups, which generations, which point."""
    return {
        "stream": chain.stream,
        "base": chain.base.id,
        "base_type": chain.base.backup_type,
        "base_at": chain.base.at.isoformat(),
        "versions": chain.version_ids,
        "live_logs": chain.live is not None,
        "first_gen": chain.first_gen,
        "stop_gen": chain.stop_gen,
        "recoverable_point": chain.point.isoformat(),
        "data_loss_seconds": chain.data_loss_seconds,
    }


def use_chain(b: PlanBuilder, chain: Chain) -> None:
    """Record a chain's facts in the plan's input digest and its warnings in the plan."""
    b.use(chain.base, *chain.sources)
    b.warn(*chain.warnings)


def require_images(chain: Chain, dbs: Sequence[DatabaseRef]) -> None:
    """Every database being restored must be inside the chosen base backup."""
    missing = [d.key for d in dbs if chain.base.image(d.key) is None]
    if missing:
        raise NotRecoverable(
            f"full backup {chain.base.id} of {chain.stream} does not hold {', '.join(missing)}",
            hint="restore those databases on their own (one --db each) or pick another target",
            details={"stream": chain.stream, "base": chain.base.id, "missing": missing},
        )


@dataclass
class Series:
    """Adds steps one after another (each needs the previous): the order within a group."""

    b: PlanBuilder
    last: list[str]

    def add(self, kind: str, key: Sequence[str], **kw: Any) -> str:
        needs = [*self.last, *kw.pop("needs", [])]
        step_id = self.b.add(kind, key, needs=needs, **kw)
        self.last = [step_id]
        return step_id
