"""The planner's facts read from the SQLite catalog (the edge where I/O happens).

Everything is read once, when the provider is made, and grouped into frozen facts; the
planner then asks as often as it likes. A run's artifacts of one storage group become one
:class:`BackupVersion` (id ``run-<id>``); other artifacts become :class:`HostArtifact`
(id ``artifact-<id>``). Failed runs are left out: they restore nothing. The logs still on a
server are not in the catalog; callers pass them in (the lab reports them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from dr.catalog import Artifact, Catalog, Run
from dr.exchange.rules import LogRange
from dr.model.inventory import Inventory
from dr.planner.facts import (
    BackupVersion,
    DatabaseImage,
    HostArtifact,
    LiveLogs,
    MemoryFacts,
    StepFacts,
)

STREAM_KINDS = frozenset({"database", "stm", "logs", "checkpoint"})


def catalog_facts(
    catalog: Catalog,
    inventory: Inventory,
    live_logs: Iterable[LiveLogs] = (),
    steps: StepFacts | None = None,
) -> MemoryFacts:
    """Read the catalog once and hold its facts in memory for the planner (with the step
    library's facts, ``steps``, which the caller loaded)."""
    runs = {r.id: r for r in catalog.runs() if r.status != "failed"}
    streams: dict[tuple[int, str], list[Artifact]] = defaultdict(list)
    others: list[HostArtifact] = []
    for artifact in catalog.artifacts(include_expired=True):
        run = runs.get(artifact.run_id)
        if run is None:
            continue
        if artifact.kind in STREAM_KINDS and artifact.storage_group:
            streams[(run.id, artifact.storage_group)].append(artifact)
        else:
            others.append(_host_artifact(run, artifact))
    circular = _circular_logging(catalog)
    backups: dict[str, list[BackupVersion]] = defaultdict(list)
    groups = _group_databases(inventory)
    for (run_id, stream), artifacts in streams.items():
        version = _version(runs[run_id], stream, artifacts, groups.get(stream.lower(), ()))
        if (run_id, stream) in circular:
            version = replace(version, circular_logging=True)
        backups[stream].append(version)
    for versions in backups.values():
        versions.sort(key=lambda v: (v.at, v.id))
    live = {lv.stream: lv for lv in live_logs}
    return MemoryFacts(inventory, dict(backups), live, others, steps)


def _circular_logging(catalog: Catalog) -> set[tuple[int, str]]:
    """(run, stream) of every backup recorded with circular logging on: what the host
    reported at backup time, or what the import said (the catalog keeps it per stream)."""
    rows = catalog.conn.execute(
        "SELECT run_id, storage_group FROM stream_backups WHERE circular_logging != 0"
    )
    return {(int(run_id), str(sg)) for run_id, sg in rows}


def _host_artifact(run: Run, a: Artifact) -> HostArtifact:
    return HostArtifact(
        id=f"artifact-{a.id}",
        kind=a.kind,
        host=a.host,
        at=run.ended,
        size_bytes=a.size,
        expired=a.expired,
        mailbox=a.mailbox,
        item_count=a.item_count,
        database=a.database,
        name=a.name if a.kind == "mailbox-counts" else None,
    )


def _group_databases(inventory: Inventory) -> dict[str, tuple[str, ...]]:
    """Storage group key (lower-cased) → its databases' keys, ``SERVER/SG/DB``."""
    return {
        f"{server.name}/{sg.name}".lower(): tuple(
            f"{server.name}/{sg.name}/{db.name}" for db in sg.databases
        )
        for server in inventory.servers
        for sg in server.storage_groups
    }


def _version(
    run: Run, stream: str, artifacts: Sequence[Artifact], group: Sequence[str] = ()
) -> BackupVersion:
    log_files = [a for a in artifacts if a.holds_logs]
    logs = log_files[0] if log_files else None
    log_range = None
    if logs is not None:
        # one artifact per range (an imported manifest) or per log file (dr's own backups):
        # the run holds every generation from the lowest to the highest
        log_range = LogRange(
            logs.log_prefix or "",
            min(a.first_gen for a in log_files if a.first_gen is not None),
            max(a.last_gen for a in log_files if a.last_gen is not None),
            logs.log_signature,
        )
    images = tuple(
        _image(a, artifacts) for a in artifacts if a.kind == "database" and not a.is_media
    )
    images += tuple(
        DatabaseImage(database=key, size_bytes=a.size // max(len(group), 1))
        for a in artifacts
        if a.kind == "database" and a.is_media
        for key in group
    )
    clean = all(
        (a.state or "").lower().startswith("clean") for a in artifacts if a.kind == "database"
    )
    return BackupVersion(
        id=f"run-{run.id}",
        stream=stream,
        backup_type=artifacts[0].backup_type,
        at=run.ended,
        logs=log_range,
        databases=images,
        log_size_bytes=sum(a.size for a in log_files if not a.is_media),
        expired=all(a.expired for a in artifacts),
        offline=bool(images) and logs is None and clean,
        media=next((a.name for a in artifacts if a.is_media), ""),
    )


def _image(a: Artifact, artifacts: Sequence[Artifact]) -> DatabaseImage:
    stm = next((s for s in artifacts if s.kind == "stm" and s.database == a.database), None)
    required = None
    if a.log_required_first is not None and a.log_required_last is not None:
        required = (a.log_required_first, a.log_required_last)
    return DatabaseImage(
        database=a.database or "",
        size_bytes=a.size,
        stm_size_bytes=stm.size if stm else 0,
        log_required=required,
        signature=a.db_signature,
    )
