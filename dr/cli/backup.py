"""`dr backup run SET`: store a set's files as a new version and record the run.

The set's policies (compression, in-file delta, encryption) come from the catalog when the
set is registered there; the run is then checked against the Exchange backup rules BEFORE
anything is stored, and recorded after its manifest is committed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dr.cli.common import STATE, console, emit_json, err_console
from dr.cli.store import JsonOpt, KeyOpt, RepoOpt, byte_progress, open_repo

if TYPE_CHECKING:
    from dr.catalog import Catalog, SetRecord
    from dr.store.backup import BackupOptions

app = typer.Typer(no_args_is_help=True, help="Take backups: store a set's files, record the run.")


def _catalog_set(name: str) -> tuple[Catalog | None, SetRecord | None]:
    """The workspace catalog and the set registered in it (either may be absent).

    Sets declared in the workspace's inventory are registered first, as `dr set` does.
    """
    from dr.errors import NotFoundError
    from dr.workspace import Workspace, resolve_path

    ws = Workspace(resolve_path(STATE.workspace))
    if not ws.exists():
        return None, None
    from dr.catalog import Catalog
    from dr.cli.catalog import optional_inventory

    catalog = Catalog.open(ws.catalog_path)
    try:
        inventory = optional_inventory(ws)
        if inventory is not None:
            catalog.sync_sets(inventory.backup_sets)  # sets declared in the estate file
        return catalog, catalog.set(name)
    except NotFoundError:
        return catalog, None
    except BaseException:
        catalog.close()
        raise


def _options(
    name: str, source: Path, record: SetRecord | None, started: datetime, overrides: dict[str, Any]
) -> BackupOptions:
    from dr.store.backup import BackupOptions

    values: dict[str, Any] = {"set_name": name, "source": source, "at": started}
    if record is not None:
        d = record.definition
        values.update(
            host=d.host,
            compression=record.compression_at(started),
            encryption=json.dumps(d.encryption.model_dump(mode="json"), sort_keys=True),
            block_size=d.delta.block_size,
            max_deltas=d.delta.max_deltas,
            max_changed_percent=d.delta.max_changed_percent,
            differential=d.delta.differential,
            differential_day=d.delta.differential_day,
            set_definition=d.model_dump(mode="json"),
        )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return BackupOptions(**values)


@app.command("run")
def run(
    set_name: str = typer.Argument(..., help="Backup set name (as registered, or a new label)."),
    source: Path | None = typer.Option(
        None,
        "--from",
        help="Local directory or mounted share holding the set's files. Without it, the "
        "set's backup procedure runs on its host (docs/backup.md).",
    ),
    backup_type: str = typer.Option(
        "auto",
        "--type",
        help="auto | full | incremental | differential (auto follows the set's "
        "in-file delta policy: incremental, differential on its day, full when a chain is long). "
        "On the host (no --from): full | copy | incremental | differential.",
    ),
    hosts: Path | None = typer.Option(
        None, "--hosts", help="Without --from: YAML host name -> transport spec (docs/backup.md)."
    ),
    compression: str | None = typer.Option(
        None, "--compression", help="fast | normal (zstd 1 / 3)."
    ),
    block_size: int | None = typer.Option(None, "--block-size", help="Fixed block size in bytes."),
    blocks: list[str] = typer.Option(
        [], "--blocks", help="Extra name pattern for in-place files (fixed blocks), e.g. '*.bin'."
    ),
    host: str | None = typer.Option(None, "--host", help="Host the files came from."),
    rehash: bool = typer.Option(
        False, "--rehash", help="Read every file, even those whose size and mtime are unchanged."
    ),
    storage_group: str | None = typer.Option(
        None, "--storage-group", help="SERVER/SG key of Exchange files (database, logs)."
    ),
    repo: Path | None = RepoOpt,
    key_file: Path | None = KeyOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Store the files of SET as a new version, with a progress bar; record it in the catalog.

    Without --from, SET's backup procedure first runs on its host through the engine
    (VSS / NTBackup, system state, metabase, KMS, CA; docs/backup.md) and what it
    produced is fetched, stored and recorded; a run the Exchange rules refuse is refused
    before any command is sent (exit 4).

    Files updated in place (databases, images: *.edb, *.stm, *.mdf, ... or an ESE header)
    are stored as changed blocks; other files as deduplicated content-defined chunks.

    Example: dr backup run ex2016-exchange --type incremental
    """
    from dr.errors import ParameterError

    if source is None:
        _remote(set_name, backup_type, hosts, repo, key_file, json_out)
        return
    from dr.store.backup import plan_run, run_backup, source_files
    from dr.store.chunking import DEFAULT_BLOCK_PATTERNS
    from dr.store.format import utcnow

    if backup_type not in ("auto", "full", "incremental", "differential"):
        raise ParameterError(f"--type {backup_type!r}: use auto, full, incremental or differential")
    started = utcnow()
    catalog, record = _catalog_set(set_name)
    try:
        overrides = {
            "backup_type": backup_type,
            "compression": compression,
            "block_size": block_size,
            "host": host,
            "storage_group": storage_group,
            "rehash": rehash or None,
            "block_patterns": (*DEFAULT_BLOCK_PATTERNS, *blocks) if blocks else None,
        }
        opts = _options(set_name, source, record, started, overrides)
        files = list(source_files(source))
        total = sum(p.stat().st_size for _, p in files)
        with open_repo(repo, key_file) as r:
            plan_run(r, opts, catalog if record is not None else None, files)
            with byte_progress(f"backup {set_name}", total, quiet=json_out) as tick:
                manifest = run_backup(r, opts, tick, files)
            run_id = _record(catalog, record, manifest)
            if record is not None:  # recorded in the catalog: it follows the repository
                _pick_up_unrecorded(catalog, r, repo)
    finally:
        if catalog is not None:
            catalog.close()
    _report(manifest, run_id, json_out)


