"""The planner's facts read from the SQLite catalog (the edge where I/O happens).

Two providers, one code path. :class:`CatalogFacts` answers each question the planner asks
with an indexed query against the open catalog (one log stream's backups, one host's
artifacts of one kind) and keeps the answer: a one-database plan reads that database's
stream and the few host artifacts it needs, not the whole catalog. :func:`catalog_facts`
reads everything at once into :class:`MemoryFacts` (for tools that look at every stream,
such as the dependency graph, and as the reference the lazy provider is tested against).

Both build the same facts from the same rows: a run's artifacts of one storage group become
one :class:`BackupVersion` (id ``run-<id>``); other artifacts become :class:`HostArtifact`
(id ``artifact-<id>``). Failed runs are left out: they restore nothing. The logs still on a
server are not in the catalog; callers pass them in (the lab reports them).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace

from dr.catalog import Artifact, Catalog, Run
from dr.catalog.model import from_epoch
from dr.catalog.store import ARTIFACT_COLUMNS, RUN_COLUMNS, row_to_artifact, row_to_run
from dr.exchange.rules import LogRange
from dr.model.inventory import Inventory
from dr.planner.facts import (
    BackupVersion,
    DatabaseImage,
    HostArtifact,
    LiveLogs,
    MemoryFacts,
    Served,
    StepFacts,
)

STREAM_KINDS = frozenset({"database", "stm", "logs", "checkpoint"})

_COLUMNS = ", ".join(
    [f"r.{c.strip()}" for c in RUN_COLUMNS.split(",")]
    + [f"a.{c.strip()}" for c in ARTIFACT_COLUMNS.split(",")]
)
_RUN_WIDTH = len(RUN_COLUMNS.split(","))
_KINDS = ", ".join(f"'{k}'" for k in sorted(STREAM_KINDS))

#: One stream's artifacts, by ``artifacts_by_sg`` (storage_group, kind).
STREAM_SQL = (
    f"SELECT {_COLUMNS} FROM artifacts a JOIN runs r ON r.id = a.run_id "
    f"WHERE a.storage_group = ? AND a.kind IN ({_KINDS}) AND r.status != 'failed' "
    "ORDER BY a.run_id, a.id"
)
#: One host's artifacts of one kind, by ``artifacts_by_kind_host`` (kind, upper(host)).
HOST_SQL = (
    f"SELECT {_COLUMNS} FROM artifacts a JOIN runs r ON r.id = a.run_id "
    "WHERE a.kind = ? AND upper(a.host) = upper(?) AND r.status != 'failed'"
)
#: A stream-kind artifact without a storage group is a host artifact (as in the eager read).
_NO_STREAM = " AND (a.storage_group IS NULL OR a.storage_group = '')"
CIRCULAR_SQL = "SELECT run_id FROM stream_backups WHERE storage_group = ? AND circular_logging != 0"


class CatalogFacts:
    """Facts read from an open catalog as the planner asks for them.

    Each answer is one indexed query, kept for the next time the same stream or (host,
    kind) is asked. The catalog must stay open while the planner runs (``dr plan`` opens it
    around the plan). :meth:`digest` is the SHA-256 of the inventory and of the facts
    served so far, the same as :class:`MemoryFacts` gives for the same questions over the
    same catalog.
    """

    def __init__(
        self,
        catalog: Catalog,
        inventory: Inventory,
        live_logs: Iterable[LiveLogs] = (),
        steps: StepFacts | None = None,
    ) -> None:
        self.catalog = catalog
        self.inv = inventory
        self.live = {lv.stream: lv for lv in live_logs}
        self.steps = steps
        self._groups = _group_databases(inventory)
        self._backups: dict[str, list[BackupVersion]] = {}
        self._artifacts: dict[tuple[str, str], list[HostArtifact]] = {}
        self._served = Served()

    def inventory(self) -> Inventory:
        return self.inv

    def stream_backups(self, stream: str) -> Sequence[BackupVersion]:
        found = self._backups.get(stream)
        if found is None:
            found = self._backups[stream] = self._read_stream(stream)
        return self._served.backup(stream, found)

    def live_logs(self, stream: str) -> LiveLogs | None:
        return self._served.live_logs(stream, self.live.get(stream))

    def host_artifacts(self, host: str, kind: str) -> Sequence[HostArtifact]:
        key = (host.upper(), kind)
        found = self._artifacts.get(key)
        if found is None:
            found = self._artifacts[key] = self._read_host(host, kind)
        return self._served.host_artifacts(host, kind, found)

    def step_facts(self) -> StepFacts | None:
        return self.steps

    def digest(self) -> str:
        return self._served.digest(self.inv)

    def _read_stream(self, stream: str) -> list[BackupVersion]:
        if not stream:
            return []
        conn = self.catalog.conn
        circular = {int(r) for (r,) in conn.execute(CIRCULAR_SQL, (stream,))}
        return read_stream_versions(conn, stream, circular, self._groups.get(stream.lower(), ()))

    def _read_host(self, host: str, kind: str) -> list[HostArtifact]:
        sql = HOST_SQL + (_NO_STREAM if kind in STREAM_KINDS else "") + " ORDER BY a.run_id, a.id"
        wanted = host.upper()
        return [
            _host_artifact(run, a)
            for run, a in _pairs(self.catalog.conn.execute(sql, (kind, host)))
            if a.host.upper() == wanted
        ]


def _pairs(rows: Iterable[tuple]) -> list[tuple[Run, Artifact]]:  # type: ignore[type-arg]
    """Joined rows → (run, artifact); one Run object per run."""
    runs: dict[int, Run] = {}
    found = []
    for row in rows:
        run = runs.get(row[0])
        if run is None:
            run = runs[row[0]] = row_to_run(row[:_RUN_WIDTH])
        found.append((run, row_to_artifact(row[_RUN_WIDTH:])))
    return found


#: One stream's artifacts, only the columns a plain log backup's version needs (by
#: ``artifacts_by_sg``): most of a stream is its hourly log backups.
STREAM_BRIEF_SQL = (
    "SELECT a.run_id, r.ended, a.kind, a.database, a.name, a.size, a.log_prefix, a.first_gen, "
    "a.last_gen, a.log_signature, a.expired, a.backup_type "
    f"FROM artifacts a JOIN runs r ON r.id = a.run_id WHERE a.storage_group = ? "
    f"AND a.kind IN ({_KINDS}) AND r.status != 'failed' ORDER BY a.run_id, a.id"
)
#: The full rows of the stream's other runs (fulls, copies, media), one statement.
STREAM_RUNS_SQL = (
    f"SELECT {_COLUMNS} FROM artifacts a JOIN runs r ON r.id = a.run_id "
    f"WHERE a.storage_group = ? AND a.kind IN ({_KINDS}) "
    "AND a.run_id IN (SELECT value FROM json_each(?)) ORDER BY a.run_id, a.id"
)
_RUN, _ENDED, _KIND, _DB, _NAME, _SIZE = range(6)
_PREFIX, _FIRST, _LAST, _SIG, _EXPIRED, _TYPE = range(6, 12)


def read_stream_versions(
    conn: sqlite3.Connection, stream: str, circular: set[int], group: Sequence[str] = ()
) -> list[BackupVersion]:
    """:func:`stream_versions` for one stream read from the catalog, the same versions
    built with less work: a run whose one artifact is a plain log range becomes its version
    straight from a narrow row; the other runs (fulls, copies, media files) are read in full
    and go through :func:`stream_versions`."""
    brief = conn.execute(STREAM_BRIEF_SQL, (stream,)).fetchall()
    versions: list[BackupVersion] = []
    others: list[int] = []
    counts = Counter(row[_RUN] for row in brief)
    for row in brief:
        version = _plain_logs(stream, row) if counts[row[_RUN]] == 1 else None
        if version is not None:
            versions.append(version)
        elif not others or others[-1] != row[_RUN]:
            others.append(row[_RUN])
    if others:
        full = conn.execute(STREAM_RUNS_SQL, (stream, json.dumps(others))).fetchall()
        versions += stream_versions(stream, _pairs(full), set(), group)
    versions = [replace(v, circular_logging=True) if _run_id(v) in circular else v
                for v in versions]  # fmt: skip
    versions.sort(key=lambda v: (v.at, v.id))
    return versions


def _run_id(version: BackupVersion) -> int:
    return int(version.id[4:])  # "run-<id>"


def _plain_logs(stream: str, row: tuple) -> BackupVersion | None:  # type: ignore[type-arg]
    """The version of a run whose one artifact is a log range (not a media file), as
    :func:`_version` makes it; None for anything else."""
    if row[_KIND] != "logs" or row[_FIRST] is None or row[_LAST] is None:
        return None
    if row[_DB] is None and row[_NAME].lower().endswith(".bkf"):
        return None  # a media file: its own rules
    return BackupVersion(
        id=f"run-{row[_RUN]}",
        stream=stream,
        backup_type=row[_TYPE],
        at=from_epoch(row[_ENDED]),
        logs=LogRange(row[_PREFIX] or "", row[_FIRST], row[_LAST], row[_SIG]),
        log_size_bytes=row[_SIZE],
        expired=bool(row[_EXPIRED]),
    )


def catalog_facts(
    catalog: Catalog,
    inventory: Inventory,
    live_logs: Iterable[LiveLogs] = (),
    steps: StepFacts | None = None,
) -> MemoryFacts:
    """Read the whole catalog once and hold its facts in memory (with the step library's
    facts, ``steps``, which the caller loaded): for tools that look at every stream. A plan
    of a few streams asks :class:`CatalogFacts` instead."""
    runs = {r.id: r for r in catalog.runs() if r.status != "failed"}
    streams: dict[str, list[tuple[Run, Artifact]]] = defaultdict(list)
    others: list[HostArtifact] = []
    for artifact in catalog.artifacts(include_expired=True):
        run = runs.get(artifact.run_id)
        if run is None:
            continue
        if artifact.kind in STREAM_KINDS and artifact.storage_group:
            streams[artifact.storage_group].append((run, artifact))
        else:
            others.append(_host_artifact(run, artifact))
    circular = _circular_logging(catalog)
    groups = _group_databases(inventory)
    backups = {
        stream: stream_versions(
            stream,
            rows,
            {run_id for run_id, sg in circular if sg == stream},
            groups.get(stream.lower(), ()),
        )
        for stream, rows in streams.items()
    }
    live = {lv.stream: lv for lv in live_logs}
    return MemoryFacts(inventory, backups, live, others, steps)


def stream_versions(
    stream: str,
    rows: Iterable[tuple[Run, Artifact]],
    circular: set[int],
    group: Sequence[str] = (),
) -> list[BackupVersion]:
    """One stream's backups from its (run, artifact) rows in (run, artifact id) order: one
    version per run, marked when the run was recorded with circular logging on, oldest
    first. Both providers build their versions here."""
    by_run: dict[int, tuple[Run, list[Artifact]]] = {}
    for run, artifact in rows:
        by_run.setdefault(run.id, (run, []))[1].append(artifact)
    versions = []
    for run, artifacts in by_run.values():
        version = _version(run, stream, artifacts, group)
        if run.id in circular:
            version = replace(version, circular_logging=True)
        versions.append(version)
    versions.sort(key=lambda v: (v.at, v.id))
    return versions


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
        **_native(a),
    )


_WBADMIN = re.compile(r"wbadmin version (?P<id>\d{2}/\d{2}/\d{4}-\d{2}:\d{2})(?: on (?P<on>.*))?$")


def _native(a: Artifact) -> dict[str, str | None]:
    """wbadmin's version identifier and volume, as dr's backup path keeps them (``state``)
    or the wbadmin importer does (``location``): ``wbadmin version 11/02/2026-06:00 on
    Fixed Disk labeled D:`` → ``11/02/2026-06:00``, ``D:``."""
    for text in (a.state, a.location):
        match = _WBADMIN.match(text or "")
        if match:
            volume = re.search(r"([A-Za-z]:|\\\\\S+)\)?\s*$", match.group("on") or "")
            return {"native_id": match.group("id"),
                    "native_target": volume.group(1).upper() if volume else None}  # fmt: skip
    return {}


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
