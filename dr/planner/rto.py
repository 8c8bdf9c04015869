"""Duration estimates for plan steps, from artifact sizes and throughput settings.

A plan's RTO is the length of its critical path (``engine.plan.critical_path``), so every
step needs an estimate. Data movement is ``bytes / throughput``; log replay is
``generations / replay rate``; everything else is a fixed allowance below, chosen from
what these steps take by hand on the hardware the guides describe. They are documented
in docs/scenarios.md and are deliberately pessimistic: an RTO that is too short is worse
than one that is too long.

Throughput for a host, most specific first: ``Server.throughput_mb_s`` in the inventory,
then ``throughput.hosts[HOST]``, then ``throughput.default_mb_s`` (60 MB/s by default).
One MB is 10^6 bytes. Log replay runs at ``throughput.log_replay_logs_per_s`` (4 by default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dr.errors import ParameterError
from dr.model.inventory import Inventory

if TYPE_CHECKING:
    from dr.planner.facts import FactsProvider

#: Seconds a step takes regardless of data size (a person's allowance for manual steps).
FIXED_SECONDS: dict[str, float] = {
    "approve": 900,
    "manual": 900,
    "check-backup-chain": 30,
    "fetch-artifacts": 60,
    "copy-existing-files": 60,
    "dismount-database": 60,
    "allow-file-restore": 15,
    "prepare-temp-folder": 15,
    "restore-database-backup": 120,
    "restore-log-backup": 30,
    "copy-live-logs": 30,
    "remove-logs-after": 30,
    "verify-log-sequence": 60,
    "hard-recovery": 120,
    "soft-recovery": 120,
    "verify-database-header": 30,
    "mount-database": 120,
    "verify-mount": 30,
    "remove-database-files": 60,
    "restore-offline-files": 120,
    "recover-deleted-items": 900,
    "restore-mail-level": 300,
    "create-recovery-database": 120,
    "mailbox-restore-request": 300,
    "remove-recovery-database": 120,
    "connect-mailbox": 600,
    "extract-mailbox": 600,
    "verify-hardware": 1800,
    "install-windows": 5400,
    "restore-disk-image": 900,
    "reset-computer-account": 300,
    "join-domain": 600,
    "exchange-recover-server": 3600,
    "restore-system-state": 1800,
    "boot-dsrm": 600,
    "authoritative-restore": 900,
    "leave-dsrm": 600,
    "verify-directory": 600,
    "verify-computer-account": 60,
    "reboot-host": 600,
    "restore-iis-metabase": 300,
    "restore-srs-database": 900,
    "restore-kms-database": 900,
    "restore-ca": 900,
    "verify-recovery-forest": 120,
    "verify-item-counts": 600,
    "verify-mailbox-sample": 600,
    "cleanup-recovery-forest": 600,
}


def is_destructive(provider: FactsProvider, kind: str) -> bool:
    """Whether steps of ``kind`` delete or overwrite what cannot be brought back, so a second
    person approves them first (E7): the step library's ``destructive`` flag, as the caller
    loaded it (``FactsProvider.step_facts``). The planner keeps no list of its own."""
    steps = provider.step_facts()
    if steps is None:
        raise ParameterError(
            "the planner was given no step-library facts, so it cannot tell which steps are "
            "destructive",
            hint="load the step library (engine.runbook.Library.load()) and pass "
            "StepFacts.of_library(library) with the planner's facts",
        )
    return kind in steps.destructive


MB = 1_000_000
ORCHESTRATOR = "orchestrator"


def throughput_mb_s(inv: Inventory, host: str) -> float:
    """Restore speed for a host, most specific setting first."""
    for server in inv.servers:
        if server.name.upper() == host.upper() and server.throughput_mb_s:
            return server.throughput_mb_s
    for name, value in inv.throughput.hosts.items():
        if name.upper() == host.upper():
            return value
    return inv.throughput.default_mb_s


def estimate(
    inv: Inventory, kind: str, host: str, *, size_bytes: int = 0, replay_logs: int = 0
) -> float:
    """Seconds a step is expected to take: the fixed allowance plus moving and replaying."""
    seconds = FIXED_SECONDS.get(kind, 300)
    if size_bytes:
        seconds += size_bytes / (throughput_mb_s(inv, host) * MB)
    if replay_logs:
        seconds += replay_logs / inv.throughput.log_replay_logs_per_s
    return round(seconds, 1)
