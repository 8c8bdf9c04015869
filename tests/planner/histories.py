"""Building backup histories the way Exchange makes them, for planner tests.

A :class:`StreamSim` keeps a log stream's state (the last closed generation, the first one
still on disk) and records backups with the effects of research §1.3: a full or an
incremental truncates the logs on disk, a copy and a differential do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import strategies as st

from dr.exchange.rules import BackupType, LogRange
from dr.model.inventory import Inventory
from dr.model.load import load_inventory
from dr.planner.facts import (
    BackupVersion,
    DatabaseImage,
    HostArtifact,
    LiveLogs,
    MemoryFacts,
    StepFacts,
)
from engine.runbook import Library

ESTATE = Path(__file__).with_name("estate.yaml")
T0 = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)
GB = 1_000_000_000

_INVENTORY: Inventory | None = None


def estate() -> Inventory:
    global _INVENTORY
    if _INVENTORY is None:
        _INVENTORY = load_inventory(ESTATE)
    return _INVENTORY


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@dataclass
class StreamSim:
    """One log stream: call ``logs`` to let time pass, then take backups."""

    stream: str
    prefix: str
    databases: tuple[str, ...]
    signature: str = "sig-1"
    now: datetime = T0
    gen: int = 10  # last closed generation
    on_disk: int = 1  # first generation still on the server
    versions: list[BackupVersion] = field(default_factory=list)
    circular: bool = False
    _n: int = 0

    def logs(self, hours: float = 1.0, count: int = 10) -> StreamSim:
        self.now += timedelta(hours=hours)
        self.gen += count
        if self.circular:
            self.on_disk = self.gen
        return self

    def backup(self, backup_type: BackupType, *, vid: str | None = None) -> BackupVersion:
        self._n += 1
        logs = LogRange(self.prefix, self.on_disk, self.gen, self.signature)
        images: tuple[DatabaseImage, ...] = ()
        if backup_type in ("full", "copy"):
            images = tuple(
                DatabaseImage(db, 10 * GB, GB, (self.on_disk, self.gen), "db-sig")
                for db in self.databases
            )
        version = BackupVersion(
            id=vid or f"{self.prefix}-{self._n}-{backup_type}",
            stream=self.stream,
            backup_type=backup_type,
            at=self.now,
            logs=logs,
            databases=images,
            log_size_bytes=(self.gen - self.on_disk + 1) * 1_048_576,
            circular_logging=self.circular,
        )
        self.versions.append(version)
        if backup_type in ("full", "incremental"):
            self.on_disk = self.gen + 1
        return version

    def live(self) -> LiveLogs:
        return LiveLogs(
            self.stream, LogRange(self.prefix, self.on_disk, self.gen, self.signature), self.now
        )

    def expire(self, vid: str) -> None:
        self.versions = [replace(v, expired=True) if v.id == vid else v for v in self.versions]

    def drop(self, vid: str) -> None:
        self.versions = [v for v in self.versions if v.id != vid]


def legacy_sim(sg: str = "First Storage Group", prefix: str = "E00") -> StreamSim:
    dbs = {
        "First Storage Group": ("Mailbox Store (EX2003)", "Public Folder Store (EX2003)"),
        "Second Storage Group": ("Sales Store",),
    }[sg]
    return StreamSim(f"EX2003/{sg}", prefix, tuple(f"EX2003/{sg}/{d}" for d in dbs))


def modern_sim(db: str = "DB01", prefix: str = "E00") -> StreamSim:
    return StreamSim(f"EX2016/{db}", prefix, (f"EX2016/{db}/{db}",))


_STEPS: StepFacts | None = None


def steps() -> StepFacts:
    """The step library's facts, as the CLI hands them to the planner."""
    global _STEPS
    if _STEPS is None:
        _STEPS = StepFacts.of_library(Library.load())
    return _STEPS


def facts(
    *sims: StreamSim, live: bool = True, artifacts: list[HostArtifact] | None = None
) -> MemoryFacts:
    return MemoryFacts(
        estate(),
        {s.stream: list(s.versions) for s in sims},
        {s.stream: s.live() for s in sims} if live else {},
        list(artifacts or []),
        steps(),
    )


def host_artifact(kind: str, host: str, hours: float, **kw: object) -> HostArtifact:
    return HostArtifact(
        id=f"{kind}-{host}-{hours:g}", kind=kind, host=host, at=at(hours), size_bytes=GB, **kw
    )  # type: ignore[arg-type]


