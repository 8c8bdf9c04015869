"""Planner benchmark: 100 databases x one year of hourly log backups and daily fulls.

    .venv/bin/python benchmarks/bench_planner.py [--databases 100] [--days 365] [--repeat 15]

Prints the median time of a point-in-time plan for one database, the time of `plan site`
for the whole estate, and the peak memory (max RSS of the process).
Every stream's history is built in memory first (as `catalog_facts` reads it all), and
that is counted in the peak memory; the timings are of the planner alone.
`dr plan` itself reads only the streams it plans: bench_plan_catalog.py measures that path.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from dr.exchange.rules import LogRange
from dr.model.inventory import Inventory
from dr.planner import plan_database, plan_site
from dr.planner.facts import BackupVersion, DatabaseImage, HostArtifact, LiveLogs

START = datetime(2023, 1, 1, tzinfo=UTC)
GB = 1_000_000_000


def estate(databases: int) -> Inventory:
    servers = []
    per_server = 10
    for n in range(0, databases, per_server):
        groups = [
            {
                "name": f"DB{i:03d}",
                "log_prefix": f"E{(i % per_server):02X}",
                "log_path": f"F:\\Logs\\DB{i:03d}",
                "system_path": f"F:\\Logs\\DB{i:03d}",
                "databases": [
                    {
                        "name": f"DB{i:03d}",
                        "edb": f"E:\\DB\\DB{i:03d}\\DB{i:03d}.edb",
                        "size_gb": 200,
                    }
                ],
            }
            for i in range(n, min(n + per_server, databases))
        ]
        servers.append(
            {
                "name": f"EX{n // per_server:02d}",
                "domain": "corp.example.com",
                "windows_version": "2016",
                "exchange_version": 2016,
                "administrative_group": "AG",
                "install_path": "C:\\Exchange",
                "components": ["Mailbox"],
                "temp_folder": "T:\\DRTemp",
                "storage_groups": groups,
            }
        )
    servers.append(
        {
            "name": "DC1",
            "domain": "corp.example.com",
            "windows_version": "2016",
            "roles": ["domain-controller"],
        }
    )
    return Inventory.model_validate(
        {
            "organization": {
                "name": "Example",
                "administrative_groups": [{"name": "AG", "legacy_exchange_dn": "/o=Example/ou=AG"}],
            },
            "forests": [
                {
                    "name": "example.com",
                    "domains": [{"name": "corp.example.com", "domain_controllers": ["DC1"]}],
                }
            ],
            "servers": servers,
            "sla": {"default": {"rpo": "1h", "rto": "8h"}},
            "secrets": [
                {"name": "dsrm", "kind": "dsrm-password", "host": "DC1", "location": "safe"}
            ],
        }
    )


def history(stream: str, days: int) -> list[BackupVersion]:
    """A daily full at 22:00 and an incremental every other hour of the day; 100 logs an hour."""
    prefix = "E00"
    versions: list[BackupVersion] = []
    gen, on_disk = 0, 1
    for hour in range(days * 24):
        gen += 100
        at = START + timedelta(hours=hour + 1)
        full = hour % 24 == 21
        images = (
            (DatabaseImage(f"{stream}/{stream.split('/')[1]}", 200 * GB, 0, (on_disk, gen)),)
            if full
            else ()
        )
        versions.append(
            BackupVersion(
                id=f"{stream}#{hour}",
                stream=stream,
                backup_type="full" if full else "incremental",
                at=at,
                logs=LogRange(prefix, on_disk, gen, "sig"),
                databases=images,
                log_size_bytes=(gen - on_disk + 1) * 1_048_576,
            )
        )
        on_disk = gen + 1
    return versions


class GeneratedFacts:
    """A provider holding every stream's year of backups in memory."""

    def __init__(self, inv: Inventory, days: int) -> None:
        self.inv, self.days = inv, days
        self.histories = {
            f"{s.name}/{sg.name}": history(f"{s.name}/{sg.name}", days)
            for s in inv.servers
            for sg in s.storage_groups
        }

    def inventory(self) -> Inventory:
        return self.inv

    def stream_backups(self, stream: str) -> Sequence[BackupVersion]:
        return self.histories[stream]

    def live_logs(self, stream: str) -> LiveLogs | None:
        end = START + timedelta(days=self.days)
        gen = self.days * 24 * 100
        return LiveLogs(stream, LogRange("E00", gen - 99, gen + 50, "sig"), end)

    def host_artifacts(self, host: str, kind: str) -> Sequence[HostArtifact]:
        return [HostArtifact(f"{host}-{kind}", kind, host, START, GB)]

    def digest(self) -> str:
        return "generated"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--databases", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    began = time.perf_counter()
    facts = GeneratedFacts(estate(args.databases), args.days)
    count = sum(len(v) for v in facts.histories.values())
    print(f"facts: {count} backup versions built in {time.perf_counter() - began:.1f} s")
    target = START + timedelta(days=args.days // 2, hours=5, minutes=30)
    times = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        plan = plan_database(facts, ["DB007"], target)
        times.append(time.perf_counter() - began)
    print(
        f"point-in-time plan, one database: median {statistics.median(times) * 1000:.1f} ms "
        f"({len(plan.steps)} steps, {len(plan.facts['chains'][0]['versions'])} versions)"
    )
    began = time.perf_counter()
    site = plan_site(facts)
    print(
        f"plan site, {args.databases} databases: {time.perf_counter() - began:.2f} s "
        f"({len(site.steps)} steps, RTO {site.rto_estimate_seconds / 3600:.1f} h)"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {rss:.0f} MiB max RSS (facts included)")


if __name__ == "__main__":
    main()
