"""`dr store` commands: create, list, restore, verify, prune and inspect the repository.

The repository is chosen by ``--repo``, else ``$DR_REPOSITORY``, else the one recorded in the
workspace by ``dr store init``. Its key file is found by repository id in ``$DR_KEY_DIR`` or
``~/.config/dr/keys`` (``--key-file`` to point elsewhere); the passphrase comes from
``dr --password-file``, ``$DR_PASSPHRASE``, ``$DR_PASSWORD_FILE``, ``$DR_PASSWORD_COMMAND``
or a prompt (:mod:`dr.store.passphrase`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dr.cli.common import STATE, byte_progress, console, emit_json, err_console

if TYPE_CHECKING:
    from dr.store.repository import Repository

app = typer.Typer(
    no_args_is_help=True,
    help="The artifact repository: deduplicated, compressed, encrypted (docs/store.md).",
)
key_app = typer.Typer(no_args_is_help=True, help="The repository key: export or import it.")
app.add_typer(key_app, name="key")

REPO_ENV = "DR_REPOSITORY"
RepoOpt = typer.Option(
    None,
    "--repo",
    "-r",
    envvar=REPO_ENV,
    show_envvar=True,
    help="Repository directory (default: the one `dr store init` recorded in the workspace).",
)
KeyOpt = typer.Option(
    None,
    "--key-file",
    help="Key file (default: $DR_KEY_DIR or ~/.config/dr/keys, by repository id).",
)
JsonOpt = typer.Option(False, "--json", help="Machine-readable output.")

LOSS_WARNING = (
    "[bold yellow]Losing the key file or the passphrase is losing the data.[/] "
    "The key stays on this machine; keep an exported copy (`dr store key export`) and the "
    "passphrase somewhere safe, apart from the repository."
)


def repo_path(explicit: Path | None) -> Path:
    """--repo / $DR_REPOSITORY, else the repository recorded in the workspace."""
    from dr.errors import ParameterError
    from dr.workspace import Workspace, resolve_path

    if explicit:
        return explicit
    ws = Workspace(resolve_path(STATE.workspace))
    recorded = ws.config().get("repository") if ws.exists() else None
    if not recorded:
        raise ParameterError(
            "no repository given",
            hint=f"pass --repo PATH, set ${REPO_ENV}, or create one with `dr store init PATH`",
        )
    return Path(recorded)


def open_repo(repo: Path | None, key_file: Path | None) -> Repository:
    from dr.store.repository import open_repository

    return open_repository(repo_path(repo), key_file=key_file)


def _human(n: float) -> str:
    from engine.units import size

    return size(n)


@app.command("init")
def init(
    path: Path = typer.Argument(..., help="New or empty directory (local disk or mounted share)."),
    key_file: Path | None = KeyOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Create an encrypted repository and its key file.

    The master key is random; it is wrapped by your passphrase (Argon2id) in a key file
    kept on THIS machine, never inside the repository. Losing the key file or the
    passphrase is losing the data.
    """
    from dr.store.passphrase import obtain_passphrase
    from dr.store.repository import init_repository
    from dr.workspace import Workspace, resolve_path

    passphrase = obtain_passphrase(confirm=True)
    repo, kpath = init_repository(path, passphrase, key_file=key_file)
    ws = Workspace(resolve_path(STATE.workspace))
    if ws.exists():
        ws.update_config(repository=str(path.resolve()))
    if json_out:
        emit_json({"repository": str(path), "id": repo.repo_id, "key_file": str(kpath)})
        return
    console.print(f"Created repository {path} (id {repo.repo_id}).")
    console.print(f"Key file: {kpath}")
    console.print(LOSS_WARNING)


@key_app.command("export")
def key_export(
    to: Path = typer.Option(..., "--to", help="Where to write the copy of the key file."),
    repo: Path | None = RepoOpt,
    key_file: Path | None = KeyOpt,
) -> None:
    """Copy the key file out of this machine, on purpose (it stays passphrase-protected)."""
    from dr.store import keyfile
    from dr.store.repository import read_config

    config = read_config(repo_path(repo))
    source = key_file or keyfile.key_path(str(config["id"]))
    doc = keyfile.read_key_file(source)
    keyfile.write_key_file(to, doc)
    err_console.print(
        "[bold yellow]warning[/] the exported key, with the passphrase, opens every backup in "
        f"this repository. Store {to} offline and apart from the repository."
    )