def mailbox_counts(
    database: str, hours: float, rows: dict[str, tuple[str, int]]
) -> list[HostArtifact]:
    """What a backup's ``mailbox-counts`` step records: GUID → (display name, items)."""
    host = database.split("/", 1)[0]
    return [
        HostArtifact(id=f"counts-{database}-{guid}-{hours:g}", kind="mailbox-counts", host=host,
                     at=at(hours), name=guid, mailbox=name, item_count=items, database=database)
        for guid, (name, items) in rows.items()
    ]  # fmt: skip


def estate_artifacts(hours: float = 0.5) -> list[HostArtifact]:
    """System state for every server, the metabase, KMS, CA: what a server rebuild needs."""
    found = [host_artifact("system-state", h, hours) for h in ("DC1", "EX2003", "EX2016", "KMS1")]
    found.append(host_artifact(  # wbadmin's own identifier, as the catalog keeps it
        "system-state", "DC2016", hours, native_id=at(hours).strftime("%m/%d/%Y-%H:%M"),
        native_target="D:",
    ))  # fmt: skip
    found += [
        host_artifact("iis-metabase", "EX2003", hours),
        host_artifact("kms-database", "KMS1", hours),
        host_artifact("ca-database", "DC1", hours),
        host_artifact("ca-certificates", "DC1", hours),
    ]
    return found


def estate_facts(*, live: bool = True, offline: bool = False) -> MemoryFacts:
    """The example estate with a day of backups: a full, logs, an incremental, more logs on
    every stream, mail-level items on both servers; ``offline`` adds an offline copy of the
    first EX2003 stream's databases at 1.7 h."""
    sims = [
        legacy_sim(),
        legacy_sim("Second Storage Group", "E01"),
        modern_sim(),
        modern_sim("DB02", "E01"),
    ]
    for s in sims:
        s.backup("full")
        s.logs()
        s.backup("incremental")
        s.logs(1, 5)
    if offline:
        first = sims[0]
        first.versions.append(
            BackupVersion(
                "OFF",
                first.stream,
                "copy",
                at(1.7),
                None,
                first.versions[0].databases,
                offline=True,
            )
        )
    items = [
        host_artifact("mailbox-items", "EX2003", 0.5, mailbox="administrator", item_count=1400),
        host_artifact("mailbox-items", "EX2016", 0.5, mailbox="finance", item_count=61000),
        *mailbox_counts(
            "EX2003/First Storage Group/Mailbox Store (EX2003)",
            0.5,
            {"a1": ("Administrator", 1400), "a2": ("Jan Smith", 18000)},
        ),
        *mailbox_counts(
            "EX2016/DB02/DB02", 0.5, {"f1": ("Finance", 61000), "h1": ("Helpdesk", 22)}
        ),
    ]
    return facts(*sims, live=live, artifacts=estate_artifacts() + items)


_KINDS = ("full", "copy", "incremental", "incremental", "differential")


@st.composite
def admitted_histories(draw: st.DrawFn, hours_apart: float = 1.0) -> list[BackupVersion]:
    """Histories the catalog admits: a full or incremental truncates, a differential holds
    every log since the last full (§1.3), and an incremental after a differential may start
    where the differential ends (its earlier logs are in the differential). Backup ``n`` is
    taken at ``at(n * hours_apart)``."""
    gen, on_disk = 10, 1
    full_end: int | None = None
    diff_end: int | None = None
    found: list[BackupVersion] = []
    kinds = draw(st.lists(st.sampled_from(_KINDS), min_size=1, max_size=14))
    for n, kind in enumerate(["full", *kinds]):
        gen += draw(st.integers(1, 5))
        first = on_disk
        if kind == "differential" and full_end is not None:
            first = full_end + 1
        if kind == "incremental" and diff_end is not None and draw(st.booleans()):
            first = max(on_disk, diff_end + 1)
        images: tuple[DatabaseImage, ...] = ()
        if kind in ("full", "copy"):
            images = (DatabaseImage("EX2003/SG/DB", 1, 0, (on_disk, gen)),)
        found.append(
            BackupVersion(
                f"{n}-{kind}",
                "EX2003/SG",
                kind,  # type: ignore[arg-type]
                at(n * hours_apart),
                LogRange("E00", first, gen, "s"),
                images,
            )
        )
        if kind in ("full", "incremental"):
            on_disk, diff_end = gen + 1, None
        if kind == "full":
            full_end = gen
        if kind == "differential":
            diff_end = gen
    return found
