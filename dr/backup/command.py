"""`dr backup run SET` without ``--from``: open what a remote backup needs, run it, report.

The set comes from the workspace's inventory (``backup_sets``); the host is reached with
the transport the workspace config maps it to (``hosts:``), or a ``--hosts FILE`` of the
same shape, exactly as ``dr run start`` does::

    hosts:
      EX2016: {kind: winrm, host: ex2016.corp.contoso.com, auth: ntlm}

Credentials come from the environment (``DR_WINRM_<HOST>_USER`` / ``_PASSWORD``, then
``DR_WINRM_USER`` / ``DR_WINRM_PASSWORD``), a keyring or a prompt
(engine/transports/credentials.py) — never from a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from dr.errors import InputError, NotFoundError, ParameterError
from engine.errors import TransportError
from engine.transports.base import Transport


def host_specs(config: dict[str, Any], hosts_file: Path | None) -> dict[str, dict[str, Any]]:
    """Host name → transport spec: the workspace's ``hosts:``, overridden by ``--hosts``."""
    specs = dict(config.get("hosts") or {})
    if hosts_file is not None:
        try:
            data = yaml.safe_load(hosts_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{hosts_file}: cannot read the hosts file ({exc})") from exc
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise InputError(f"{hosts_file}: expected a mapping of host name to transport spec")
        specs.update(data)
    return specs


def transport_factory(specs: dict[str, dict[str, Any]]) -> Callable[[str], Transport]:
    """Open the transport mapped to a host; its spec's ``host`` (an address) wins."""
    from engine.transports import open_transport

    lowered = {name.lower(): spec for name, spec in specs.items()}

    def factory(host: str) -> Transport:
        spec = lowered.get(host.lower())
        if spec is None:
            raise TransportError(
                f"no transport for host {host!r}",
                hint="map it under `hosts:` in the workspace config.yaml, or pass --hosts FILE "
                "(docs/backup.md)",
            )
        return open_transport({"host": host, **spec})

    return factory


def find_set(inventory: Any, name: str) -> Any:
    for bset in inventory.backup_sets:
        if bset.name == name:
            return bset
    raise NotFoundError(
        f"no backup set {name!r} in the inventory",
        hint="`dr set show` lists them; declare it under backup_sets: in the estate file",
    )


@contextmanager
def opened(repo: Path | None, key_file: Path | None) -> Iterator[dict[str, Any]]:
    """The workspace, its inventory, catalog and journal, and the repository."""
    from dr.catalog import Catalog
    from dr.cli.common import workspace
    from dr.cli.store import open_repo
    from dr.model.load import workspace_inventory
    from engine.journal import Journal

    ws = workspace()
    with ExitStack() as stack:
        found = {"ws": ws, "inventory": workspace_inventory(ws)}
        found["catalog"] = stack.enter_context(Catalog.open(ws.catalog_path))
        found["catalog"].sync_sets(found["inventory"].backup_sets)
        found["journal"] = stack.enter_context(Journal.open(ws.journal_path))
        found["repo"] = stack.enter_context(open_repo(repo, key_file))
        yield found


def remote_backup(
    set_name: str,
    backup_type: str,
    *,
    hosts_file: Path | None,
    repo: Path | None,
    key_file: Path | None,
    quiet: bool,
) -> dict[str, Any]:
    """Run the set's procedure on its host and keep the result; the summary for the CLI."""
    from dr.backup.run import BackupContext, run_remote_backup

    if backup_type == "auto":
        raise ParameterError(
            "--type auto applies to --from only: say which backup the host takes",
            hint="--type full | copy | incremental | differential",
        )
    with opened(repo, key_file) as found:
        bset = find_set(found["inventory"], set_name)
        factory = transport_factory(host_specs(found["ws"].config(), hosts_file))
        ctx = BackupContext(
            inventory=found["inventory"], catalog=found["catalog"], repo=found["repo"],
            journal=found["journal"], transports=factory, environ=os.environ,
            by=os.environ.get("USER", "dr backup"),
        )  # fmt: skip
        with _status(f"{backup_type} backup of {set_name} on {bset.host}", quiet):
            result = run_remote_backup(ctx, bset, backup_type)
        if repo is None:  # the workspace's repository: an earlier killed backup is picked up
            from dr.store.reconcile import reconcile

            reconcile(found["catalog"], found["repo"])
    return {
        "set": set_name,
        "host": bset.host,
        "backup_type": result.backup_type,
        "version": result.version,
        "catalog_run": result.run_id,
        "engine_run": result.engine_run,
        "files": result.files,
        "size": result.size,
        "stored": result.stored,
    }


@contextmanager
def _status(label: str, quiet: bool) -> Iterator[None]:
    """A spinner on stderr while the host works (its steps' progress is in the journal)."""
    from dr.cli.common import err_console

    if quiet or not err_console.is_terminal:
        yield
        return
    with err_console.status(label):
        yield
