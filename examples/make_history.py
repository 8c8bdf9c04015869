"""Generate examples/history.json: a fortnight of backup runs for examples/estate.yaml.

Deterministic (a fixed seed and fixed dates), so the file only changes when this script
does. Run it from the repository root:

    .venv/bin/python examples/make_history.py > examples/history.json

What it writes (documented in docs/catalog.md):
- Exchange 2003 (EX2003): a full of both storage groups every night at 22:00, hourly
  incrementals, a differential on Wednesdays at 12:00;
- Exchange 2016 (EX2016): a full of DB01 and DB02 every night at 23:00, incrementals every
  15 minutes, a differential on Wednesdays at 13:00, and one copy backup of DB02 for a test;
- system state nightly for every server, weekly system images, the CA, the KMS database,
  the IIS metabase and two mail-level sets;
- ONE deliberate gap: on 2024-05-14 someone deleted logs of EX2003's Second Storage Group
  (E01) by hand to free disk space. The 14:00 incremental fails ("missing log file"), an
  operator takes a full at 14:35 and the hourly incrementals resume at 15:00. Generations
  between the 13:00 incremental and that full exist nowhere, so a restore of the Sales
  Store to a point between 13:00 and 14:35 local time is refused by the planner.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Europe/Amsterdam")
FIRST_DAY = date(2024, 5, 6)  # a Monday
DAYS = 14
GAP_DAY = date(2024, 5, 14)
GIB = 1024**3
MIB = 1024**2
rng = random.Random(20240506)


@dataclass
class Stream:
    """One log stream: its generation counter and signature."""

    sg: str
    prefix: str
    log_mib: int
    per_hour_day: int
    per_hour_night: int
    signature: str
    gen: int
    last_truncated: int = 0
    databases: list[tuple[str, str, int, bool]] = field(default_factory=list)  # db, file, GiB, stm

    def advance(self, until: datetime, since: datetime) -> None:
        hours = (until - since).total_seconds() / 3600
        busy = 8 <= until.astimezone(LOCAL).hour < 19
        rate = self.per_hour_day if busy else self.per_hour_night
        self.gen += max(1, round(rate * hours * rng.uniform(0.7, 1.3)))


def local(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=LOCAL).astimezone(UTC)


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def run(set_name, host, kind, start, minutes, artifacts, status="success", error=None):  # type: ignore[no-untyped-def]
    end = start + timedelta(minutes=minutes, seconds=rng.randint(5, 55))
    return {
        "set": set_name,
        "host": host,
        "type": kind,
        "start": stamp(start),
        "end": stamp(end),
        "status": status,
        "error": error,
        "source": "ntbackup" if host == "EX2003" else "windows-server-backup",
        "artifacts": artifacts,
    }


def artifact(kind: str, name: str, size: int, ratio: float, **extra: object) -> dict:  # type: ignore[type-arg]
    stored = int(size * ratio)
    sha = digest(kind, name, size, *extra.values())
    return {
        "kind": kind,
        "name": name,
        "size": size,
        "stored_size": stored,
        "sha256": sha,
        # taken by other tools (NTBackup, Windows Server Backup): their files sit on the
        # backup share, not in dr's repository
        "location": f"\\\\BACKUP01\\Archive\\{sha[:16]}\\{name.rsplit(chr(92), 1)[-1]}",
        **extra,
    }


def logs(s: Stream, first: int, last: int) -> dict:  # type: ignore[type-arg]
    size = (last - first + 1) * s.log_mib * MIB
    return artifact(
        "logs",
        f"{s.prefix} logs",
        size,
        rng.uniform(0.18, 0.25),
        storage_group=s.sg,
        log_prefix=s.prefix,
        first_gen=first,
        last_gen=last,
        log_signature=s.signature,
    )


def full_artifacts(s: Stream, first: int) -> list[dict]:  # type: ignore[type-arg]
    items = []
    for db, edb, gib, stm in s.databases:
        size = int(gib * GIB * rng.uniform(0.995, 1.005))
        items.append(
            artifact(
                "database",
                edb,
                size,
                rng.uniform(0.42, 0.48),
                storage_group=s.sg,
                database=db,
                state="Dirty Shutdown",
                log_required_first=first,
                log_required_last=s.gen,
                db_signature=digest("db", db)[:24],
            )
        )
        if stm:
            items.append(
                artifact(
                    "stm",
                    edb.replace(".edb", ".stm"),
                    int(size * 0.3),
                    rng.uniform(0.55, 0.6),
                    storage_group=s.sg,
                    database=db,
                )
            )
    items.append(logs(s, first, s.gen))
    items.append(artifact("checkpoint", f"{s.prefix}.chk", 8192, 0.1, storage_group=s.sg))
    return items


class Exchange:
    """The log streams of one Exchange set and the chain state of each."""

    def __init__(self, set_name: str, host: str, streams: list[Stream]) -> None:
        self.set_name, self.host, self.streams = set_name, host, streams
        self.clock = local(FIRST_DAY, 0, 0)
        self.out: list[dict] = []  # type: ignore[type-arg]

    def tick(self, at: datetime) -> None:
        for s in self.streams:
            s.advance(at, self.clock)
        self.clock = at

    def full(
        self, at: datetime, minutes: int, streams: list[Stream] | None = None, kind: str = "full"
    ) -> None:
        self.tick(at)
        items = []
        for s in streams or self.streams:
            items += full_artifacts(s, s.last_truncated + 1)
            if kind == "full":
                s.last_truncated = s.gen
        self.out.append(run(self.set_name, self.host, kind, at, minutes, items))

    def log_backup(self, at: datetime, kind: str, since_full: dict[str, int]) -> None:
        self.tick(at)
        items = []
        for s in self.streams:
            first = since_full[s.sg] + 1 if kind == "differential" else s.last_truncated + 1
            items.append(logs(s, first, s.gen))
            if kind == "incremental":
                s.last_truncated = s.gen
        self.out.append(run(self.set_name, self.host, kind, at, 2, items))


def ex2003() -> list[dict]:  # type: ignore[type-arg]
    first = Stream(
        "First Storage Group",
        "E00",
        5,
        14,
        2,
        "E00-5b1e0c7a",
        0x2A10,
        databases=[
            ("Mailbox Store (EX2003)", "priv1.edb", 62, True),
            ("Public Folder Store (EX2003)", "pub1.edb", 11, True),
        ],
    )
    second = Stream(
        "Second Storage Group",
        "E01",
        5,
        7,
        1,
        "E01-93d4f2b8",
        0x1C44,
        databases=[("Sales Store", "Sales Store.edb", 38, True)],
    )
    ex = Exchange("ex2003-exchange", "EX2003", [first, second])
    ex.full(local(FIRST_DAY - timedelta(days=1), 22, 0), 50)
    fulls = {s.sg: s.gen for s in ex.streams}
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        for hour in range(24):
            at = local(day, hour, 0)
            if hour == 22:
                ex.full(at, 50)
                fulls = {s.sg: s.gen for s in ex.streams}
            elif day == GAP_DAY and hour == 14:
                gap(ex, second, day)
                fulls = {s.sg: s.gen for s in ex.streams}
            elif day.weekday() == 2 and hour == 12:
                ex.log_backup(at, "differential", fulls)
            else:
                ex.log_backup(at, "incremental", fulls)
    return ex.out


def gap(ex: Exchange, lost: Stream, day: date) -> None:
    """Logs deleted by hand: the incremental fails, a full restarts the chain."""
    ex.tick(local(day, 13, 40))
    missing = lost.last_truncated + 1
    lost.last_truncated = lost.gen  # the deleted files are gone for good
    error = (
        f"log sequence broken: {lost.prefix}{missing:05X}.log is missing from "
        f"F:\\Exchsrvr\\Logs\\{lost.sg} (deleted by hand to free disk space)"
    )
    ex.out.append(
        run(ex.set_name, ex.host, "incremental", local(day, 14, 0), 1, [], "failed", error)
    )
    ex.full(local(day, 14, 35), 20)


def ex2016() -> list[dict]:  # type: ignore[type-arg]
    db01 = Stream(
        "DB01",
        "E00",
        1,
        70,
        6,
        "DB01-0f6a9c21",
        0x3B2F0,
        databases=[("DB01", "DB01.edb", 210, False)],
    )
    db02 = Stream(
        "DB02",
        "E01",
        1,
        45,
        4,
        "DB02-7e21b5d0",
        0x21A88,
        databases=[("DB02", "DB02.edb", 145, False)],
    )
    ex = Exchange("ex2016-exchange", "EX2016", [db01, db02])
    ex.full(local(FIRST_DAY - timedelta(days=1), 23, 0), 40)
    fulls = {s.sg: s.gen for s in ex.streams}
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        for quarter in range(96):
            at = local(day, quarter // 4, (quarter % 4) * 15)
            if quarter == 92:
                ex.full(at, 40)
                fulls = {s.sg: s.gen for s in ex.streams}
            elif offset == 6 and quarter == 42:
                ex.full(at, 12, [db02], kind="copy")  # 10:30, a copy for a restore test
            elif day.weekday() == 2 and quarter == 52:
                ex.log_backup(at, "differential", fulls)
            elif quarter < 92 or quarter > 94:
                ex.log_backup(at, "incremental", fulls)
    return ex.out


def delta_chain(
    set_name: str,
    host: str,
    kind: str,
    item: str,
    base: int,
    hh: int,
    mm: int,
    every: int = 1,
    diff_weekday: int | None = None,
    wbadmin_on: str | None = None,
    **extra: object,
) -> list[dict]:
    """Vendor-style in-file delta: a full, then [I] (and [D] on ``diff_weekday``).

    ``wbadmin_on``: Windows Server Backup (2008+) took it onto that volume; the catalog keeps
    wbadmin's own version identifier (the backup's start, UTC), which is all
    ``wbadmin start systemstaterecovery -version:`` takes."""
    out = []
    for offset in range(-1, DAYS, every):
        day = FIRST_DAY + timedelta(days=offset)
        if offset == -1:
            backup_type, size, ratio = "full", base, rng.uniform(0.36, 0.40)
        elif diff_weekday is not None and day.weekday() == diff_weekday:
            backup_type, size, ratio = "differential", int(base * rng.uniform(0.07, 0.09)), 0.36
        else:
            backup_type, size, ratio = "incremental", int(base * rng.uniform(0.015, 0.04)), 0.24
        items = [artifact(kind, item, size, ratio, **extra)]
        start = local(day, hh, mm)
        if wbadmin_on:
            items[0]["location"] = f"wbadmin version {start:%m/%d/%Y-%H:%M} on {wbadmin_on}"
        out.append(run(set_name, host, backup_type, start, 12, items))
    return out


def others() -> list[dict]:  # type: ignore[type-arg]
    out = []
    for set_name, host, hh, mm, mib, wbadmin_on in (
        ("dc1-system-state", "DC1", 1, 0, 580, None),
        ("dc2016-system-state", "DC2016", 1, 15, 9200, "D:"),
        ("ex2003-system-state", "EX2003", 0, 30, 640, None),
        ("ex2016-system-state", "EX2016", 0, 15, 11800, "T:"),
        ("kms1-system-state", "KMS1", 0, 45, 410, None),
    ):
        out += delta_chain(
            set_name, host, "system-state", "SystemState.bkf", mib * MIB, hh, mm, diff_weekday=4,
            wbadmin_on=wbadmin_on,
        )  # fmt: skip
    for set_name, host, weekday_hh, gib in (
        ("dc1-system", "DC1", 2, 14),
        ("ex2003-system", "EX2003", 4, 21),
        ("ex2016-system", "EX2016", 3, 64),
    ):
        out += delta_chain(
            set_name, host, "system-image", "C-drive.vhd", gib * GIB, weekday_hh, 0, every=7
        )
    out += delta_chain("dc1-ca", "DC1", "ca-database", "CA database", 380 * MIB, 1, 30)
    out += delta_chain("dc1-ca", "DC1", "ca-certificates", "CA certificates", 48 * 1024, 1, 31)
    out += delta_chain("kms1-kms", "KMS1", "kms-database", "KMS database", 96 * MIB, 2, 30)
    out += delta_chain(
        "ex2003-iis-metabase", "EX2003", "iis-metabase", "MetaBase.xml", 3 * MIB, 22, 0
    )
    for set_name, host, hh, mm, boxes in (
        (
            "ex2003-mail-level",
            "EX2003",
            23,
            30,
            (("administrator", 120, 1410), ("salesdesk", 3105, 40877)),
        ),
        (
            "ex2016-mail-level",
            "EX2016",
            23,
            45,
            (("finance", 6230, 61288), ("abakker", 4120, 38614)),
        ),
    ):
        for alias, mb, items in boxes:
            out += delta_chain(
                set_name,
                host,
                "mailbox-items",
                f"mailbox {alias}",
                mb * MIB,
                hh,
                mm,
                mailbox=alias,
                item_count=items,
            )
    return out


def merge_mail_level(runs: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """One run per set and start: mailboxes of one mail-level set are backed up together."""
    merged: dict[tuple[str, str, str], dict] = {}  # type: ignore[type-arg]
    for r in runs:
        key = (r["set"], r["start"], r["type"])
        if key in merged:
            merged[key]["artifacts"] += r["artifacts"]
        else:
            merged[key] = r
    return list(merged.values())


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description="Write a fortnight of backup runs for examples/estate.yaml as a JSON "
        "manifest on standard output (deterministic).",
        epilog="example: .venv/bin/python examples/make_history.py > examples/history.json",
    )
    parser.parse_args(argv)
    runs = merge_mail_level(ex2003() + ex2016() + others())
    runs.sort(key=lambda r: (r["end"], r["set"]))
    json.dump({"format": "dr-manifest/1", "runs": runs}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
