"""``dr lab up``: a lab estate, days of mail, and its backups taken the way dr takes them.

Every backup goes through dr's real backup path (:func:`dr.backup.run.run_remote_backup`):
the backup plan is executed by the engine over WinRM (pywinrm, HTTP) against the lab host's
loopback endpoint, the files it produced are fetched back through the transport, stored in
the workspace's repository and recorded in its catalog — so the catalog, the repository and
the plans made from them are exactly what they would be against real servers, on the lab's
simulated clock. The workspace config gets the lab's hosts (``hosts:``), where the
orchestrator sees each host's staging folders (``staging:``) and the repository.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dr.errors import ParameterError
from dr.lab.estate import LAB_USER, Lab
from dr.workspace import Workspace

__all__ = ["LabSession", "advance", "build", "lab_dir", "lab_env", "open_lab", "session"]

Progress = Callable[[str], None]


def lab_dir(ws: Workspace) -> Path:
    return ws.root / "lab"


def open_lab(ws: Workspace) -> Lab:
    return Lab.open(lab_dir(ws))


def lab_env(lab: Lab) -> dict[str, str]:
    """What a transport needs to sign in to the lab's endpoints (a loopback-only account)."""
    return {"DR_WINRM_USER": LAB_USER, "DR_WINRM_PASSWORD": lab.password}


def free_ports(count: int) -> list[int]:
    ports, socks = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in socks:
        sock.close()
    return ports


def configure(ws: Workspace, lab: Lab, ports: dict[str, int]) -> None:
    """Point the workspace at the lab: hosts, staging folders, the ports in lab.json."""
    from dr.planner.database import staging_root

    staging: dict[str, object] = dict(ws.config().get("staging") or {})
    for server in lab.all_servers():
        root = staging_root(server)
        staging[server.name] = {root: str(lab.host(server.name).fs.host_path(root))}
    hosts = dict(ws.config().get("hosts") or {})
    hosts.update(lab.transport_specs(ports))
    ws.update_config(hosts=hosts, staging=staging)
    lab.state["ports"] = ports
    lab.save()


@dataclass
class LabSession:
    """An open lab with its endpoints serving, and dr's state for backups."""

    ws: Workspace
    lab: Lab
    ports: dict[str, int]
    parts: dict[str, Any]

    def backup(self, server: str, backup_type: str, at: datetime) -> None:
        from dr.backup.run import BackupContext, run_remote_backup

        ctx = BackupContext(
            inventory=self.parts["inventory"], catalog=self.parts["catalog"],
            repo=self.parts["repo"], journal=self.parts["journal"],
            transports=self.factory(), environ={}, by="dr lab", clock=self.lab.now,
        )  # fmt: skip
        for bset in self.parts["inventory"].backup_sets:
            if bset.host == server and bset.type in self.lab_types(server):
                run_remote_backup(ctx, bset, backup_type)

    def lab_types(self, server: str) -> tuple[str, ...]:
        """The set types the lab backs up on ``server``: Exchange's sets; on a domain
        controller of Windows 2008 or later its system state (wbadmin). NTBackup's system
        state of a Windows 2003 domain controller is not modelled."""
        dc = next((s for s in self.lab.domain_controllers() if s.name == server), None)
        if dc is None:
            return ("exchange",)
        return ("system-state",) if dc.windows_version not in ("2000", "2003", "2003R2") else ()

    def backup_directory(self, at: datetime, say: Progress) -> None:
        """Each domain controller's system state, as its nightly set takes it."""
        for dc in self.lab.domain_controllers():
            if self.lab_types(dc.name):
                say(f"{at:%Y-%m-%d %H:%M}Z  system state backup of {dc.name}")
                self.backup(dc.name, "full", at)

    def factory(self) -> Callable[[str], Any]:
        from engine.transports import open_transport

        specs, env = self.lab.transport_specs(self.ports), lab_env(self.lab)
        return lambda host: open_transport(specs[host], env=env)


