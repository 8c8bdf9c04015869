"""Assembling a Plan: readable step ids, platforms, locks, estimates, RTO and input digest.

Scenario modules decide *which* steps; this module makes every step well-formed the same
way (stable ids without spaces, the destructive flag from the kind, an approval in front
of each destructive step, ``platform`` on every step that runs on an Exchange server) and
seals the plan: critical path, RTO, SLA and the digest of the facts it was made from.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from dr.errors import MissingSecret
from dr.model.inventory import Inventory, RecoveryServer, Server
from dr.planner import rto
from dr.planner.facts import FactsProvider
from engine.plan import Plan, SecretRef, Sla, Step, Target, critical_path

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:()\-]+")
_INVENTORY_DIGESTS: dict[int, tuple[Inventory, str]] = {}


def slug(text: str) -> str:
    """A step-id part: spaces and punctuation become '-', nothing else changes."""
    return _UNSAFE.sub("-", text).strip("-") or "x"


def platform_of(server: Server | RecoveryServer | None) -> dict[str, str]:
    """What the step library selects a variant by (empty for non-Exchange hosts)."""
    if server is None:
        return {}
    found = {"windows": str(server.windows_version)}
    if server.exchange_version is not None:
        found["exchange"] = str(server.exchange_version)
    powershell = _powershell_of(server)
    if powershell is not None:  # the step library refuses variants the host cannot run
        found["powershell"] = powershell
    cu = re.fullmatch(r"CU(\d+)", str(getattr(server, "service_pack", None) or ""), re.I)
    if cu:  # the cumulative update: setup's switches changed with the September 2021 CUs
        found["cu"] = cu.group(1)
    return found


def _powershell_of(server: Server | RecoveryServer) -> str | None:
    """The host's PowerShell ("none" if it has none), or None if its Windows is unknown."""
    from dr.lab.ps.versions import host_powershell, known_windows

    windows = str(server.windows_version)
    recorded = getattr(server, "powershell", None)
    if recorded is None and not known_windows(windows):
        return None
    exchange = server.exchange_version
    return host_powershell(windows, recorded, int(exchange) if exchange else None) or "none"


def inventory_digest(inv: Inventory) -> str:
    cached = _INVENTORY_DIGESTS.get(id(inv))
    if cached is not None and cached[0] is inv:
        return cached[1]
    digest = hashlib.sha256(inv.model_dump_json().encode("utf-8")).hexdigest()
    _INVENTORY_DIGESTS[id(inv)] = (inv, digest)
    return digest


# Steps dr runs against its own repository: they need its passphrase, handed to the command
# by name (a minimal environment carries none of dr's secrets; engine/transports/local.py).
STORE_KINDS = frozenset({"check-backup-chain", "fetch-artifacts"})
REPOSITORY_PASSPHRASE = SecretRef(
    name="repository-passphrase",
    location="the dr repository passphrase, kept by the operator (DR_PASSPHRASE)",
    env="DR_PASSPHRASE",
)


