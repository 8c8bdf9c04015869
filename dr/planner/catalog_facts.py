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

from dr.catalog import Artifact, Catalog, Run
from dr.exchange.rules import LogRange
from dr.model.inventory import Inventory
from dr.planner.facts import (
    BackupVersion,
    DatabaseImage,
    HostArtifact,
    LiveLogs,
    MemoryFacts,
)

STREAM_KINDS = frozenset({"database", "stm", "logs", "checkpoint"})


def catalog_facts(
    catalog: Catalog, inventory: Inventory, live_logs: Iterable[LiveLogs] = ()
) -> MemoryFacts:
    """Read the catalog once and hold its facts in memory for the planner."""
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
    backups: dict[str, list[BackupVersion]] = defaultdict(list)
    for (run_id, stream), artifacts in streams.items():
        backups[stream].append(_version(runs[run_id], stream, artifacts))
    for versions in backups.values():
        versions.sort(key=lambda v: (v.at, v.id))
    live = {lv.stream: lv for lv in live_logs}
    return MemoryFacts(inventory, dict(backups), live, others)


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
    )


def _version(run: Run, stream: str, artifacts: Sequence[Artifact]) -> BackupVersion:
    logs = next((a for a in artifacts if a.kind == "logs"), None)
    log_range = None
    if logs is not None and logs.first_gen is not None and logs.last_gen is not None:
        log_range = LogRange(
            logs.log_prefix or "", logs.first_gen, logs.last_gen, logs.log_signature
        )
    images = tuple(_image(a, artifacts) for a in artifacts if a.kind == "database")
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
        log_size_bytes=logs.size if logs else 0,
        expired=all(a.expired for a in artifacts),
        offline=bool(images) and logs is None and clean,
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