@key_app.command("import")
def key_import(
    source: Path = typer.Argument(..., help="An exported key file."),
    repo: Path | None = RepoOpt,
) -> None:
    """Install an exported key file on this machine for the repository it belongs to."""
    from dr.errors import KeyMismatch
    from dr.store import keyfile
    from dr.store.repository import read_config

    config = read_config(repo_path(repo))
    doc = keyfile.read_key_file(source)
    if doc.get("repository") != config["id"]:
        raise KeyMismatch(
            f"{source} belongs to repository {doc.get('repository')}, not {config['id']}"
        )
    target = keyfile.key_path(str(config["id"]))
    keyfile.write_key_file(target, doc)
    console.print(f"Installed key for repository {config['id']} at {target}")


def _listing_rows(repo: Repository, set_name: str | None) -> list[dict[str, Any]]:
    from dr.store.report import listing

    return listing(repo, set_name)


@app.command("ls")
def ls(
    set_name: str | None = typer.Option(None, "--set", "-s", help="Only this backup set."),
    repo: Path | None = RepoOpt,
    key_file: Path | None = KeyOpt,
    json_out: bool = JsonOpt,
) -> None:
    """List stored versions like the vendor's listing: full, [I] or [D], sizes, ratio."""
    from rich.table import Table

    with open_repo(repo, key_file) as r:
        rows = _listing_rows(r, set_name)
    if json_out:
        emit_json(rows)
        return
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for title in ("version", "", "set", "date (UTC)", "size", "stored", "saved"):
        table.add_column(title, no_wrap=True)
    for row in rows:
        table.add_row(
            row["id"],
            row["mark"],
            row["set"],
            row["started"][:16].replace("T", " "),
            _human(row["size"]),
            _human(row["stored"]),
            f"[{row['saved_percent']}%]",
        )
    console.print(table)


def check_restore_target(to: Path) -> None:
    """--to must be a directory or not exist yet (one clear line otherwise)."""
    from dr.errors import ParameterError

    if to.exists() and not to.is_dir():
        raise ParameterError(
            f"--to {to}: exists and is not a directory",
            hint="restore into a new or existing directory; nothing was written",
        )


