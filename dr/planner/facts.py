"""The facts the planner reads, and the provider interface that supplies them.

The planner core does no I/O (the resolvelib pattern): everything it knows about the estate
and its backups arrives through a :class:`FactsProvider`. Tests use :class:`MemoryFacts`
(built from plain data, or a recorded JSON file); the CLI uses
:class:`dr.planner.catalog_facts.CatalogFacts`, which adapts the SQLite catalog.

Facts are frozen values. Times are timezone-aware UTC. A *stream* is one transaction-log
stream, keyed ``"SERVER/SG"``: a storage group on 2000/2003/2007, a database (in a storage
group of its own name) on 2010+.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from dr.exchange.rules import BackupType, LogRange
from dr.model.inventory import Inventory

HostKind = Literal[
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
]


@dataclass(frozen=True, slots=True)
class DatabaseImage:
    """One database inside a backup: its size and its header facts (``eseutil /mh``)."""

    database: str  # "SERVER/SG/DB"
    size_bytes: int
    stm_size_bytes: int = 0
    log_required: tuple[int, int] | None = None  # (lo, hi); (0, 0) = Clean Shutdown
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class BackupVersion:
    """One backup of one log stream: a full / copy (database + logs) or a log backup."""

    id: str
    stream: str  # "SERVER/SG"
    backup_type: BackupType
    at: datetime  # the run's end
    logs: LogRange | None
    databases: tuple[DatabaseImage, ...] = ()
    log_size_bytes: int = 0
    circular_logging: bool = False
    expired: bool = False
    offline: bool = False  # an offline file copy of .edb/.stm (Clean Shutdown, no logs)
    media: str = ""  # an NTBackup media file, as fetched: "First-Storage-Group/backup.bkf"

    def image(self, database: str) -> DatabaseImage | None:
        for image in self.databases:
            if image.database == database:
                return image
        return None

    @property
    def size_bytes(self) -> int:
        return self.log_size_bytes + sum(d.size_bytes + d.stm_size_bytes for d in self.databases)

    @property
    def top_gen(self) -> int | None:
        """The last generation this backup brings (its logs, or its header's Log Required)."""
        tops = [self.logs.last] if self.logs else []
        tops += [d.log_required[1] for d in self.databases if d.log_required]
        return max(tops) if tops else None


@dataclass(frozen=True, slots=True)
class LiveLogs:
    """The logs still on a server for one stream (supplied by the caller or the lab).

    ``ends`` optionally gives the time each generation ``first..last`` was closed; without
    it only ``at`` (when ``last`` was closed) is a known point in time.

    ``current`` is the generation the open log ``Enn.log`` holds (the newest, last of
    ``logs``): it has no numbered file, and a restore copies ``Enn.log`` itself.

    ``unusable_from`` is the first generation in the folder that cannot be replayed (another
    log signature, a mismatched generation, damage: ``eseutil /ml`` says which, and
    ``unusable_reason`` says why). Replay stops before it; the generations from it on are
    listed but never used, and ``at`` is then no known point of the usable ones.
    """

    stream: str
    logs: LogRange
    at: datetime
    ends: tuple[datetime, ...] = ()
    size_bytes: int = 0
    unusable_from: int | None = None
    unusable_reason: str | None = None
    current: int | None = None  # the generation held in the current log, Enn.log (not numbered)


@dataclass(frozen=True, slots=True)
class HostArtifact:
    """A backup that is not of a log stream: system state, metabase, KMS, CA, mail level, ..."""

    id: str
    kind: str
    host: str
    at: datetime
    size_bytes: int = 0
    expired: bool = False
    mailbox: str | None = None
    item_count: int | None = None
    database: str | None = None
    name: str | None = None  # mailbox-counts: the mailbox GUID
    native_id: str | None = None  # the backup tool's own identifier (wbadmin's version)
    native_target: str | None = None  # where that tool finds it (wbadmin: the volume, D:)


@dataclass(frozen=True, slots=True)
class StepFacts:
    """What the planner needs from the step library: which kinds it has, which are
    destructive (a second person approves them first, E7).

    The step library (``engine.runbook.Library``, loaded by the caller from ``runbooks/``)
    is the one source of truth; :meth:`of_library` reads a loaded library, so the planner
    itself never reads a file.
    """

    kinds: frozenset[str]
    destructive: frozenset[str]
    #: kinds that take the Exchange install path (their 2000/2003 variants run eseutil from
    #: its bin folder, which is not on the PATH there)
    install_path: frozenset[str] = frozenset()

    @classmethod
    def of(cls, flags: Mapping[str, bool], install_path: Iterable[str] = ()) -> StepFacts:
        """From ``{kind: destructive}``."""
        return cls(
            frozenset(flags), frozenset(k for k, d in flags.items() if d), frozenset(install_path)
        )

    @classmethod
    def of_library(cls, library: Any) -> StepFacts:
        """From a loaded ``engine.runbook.Library``: a kind is destructive when any of its
        variants is (``StepKind.destructive``); it takes the install path when it declares
        the parameter ``install_path``."""
        kinds = [library.kind(name) for name in library.kinds()]
        return cls.of(
            {k.name: k.destructive for k in kinds},
            [k.name for k in kinds if "install_path" in k.params],
        )


class FactsProvider(Protocol):
    """Where the planner's facts come from (inventory and catalog).

    Every method is cheap and side-effect free from the planner's point of view; the
    planner may call them many times. Sequences are oldest first.
    """

    def inventory(self) -> Inventory: ...

    def stream_backups(self, stream: str) -> Sequence[BackupVersion]:
        """Every recorded backup of the stream, expired ones included (marked)."""
        ...

    def live_logs(self, stream: str) -> LiveLogs | None: ...

    def host_artifacts(self, host: str, kind: str) -> Sequence[HostArtifact]:
        """Every recorded artifact of that kind for that host, expired ones included."""
        ...

    def digest(self) -> str:
        """SHA-256 of the inventory and of the facts this provider has served so far
        (recorded as they were handed out): providers that served the same facts give the
        same digest, and none has to read the whole catalog to give it."""
        ...

    def step_facts(self) -> StepFacts | None:
        """The step library's facts the caller loaded (None: none were given)."""
        ...


class PlanReporter:
    """Observability hooks with no-op defaults; subclass to trace what the planner decides."""

    def chain_chosen(self, stream: str, versions: Sequence[str], point: datetime) -> None:
        """A stream's backups were chosen (ids in restore order) reaching ``point``."""

    def refused(self, stream: str, reason: str) -> None:
        """A stream cannot reach the target; the planner is about to raise."""


class Served:
    """The facts a provider handed the planner, as it handed them: what :meth:`digest`
    covers. A plan depends on what it read, not on the rest of the catalog, so the digest
    is the same whichever provider served the same facts, and no provider has to read
    everything to give it."""

    def __init__(self) -> None:
        self.backups: dict[str, list[BackupVersion]] = {}
        self.live: dict[str, LiveLogs | None] = {}
        self.artifacts: dict[str, list[HostArtifact]] = {}

    def backup(self, stream: str, found: Sequence[BackupVersion]) -> Sequence[BackupVersion]:
        self.backups[stream] = list(found)
        return found

    def live_logs(self, stream: str, found: LiveLogs | None) -> LiveLogs | None:
        self.live[stream] = found
        return found

    def host_artifacts(
        self, host: str, kind: str, found: Sequence[HostArtifact]
    ) -> Sequence[HostArtifact]:
        self.artifacts[f"{host.upper()}|{kind}"] = list(found)
        return found

    def digest(self, inv: Inventory) -> str:
        return facts_digest(inv, self.backups, self.live, self.artifacts)


@dataclass
class MemoryFacts:
    """Facts held in memory: for tests, benchmarks, recorded fixtures and tools that look
    at every stream. :meth:`digest` covers the inventory and the facts served so far."""

    inv: Inventory
    backups: dict[str, list[BackupVersion]] = field(default_factory=dict)
    live: dict[str, LiveLogs] = field(default_factory=dict)
    artifacts: list[HostArtifact] = field(default_factory=list)
    steps: StepFacts | None = None
    _served: Served = field(default_factory=Served, init=False, repr=False, compare=False)

    def inventory(self) -> Inventory:
        return self.inv

    def stream_backups(self, stream: str) -> Sequence[BackupVersion]:
        return self._served.backup(stream, self.backups.get(stream, []))

    def live_logs(self, stream: str) -> LiveLogs | None:
        return self._served.live_logs(stream, self.live.get(stream))

    def host_artifacts(self, host: str, kind: str) -> Sequence[HostArtifact]:
        wanted = host.upper()
        found = [a for a in self.artifacts if a.kind == kind and a.host.upper() == wanted]
        return self._served.host_artifacts(host, kind, found)

    def step_facts(self) -> StepFacts | None:
        return self.steps

    def digest(self) -> str:
        return self._served.digest(self.inv)


def facts_digest(
    inv: Inventory,
    backups: Mapping[str, Sequence[BackupVersion]],
    live: Mapping[str, LiveLogs | None],
    artifacts: Mapping[str, Sequence[HostArtifact]],
) -> str:
    """A stable SHA-256 of the inventory and the facts given: backups by stream, live logs
    by stream (None: asked, none there), host artifacts by ``HOST|kind`` (the order the
    questions came in does not matter)."""
    body = {
        "inventory": inv.model_dump(mode="json"),
        "backups": {k: [_plain(b) for b in v] for k, v in sorted(backups.items())},
        "live": {k: _plain(v) if v else None for k, v in sorted(live.items())},
        "artifacts": {k: [_plain(a) for a in v] for k, v in sorted(artifacts.items())},
    }
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> dict[str, Any]:
    return asdict(value)


# --------------------------------------------------------------------------- recorded facts


def parse_time(value: str) -> datetime:
    """ISO 8601; UTC is assumed when no offset is given."""
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _log_range(data: dict[str, Any] | None) -> LogRange | None:
    if not data:
        return None
    return LogRange(data["prefix"], int(data["first"]), int(data["last"]), data.get("signature"))


def _image(data: dict[str, Any]) -> DatabaseImage:
    required = data.get("log_required")
    return DatabaseImage(
        database=data["database"],
        size_bytes=int(data.get("size_bytes", 0)),
        stm_size_bytes=int(data.get("stm_size_bytes", 0)),
        log_required=(int(required[0]), int(required[1])) if required else None,
        signature=data.get("signature"),
    )


def version_from_dict(data: dict[str, Any]) -> BackupVersion:
    """A backup version from recorded JSON (the shape ``asdict`` writes)."""
    return BackupVersion(
        id=str(data["id"]),
        stream=data["stream"],
        backup_type=data["backup_type"],
        at=parse_time(data["at"]),
        logs=_log_range(data.get("logs")),
        databases=tuple(_image(d) for d in data.get("databases", ())),
        log_size_bytes=int(data.get("log_size_bytes", 0)),
        circular_logging=bool(data.get("circular_logging", False)),
        expired=bool(data.get("expired", False)),
        offline=bool(data.get("offline", False)),
        media=str(data.get("media", "")),
    )


def live_from_dict(data: dict[str, Any]) -> LiveLogs:
    logs = _log_range(data["logs"])
    assert logs is not None
    return LiveLogs(
        stream=data["stream"],
        logs=logs,
        at=parse_time(data["at"]),
        ends=tuple(parse_time(t) for t in data.get("ends", ())),
        size_bytes=int(data.get("size_bytes", 0)),
        unusable_from=int(data["unusable_from"]) if data.get("unusable_from") else None,
        unusable_reason=data.get("unusable_reason"),
    )


def artifact_from_dict(data: dict[str, Any]) -> HostArtifact:
    return HostArtifact(
        id=str(data["id"]),
        kind=data["kind"],
        host=data["host"],
        at=parse_time(data["at"]),
        size_bytes=int(data.get("size_bytes", 0)),
        expired=bool(data.get("expired", False)),
        mailbox=data.get("mailbox"),
        item_count=data.get("item_count"),
        database=data.get("database"),
        name=data.get("name"),
        native_id=data.get("native_id"),
        native_target=data.get("native_target"),
    )


def memory_facts_from_dict(
    inv: Inventory, data: dict[str, Any], steps: StepFacts | None = None
) -> MemoryFacts:
    """Facts recorded as JSON: ``{"backups": [...], "live_logs": [...], "artifacts": [...]}``
    (``steps``: the step library's facts, which a recorded file does not hold)."""
    backups: dict[str, list[BackupVersion]] = {}
    for raw in data.get("backups", []):
        version = version_from_dict(raw)
        backups.setdefault(version.stream, []).append(version)
    for versions in backups.values():
        versions.sort(key=lambda v: (v.at, v.id))
    live = {lv.stream: lv for lv in (live_from_dict(x) for x in data.get("live_logs", []))}
    artifacts = [artifact_from_dict(x) for x in data.get("artifacts", [])]
    return MemoryFacts(inv, backups, live, artifacts, steps)