def _remote(
    set_name: str,
    backup_type: str,
    hosts: Path | None,
    repo: Path | None,
    key_file: Path | None,
    json_out: bool,
) -> None:
    """The set's procedure on its host through the engine (dr/backup), then store + record."""
    from dr.backup.command import remote_backup

    summary = remote_backup(
        set_name, backup_type, hosts_file=hosts, repo=repo, key_file=key_file, quiet=json_out
    )
    if json_out:
        emit_json(summary)
        return
    console.print(
        f"Stored {summary['version']} ({summary['backup_type']} on {summary['host']}): "
        f"{summary['files']} files, {summary['size']} bytes, added {summary['stored']} bytes; "
        f"catalog run {summary['catalog_run']}, engine run {summary['engine_run']}."
    )


def _pick_up_unrecorded(catalog: Catalog | None, repository: Any, repo: Path | None) -> None:
    """A version an earlier, killed backup committed but did not record is recorded now
    (and a recorded run whose version is gone is marked expired): dr.store.reconcile. Only
    for the workspace's own repository — another one's versions are not this catalog's."""
    from dr.store.reconcile import reconcile

    if catalog is None or (repo is not None and not _is_workspace_repo(repo)):
        return
    drift = reconcile(catalog, repository)
    if drift.recorded or drift.marked_expired:
        err_console.print(
            f"note: the catalog now follows the repository: {drift.recorded} version(s) "
            f"recorded, {drift.marked_expired} run(s) marked expired"
        )


def _is_workspace_repo(repo: Path) -> bool:
    from dr.cli.common import workspace

    recorded = workspace().config().get("repository")
    return recorded is not None and Path(recorded).resolve() == repo.resolve()


def _record(
    catalog: Catalog | None, record: SetRecord | None, manifest: dict[str, Any]
) -> int | None:
    from dr.errors import CatalogError, DrError
    from dr.store.catalog_link import record as record_run

    if catalog is None or record is None:
        err_console.print(
            f"note: set {manifest['set']!r} is not registered in a workspace catalog; the "
            "version is in the repository only (`dr store rebuild-catalog` records it later)"
        )
        return None
    try:
        return record_run(catalog, manifest["catalog"])
    except DrError as exc:
        raise CatalogError(
            f"version {manifest['id']} is stored, but the catalog refused the run: {exc.message}",
            hint="fix the catalog, then `dr store rebuild-catalog` records it from the repository",
        ) from exc


def _report(manifest: dict[str, Any], run_id: int | None, json_out: bool) -> None:
    summary = {
        "version": manifest["id"],
        "set": manifest["set"],
        "backup_type": manifest["backup_type"],
        "reason": manifest["reason"],
        "size": manifest["size"],
        "stored": manifest["stored"],
        "files": len(manifest["files"]),
        "catalog_run": run_id,
    }
    if json_out:
        emit_json(summary)
        return
    console.print(
        f"Stored {manifest['id']} ({manifest['backup_type']}: {manifest['reason']}): "
        f"{len(manifest['files'])} files, {manifest['size']} bytes, added {manifest['stored']} "
        "bytes to the repository."
    )