@app.command("restore")
def restore(
    version: str = typer.Argument(..., help="Version id (see `dr store ls`)."),
    to: Path = typer.Option(..., "--to", help="Directory to restore into (created if needed)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace files of the version already in the directory."
    ),
    repo: Path | None = RepoOpt,
    key_file: Path | None = KeyOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Restore one version; every file's SHA-256 is checked before it is put in place.

    Paths that would land outside --to are refused. A file of the version already in --to
    is refused (nothing is written) unless --overwrite.
    """
    from dr.store.restore import restore_version

    check_restore_target(to)
    with open_repo(repo, key_file) as r:
        manifest = r.read_manifest(version)
        with byte_progress("restoring", manifest["size"], quiet=json_out) as tick:
            restore_version(r, version, to, tick, overwrite=overwrite)
    files = [f["path"] for f in manifest["files"]]
    if json_out:
        emit_json({"version": version, "to": str(to), "files": files, "sha256_checked": True})
        return
    console.print(f"Restored {len(files)} files of {version} into {to} (SHA-256 checked).")


@app.command("verify")
def verify(
    read_data: bool = typer.Option(
        False, "--read-data", help="Also read and authenticate every pack (slow, thorough)."
    ),
    repo: Path | None = RepoOpt,
    key_file: Path | None = KeyOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Check the repository; name every version that can no longer be restored."""
    from dr.errors import IntegrityError
    from dr.store.lock import locked
    from dr.store.report import stored_bytes
    from dr.store.verify import verify as run_verify

    with open_repo(repo, key_file) as r, locked(r.root, exclusive=False, operation="verify"):
        total = stored_bytes(r) if read_data else 0
        with byte_progress("reading packs", total, quiet=json_out or not read_data) as tick:
            report = run_verify(r, read_data=read_data, progress=tick)
        _verify_catalog(r, report)
    if json_out:
        emit_json(report.to_dict())
    else:
        _print_verify(report, read_data)
    if not report.ok:
        raise IntegrityError(
            f"{len(report.damaged_versions)} damaged version(s): "
            + ", ".join(report.damaged_versions or ["none"])
            + (f"; {len(report.damaged_packs)} damaged pack(s)" if report.damaged_packs else "")
            + (f"; {len(report.catalog_problems)} catalog run(s) without their version"
               if report.catalog_problems else "")
            + ("; the repository config is not intact" if report.config_problems else ""),
            hint="restore an undamaged version; `dr store repair-index` if index files are lost",
        )  # fmt: skip


def _verify_catalog(repo: Repository, report: Any) -> None:
    """Cross-check the workspace catalog: record versions it lacks, name runs it has in
    excess (their version is gone). Nothing is marked expired here: `dr store prune` does."""
    from dr.store.reconcile import reconcile

    with _prune_catalog() as catalog:
        if catalog is None or not _is_workspace_repository(repo):
            return
        drift = reconcile(catalog, repo, mark=False)
    for _key, what in sorted(drift.missing_versions.items()):
        report.catalog_problems.append(f"catalog run {what}: its version is not in the repository")
    if drift.recorded:
        report.warnings.append(
            f"recorded {drift.recorded} version(s) the catalog did not list: "
            + ", ".join(sorted(drift.unrecorded))
        )


def _print_verify(report: Any, read_data: bool = False) -> None:
    for vid, problems in sorted(report.versions.items()):
        if problems:
            console.print(f"[red]DAMAGED[/] {vid}: {problems[0]}")
        else:
            console.print(f"[green]ok[/]      {vid}")
    for name, why in report.damaged_index_files.items():
        console.print(f"[red]DAMAGED[/] index file {name[:16]}: {why}")
    for name, why in report.damaged_packs.items():
        console.print(f"[red]DAMAGED[/] pack {name[:16]}: {why}")
    if report.unindexed_packs:
        console.print(
            f"{len(report.unindexed_packs)} pack(s) from interrupted backups; `dr store prune` "
            "removes them"
        )
    for problem in report.config_problems:
        console.print(f"[red]DAMAGED[/] config: {problem}")
    for problem in report.catalog_problems:
        console.print(f"[red]MISSING[/] {problem}")
    for warning in report.warnings:
        console.print(f"[yellow]note[/]    {warning}")
    versions = len(report.versions)
    damaged = len(report.damaged_versions)
    if not versions:
        console.print("the repository holds no version yet: nothing to verify (a backup "
                      "stores one: `dr backup run SET`)")  # fmt: skip
    elif report.ok:
        read = " and every pack read" if read_data else ""
        console.print(f"all {versions} version(s) restorable{read}", highlight=False)
    else:
        console.print(f"{damaged} of {versions} version(s) damaged", highlight=False)


@app.command("prune")
def prune(
    keep_last: int | None = typer.Option(
        None, "--keep-last", min=1, help="Override retention: keep the last N versions per set."
    ),
    keep_days: int | None = typer.Option(
        None, "--keep-days", min=0, help="Override retention: keep versions younger than D days."
    ),
    policy: bool = typer.Option(
        False,
        "--policy",
        help="Evaluate each set's retention policy now instead of the catalog's expiry marks.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would go and why; no change."),
    yes: bool = typer.Option(
        False,
        "--yes",
        "-y",
        help="Do not ask before removing versions prune chose itself (--keep-last, "
        "--keep-days, --policy, or no catalog); needed without a terminal.",
    ),
    repo: Path | None = RepoOpt,
    key_file: Path | None = KeyOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Remove the versions retention expired, then reclaim their space (exclusive lock).

    With a workspace catalog, the versions whose runs `dr retention apply` marked expired go
    (that command asked). Without one, with --policy, or with --keep-last / --keep-days
    (which replace retention for this prune), prune decides itself what goes: it says how
    many versions and asks first, at a terminal, unless --yes; without a terminal it needs
    --yes. A kept version always keeps the versions it is built on. Pruned versions' runs
    are marked expired in the catalog. Space of interrupted backups is reclaimed too.

    Example: dr store prune --keep-last 7 --dry-run
    """
    from dr.store.format import utcnow
    from dr.store.prune import prune as run_prune
    from dr.store.reconcile import mark_runs_expired, reconcile

    override = keep_last is not None or keep_days is not None
    with _prune_catalog() as catalog, open_repo(repo, key_file) as r:
        linked = catalog is not None and not dry_run and _is_workspace_repository(r)
        drift = reconcile(catalog, r) if linked else None
        view, policies = _retention_facts(catalog, use_marks=not (policy or override))
        if not (dry_run or yes) and (policy or override or catalog is None):
            preview = run_prune(r, at=utcnow(), keep_last=keep_last, keep_days=keep_days,
                                catalog=view, policies=policies, dry_run=True)  # fmt: skip
            _confirm_prune(preview, json_out)
        report = run_prune(
            r, at=utcnow(), keep_last=keep_last, keep_days=keep_days,
            catalog=view, policies=policies, dry_run=dry_run,
            before_delete=(lambda keys: mark_runs_expired(catalog, keys)) if linked else None,
        )  # fmt: skip
    _print_prune(report, dry_run, json_out, drift)


def _confirm_prune(preview: Any, json_out: bool) -> None:
    """Ask before removing versions prune chose itself; refuse without a terminal."""
    import sys

    from dr.errors import ParameterError

    going = sorted(d.id for d in preview.decisions if not d.keep)
    if not going:
        return
    shown = ", ".join(going[:3]) + (f" and {len(going) - 3} more" if len(going) > 3 else "")
    what = f"{len(going)} versions ({shown})"
    if json_out or not sys.stdin.isatty():
        raise ParameterError(
            f"store prune would remove {what}: nothing done",
            hint="pass --yes to confirm (--dry-run lists them and why)",
        )
    console.print(f"about to remove {what} from the repository", highlight=False)
    if not typer.confirm("remove them?", default=False):
        raise typer.Exit(1)


@contextmanager
def _prune_catalog() -> Iterator[Any]:
    """The workspace catalog when there is one (None otherwise), closed afterwards."""
    from dr.catalog import Catalog
    from dr.cli.common import workspace_path

    ws = workspace_path()
    if not ws.exists() or not ws.catalog_path.exists():
        yield None
        return
    with Catalog.open(ws.catalog_path) as catalog:
        yield catalog


def _is_workspace_repository(repo: Repository) -> bool:
    """Whether ``repo`` is the repository the workspace catalog records (only then are the
    two reconciled: another repository's versions are not this catalog's runs)."""
    from dr.workspace import Workspace, resolve_path

    ws = Workspace(resolve_path(STATE.workspace))
    recorded = ws.config().get("repository") if ws.exists() else None
    return bool(recorded) and Path(recorded).resolve() == repo.root.resolve()


def _retention_facts(catalog: Any, *, use_marks: bool) -> tuple[Any, dict[str, Any]]:
    """(the catalog's expiry marks or None, each registered set's retention policy)."""
    from dr.store.prune import CatalogView

    if catalog is None:
        return None, {}
    policies = {rec.name: rec.definition.retention for rec in catalog.sets()}
    if not use_marks:
        return None, policies
    rows = catalog.conn.execute("SELECT run_key, expired FROM runs").fetchall()
    view = CatalogView(
        expired=frozenset(k for k, e in rows if e), known=frozenset(k for k, _ in rows)
    )
    return view, policies


def _print_prune(report: Any, dry_run: bool, json_out: bool, drift: Any = None) -> None:
    if json_out:
        extra = {"catalog": drift.to_dict()} if drift is not None else {}
        emit_json({**report.to_dict(), "dry_run": dry_run, **extra})
        return
    for d in report.decisions:
        verdict = "keep  " if d.keep else ("would expire" if dry_run else "expire")
        console.print(f"{verdict} {d.id}  {'; '.join(d.reasons)}")
    if drift is not None:
        _print_drift(drift)
    if not dry_run:
        console.print(
            f"Expired {len(report.expired)} version(s); deleted {report.packs_deleted} and "
            f"repacked {report.packs_repacked} pack(s); freed {_human(report.bytes_freed)}."
        )


def _print_drift(drift: Any) -> None:
    """What reconciling the catalog with the repository found and did."""
    if drift.marked_expired:
        console.print(
            f"Catalog: marked {drift.marked_expired} run(s) expired whose version was already "
            "gone from the repository (an earlier prune was interrupted)"
        )
    elif drift.missing_versions:
        for _key, what in sorted(drift.missing_versions.items()):
            console.print(
                f"[red]MISSING[/] catalog run {what}: its version is not in the repository"
            )
    if drift.recorded:
        console.print(
            f"Catalog: recorded {drift.recorded} version(s) it did not list (a backup was "
            "interrupted after storing them)"
        )


@app.command("stats")
def stats(
    repo: Path | None = RepoOpt, key_file: Path | None = KeyOpt, json_out: bool = JsonOpt
) -> None:
    """Sizes of the repository: versions, packs, blobs, deduplication and compression."""
    from dr.store.report import statistics

    with open_repo(repo, key_file) as r:
        data = statistics(r)
    if json_out:
        emit_json(data)
        return
    rows = stats_rows(data)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        console.print(f"{label:<{width}}  {value}", highlight=False, soft_wrap=True)


# What `dr store stats` calls each figure; --json keeps the keys of dr.store.report.
_STATS_LABELS = {
    "repository": "repository",
    "id": "id",
    "versions": "versions",
    "sets": "backup sets",
    "original_bytes": "original size",
    "stored_bytes": "stored size",
    "ratio": "original : stored",
    "packs": "packs",
    "index_files": "index files",
    "chunks": "chunks",
    "super_blocks": "super blocks",
    "block_maps": "block maps",
}


def stats_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The statistics as a person reads them: labels, sizes in units, a ratio or n/a."""
    rows = []
    for key, value in data.items():
        label = _STATS_LABELS.get(key, key.replace("_", " "))
        if key.endswith("_bytes"):
            shown = f"{_human(value)} ({value:,} bytes)"
        elif key == "ratio":
            shown = f"{value:.2f} : 1" if value is not None else "n/a (nothing stored yet)"
        else:
            shown = str(value)
        rows.append((label, shown))
    return rows


@app.command("repair-index")
def repair_index(
    repo: Path | None = RepoOpt, key_file: Path | None = KeyOpt, json_out: bool = JsonOpt
) -> None:
    """Rebuild the index from the headers every pack carries (after index files are lost)."""
    from dr.store.repair import rebuild_index

    with open_repo(repo, key_file) as r:
        report = rebuild_index(r)
    if json_out:
        emit_json(report.to_dict())
        return
    console.print(f"Indexed {report.blobs_indexed} blobs from {report.packs_read} packs.")
    for name, why in report.unreadable_packs.items():
        console.print(f"[red]unreadable[/] pack {name[:16]}: {why}")


@app.command("rebuild-catalog")
def rebuild_catalog(
    repo: Path | None = RepoOpt, key_file: Path | None = KeyOpt, json_out: bool = JsonOpt
) -> None:
    """Recreate the workspace catalog's runs and artifacts from the repository alone (E3)."""
    from dr.catalog import Catalog
    from dr.cli.common import workspace_path
    from dr.store.catalog_link import rebuild
    from dr.store.repair import catalog_documents
    from dr.workspace import init as init_workspace

    with open_repo(repo, key_file) as r:
        docs = catalog_documents(r)
        root = r.root
    ws = workspace_path()
    if not ws.exists():
        init_workspace(ws.root)
        ws.update_config(repository=str(root.resolve()))
    with Catalog.open(ws.catalog_path) as catalog:
        added, skipped = rebuild(catalog, docs)
    if json_out:
        emit_json({"runs_added": added, "runs_present": skipped, "catalog": str(ws.catalog_path)})
        return
    console.print(f"Recorded {added} run(s) ({skipped} already present) in {ws.catalog_path}.")