class PlanBuilder:
    """Collects steps and facts for one plan; ``finish`` turns them into a sealed Plan."""

    def __init__(self, provider: FactsProvider, scenario: str, target: Target) -> None:
        self.provider = provider
        self.inv = provider.inventory()
        self.scenario = scenario
        self.target = target
        self.steps: list[Step] = []
        self.warnings: list[str] = []
        self.facts: dict[str, Any] = {}
        self._ids: set[str] = set()
        self._used: list[Any] = []

    # ----------------------------------------------------------------- steps

    def _install_path(self, host: str) -> str:
        """Where Exchange is on ``host`` (a server of the estate or of a recovery forest): the
        inventory's ``install_path``, else setup's default for its version."""
        from dr.model.inventory import install_path_of

        found = [s for s in self.inv.servers if s.name.lower() == host.lower()]
        found += [s for f in self.inv.recovery_forests for s in f.servers
                  if s.name.lower() == host.lower()]  # fmt: skip
        return next((p for p in map(install_path_of, found) if p), "")

    def add(
        self,
        kind: str,
        key: Sequence[str],
        *,
        host: str,
        params: dict[str, Any] | None = None,
        needs: Iterable[str] = (),
        resources: Iterable[str] = (),
        platform: dict[str, str] | None = None,
        secrets: Sequence[SecretRef] = (),
        title: str = "",
        size_bytes: int = 0,
        replay_logs: int = 0,
    ) -> str:
        """Add one step; returns its id. A destructive kind gets an approval in front."""
        needs = sorted(set(needs))
        if kind in STORE_KINDS and not secrets:
            secrets = [REPOSITORY_PASSPHRASE]
        destructive = rto.is_destructive(self.provider, kind)
        if destructive:
            needs = [self._approval(kind, key, needs, title)]
        step_id = self._unique(".".join([kind, *(slug(k) for k in key)]))
        params = dict(params or {})
        steps = self.provider.step_facts()
        if steps is not None and kind in steps.install_path and "install_path" not in params:
            params["install_path"] = self._install_path(host)
        self.steps.append(
            Step(
                id=step_id,
                kind=kind,
                title=title,
                host=host,
                params=params,
                platform=dict(platform or {}),
                needs=needs,
                resources=sorted(set(resources)),
                estimate_seconds=rto.estimate(
                    self.inv, kind, host, size_bytes=size_bytes, replay_logs=replay_logs
                ),
                destructive=destructive,
                secrets=list(secrets),
            )
        )
        return step_id

    def _approval(self, kind: str, key: Sequence[str], needs: list[str], title: str) -> str:
        reason = f"{title or kind}: this cannot be undone"
        return self.add(
            "approve",
            [kind, *key],
            host="operator",
            params={"reason": reason, "role": "second administrator"},
            needs=needs,
            title=f"A second administrator approves: {title or kind}",
        )

    def _unique(self, base: str) -> str:
        candidate, n = base, 2
        while candidate in self._ids:
            candidate, n = f"{base}.{n}", n + 1
        self._ids.add(candidate)
        return candidate

    # ----------------------------------------------------------------- facts

    def use(self, *facts: Any) -> None:
        """Record facts the plan depends on; they go into the plan's input digest."""
        self._used.extend(facts)

    def warn(self, *messages: str) -> None:
        for message in messages:
            if message not in self.warnings:
                self.warnings.append(message)

    def secret(
        self, kind: str, host: str | None, needed_for: str, *, name: str | None = None
    ) -> SecretRef:
        """The reference to a secret the restore needs, or a MissingSecret refusal.

        The reference carries the name the step library's templates ask for (``name``, by
        default the kind: ``dsrm-password``), so the runbook finds its location; the
        inventory's own name for the entry goes into the location text."""
        for ref in self.inv.secrets:
            if ref.kind == kind and (host is None or (ref.host or "").upper() == host.upper()):
                self.use({"secret": ref.name, "kind": ref.kind, "location": ref.location})
                where = f"{ref.location} (inventory secret {ref.name})"
                return SecretRef(name=name or kind, location=where, env=ref.env)
        where = f" of {host}" if host else ""
        raise MissingSecret(
            f"{needed_for} needs the {kind}{where}, and the inventory records no location for it",
            hint=f"add a secrets entry with kind: {kind}"
            + (f" and host: {host}" if host else "")
            + " saying where it is kept (never its value)",
            details={"secret_kind": kind, "host": host, "needed_for": needed_for},
        )

    # ----------------------------------------------------------------- seal

    def finish(
        self,
        *,
        recoverable_point: datetime | None,
        data_loss_seconds: float | None,
        sla: Sla | None = None,
    ) -> Plan:
        seconds, path = critical_path(self.steps)
        plan = Plan(
            scenario=self.scenario,
            target=self.target,
            created_from=self._digest(),
            recoverable_point=recoverable_point,
            data_loss_window_seconds=data_loss_seconds,
            rto_estimate_seconds=round(seconds, 1),
            critical_path=path,
            warnings=list(self.warnings),
            sla=sla or Sla(),
            facts=self.facts,
            steps=self.steps,
        )
        return plan.sealed()

    def _digest(self) -> str:
        body = {
            "inventory": inventory_digest(self.inv),
            "scenario": self.scenario,
            "target": self.target.model_dump(mode="json"),
            "facts": [_plain(f) for f in self._used],
        }
        text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value
