"""What a host says about itself, probed once and recorded in the workspace.

The inventory states each server's Windows version (and, where WMF was installed, its
PowerShell); the planner picks each step's variant from that. A host that answers can say
what it really has: ``dr inventory probe`` asks each mapped host for ``$PSVersionTable``
and records the answer in ``<workspace>/host-facts.json``. From then on the recorded answer
is what the planner uses for that host (:func:`with_probed`), so a 2008 server without the
optional PowerShell 1.0 feature, or a 2003 server with WMF 2.0, gets the variant it can
run even when the inventory does not say so.

The probe is one command that every PowerShell answers: ``$PSVersionTable`` exists from
2.0 on (PowerShell 1.0 has none, so an empty answer means 1.0 — "about_Automatic_Variables",
PowerShell-Docs); a host with no PowerShell at all answers cmd's "is not recognized".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from dr.errors import WorkspaceError

if TYPE_CHECKING:
    from dr.model.inventory import Inventory
    from engine.transports.base import Transport

FACTS_FILE = "host-facts.json"
PROBE_SCRIPT = (
    "if ($PSVersionTable) { 'PSVersion=' + $PSVersionTable.PSVersion.ToString() } "
    "else { 'PSVersion=1.0' }"
)
_ANSWER = re.compile(r"PSVersion=(\d+)\.(\d+)")
_NO_POWERSHELL = re.compile(r"'powershell(\.exe)?' is not recognized", re.IGNORECASE)
PROBE_TIMEOUT = 60.0


class HostFacts(BaseModel):
    """One host's recorded answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str
    powershell: str  # "2.0", "5.1", or "none"
    probed_at: datetime


class ProbeError(Exception):
    """The host answered, but not with a PowerShell version."""


def probe(host: str, transport: Transport, now: Callable[[], datetime] | None = None) -> HostFacts:
    """Ask ``host`` for its PowerShell version over ``transport``."""
    from engine.transports.base import Command

    result = transport.run(Command(PROBE_SCRIPT), PROBE_TIMEOUT)
    stdout = result.stdout.decode("utf-8", "replace")
    stderr = result.stderr.decode("utf-8", "replace")
    when = (now or _now)()
    if not result.ok and _NO_POWERSHELL.search(stderr + stdout):
        return HostFacts(host=host, powershell="none", probed_at=when)
    match = _ANSWER.search(stdout)
    if not result.ok or match is None:
        first = (stderr.strip() or stdout.strip() or f"exit code {result.exit_code}").splitlines()
        raise ProbeError(first[0][:200])
    return HostFacts(host=host, powershell=f"{match.group(1)}.{match.group(2)}", probed_at=when)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --- the record ------------------------------------------------------------------------


def facts_path(workspace_root: Path) -> Path:
    return workspace_root / FACTS_FILE


def load(workspace_root: Path) -> dict[str, HostFacts]:
    """Recorded answers by lower-cased host name (none recorded: empty)."""
    path = facts_path(workspace_root)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        found = [HostFacts.model_validate(item) for item in data["hosts"]]
    except (ValueError, TypeError, KeyError) as exc:
        raise WorkspaceError(
            f"{path}: not a host-facts file ({str(exc).splitlines()[0]})",
            hint="delete it and run `dr inventory probe` again",
        ) from None
    return {f.host.lower(): f for f in found}


def record(workspace_root: Path, answers: Iterable[HostFacts]) -> None:
    """Merge ``answers`` into the recorded ones (atomically: a temporary file, then rename)."""
    merged = load(workspace_root)
    for answer in answers:
        merged[answer.host.lower()] = answer
    body = {"format": "dr-host-facts/1", "hosts": [
        merged[k].model_dump(mode="json") for k in sorted(merged)
    ]}  # fmt: skip
    path = facts_path(workspace_root)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --- what the planner sees -------------------------------------------------------------


def with_probed(inv: Inventory, facts: dict[str, HostFacts]) -> Inventory:
    """``inv`` with each probed server's ``powershell`` set to what the host answered."""
    if not facts:
        return inv
    servers = [_server(s, facts) for s in inv.servers]
    forests = [_forest(f, facts) for f in inv.recovery_forests]
    return inv.model_copy(update={"servers": servers, "recovery_forests": forests})


def _server(server: Any, facts: dict[str, HostFacts]) -> Any:
    answer = facts.get(server.name.lower())
    if answer is None or answer.powershell == server.powershell:
        return server
    return server.model_copy(update={"powershell": answer.powershell})


def _forest(forest: Any, facts: dict[str, HostFacts]) -> Any:
    servers = [_server(s, facts) for s in forest.servers]
    return forest.model_copy(update={"servers": servers})