@contextmanager
def session(ws: Workspace, lab: Lab, *, repo: Any = None) -> Iterator[LabSession]:
    """Serve the lab's endpoints and open the workspace's catalog, journal and repository."""
    from dr.catalog import Catalog
    from dr.model.load import workspace_inventory
    from dr.store.repository import open_repository
    from engine.journal import Journal

    ports = {name: int(p) for name, p in (lab.state.get("ports") or {}).items()}
    with ExitStack() as stack:
        served = stack.enter_context(lab.serving(ports))
        inventory = workspace_inventory(ws)
        catalog = stack.enter_context(Catalog.open(ws.catalog_path))
        catalog.sync_sets(inventory.backup_sets)
        parts = {
            "inventory": inventory, "catalog": catalog,
            "journal": stack.enter_context(Journal.open(ws.journal_path)),
            "repo": repo or stack.enter_context(open_repository(Path(ws.config()["repository"]))),
        }  # fmt: skip
        yield LabSession(ws, lab, served, parts)


def build(
    ws_root: Path, inventory: Path, *, days: float, seed: int, progress: Progress | None = None
) -> Lab:
    """Create the workspace (if new), the lab and its repository, then run ``days``."""
    from dr import workspace as wsmod

    ws = Workspace(ws_root)
    if not (ws.exists() and ws.config().get("repository")) and not os.environ.get("DR_PASSPHRASE"):
        raise ParameterError(  # said before anything is made, so a retry starts clean
            "the lab's repository needs a passphrase",
            hint="set DR_PASSPHRASE (any passphrase you choose for this lab), or record an "
            "existing repository with `dr store init`",
        )
    if not ws.exists():
        wsmod.init(ws_root, inventory)
    lab = Lab.create(lab_dir(ws), inventory, seed=seed)
    names = lab.endpoint_names()
    configure(ws, lab, dict(zip(names, free_ports(len(names)), strict=True)))
    _repository(ws)
    with session(ws, lab) as open_:
        say = progress or (lambda _text: None)
        for server in (s.name for s in lab.exchange_servers()):
            say(f"{lab.now():%Y-%m-%d %H:%M}Z  full backup of {server}")
            open_.backup(server, "full", lab.now())
        open_.backup_directory(lab.now(), say)
        _run_clock(open_, lab.now() + timedelta(days=days), say)
    return lab


def advance(ws_root: Path, hours: float, progress: Progress | None = None) -> Lab:
    """Run an existing lab's clock on by ``hours``: mail in every mounted database and the
    backups that fall due, through dr's backup path, as ``dr lab up`` does."""
    import errno

    from dr.errors import LabError

    if hours <= 0:
        raise ParameterError("--hours: run the clock on by more than 0 hours")
    ws = Workspace(ws_root)
    lab = open_lab(ws)
    try:
        with session(ws, lab) as open_:
            _run_clock(open_, lab.now() + timedelta(hours=hours), progress or (lambda _t: None))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise LabError(
            "the lab's endpoint ports are in use (is `dr lab serve` running?)",
            hint="stop `dr lab serve`, run the clock on, then serve again",
        ) from exc
    return lab


def _run_clock(open_: LabSession, until: datetime, say: Progress) -> None:
    def on_backup(server: str, kind: str, at: datetime) -> None:
        say(f"{at:%Y-%m-%d %H:%M}Z  {kind} backup of {server}")
        open_.backup(server, kind, at)
        if kind == "full" and server == open_.lab.exchange_servers()[-1].name:
            open_.backup_directory(at, say)  # once a night, after the last Exchange full

    open_.lab.advance(until, on_backup=on_backup)


def _repository(ws: Workspace) -> None:
    from dr.store.repository import init_repository

    if ws.config().get("repository"):
        return
    passphrase = os.environ.get("DR_PASSPHRASE")
    if not passphrase:
        raise ParameterError(
            "the lab's repository needs a passphrase",
            hint="set DR_PASSPHRASE (any passphrase you choose for this lab), or record an "
            "existing repository with `dr store init`",
        )
    path = ws.root / "repository"  # beside the lab, so `dr lab down` keeps what the catalog names
    init_repository(path, passphrase)
    ws.update_config(repository=str(path))
