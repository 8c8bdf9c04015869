"""`dr store fetch` and `dr store check-chain`: the store's side of a restore plan.

Plans name backups by catalog run (`run-1826`); these commands are what the step library's
`fetch-artifacts` and `check-backup-chain` kinds run on the orchestrator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dr.cli.common import console, emit_json, workspace
from dr.cli.store import JsonOpt, KeyOpt, RepoOpt, app, check_restore_target, open_repo, repo_path

RUNS = typer.Argument(..., help="Catalog runs, as plans name them: run-1826 run-1828 ...")
FETCHED = typer.Argument(
    ...,
    help="Catalog runs, as plans name them (run-1826 run-1828 ...), or repository versions as "
    "`dr store restore` takes them: latest, an id, or a unique prefix of 4 or more.",
)


def staging_map() -> dict[str, Any]:
    """The workspace's `staging:` map (config.yaml): where this machine sees hosts' folders."""
    mapping = workspace().config().get("staging") or {}
    return {str(k): (dict(v) if isinstance(v, dict) else str(v)) for k, v in dict(mapping).items()}


def _repository_if_any(repo: Path | None, key_file: Path | None) -> Any:
    from dr.errors import ParameterError

    try:
        repo_path(repo)
    except ParameterError:
        return None
    return open_repo(repo, key_file)


@app.command("fetch")
def fetch_command(
    runs: list[str] = FETCHED,
    to: str = typer.Option(..., "--to", help="Staging folder, as the plan names it."),
    host: str | None = typer.Option(
        None, "--host", help="The host whose folder TO is (its entries in `staging:` first)."
    ),
    check: bool = typer.Option(
        False, "--check", help="Only check that everything is already there and intact."
    ),
    repo: Path | None = RepoOpt,
    key_file: Path | None = KeyOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Restore the versions holding these runs into TO/run-N, checking every SHA-256.

    A run taken by another tool is not in dr's repository: the command says where its files
    are and stops, so the step pauses for a person to copy them. A Windows staging folder is
    found through the workspace's `staging:` map (config.yaml), e.g.
    `staging: {'T:\\DRTemp': /mnt/ex2016-temp}`, or per host:
    `staging: {EX2016: {'T:\\DRStaging': /mnt/ex2016-staging}}`.

    `latest` is the newest version in the repository (by start time), fetched into
    TO/run-N under the catalog run that recorded it; so is a version id or its prefix.

    Example: dr store fetch run-12 run-14 --to 'T:\\DRStaging\\DB01' --host EX2016

    Example: dr store fetch latest --to /srv/staging
    """
    from dr.catalog import Catalog
    from dr.store import fetch

    dest = fetch.local_path(to, staging_map(), host)
    check_restore_target(dest)
    with Catalog.open(workspace().catalog_path) as catalog:
        runs = _as_runs(catalog, runs, repo, key_file)
        found = fetch.sources(catalog, runs)
    if check:
        fetch.require_fetched(found, dest)
        lines = [f"{s.name}: fetched and intact in {dest / s.name}" for s in found]
    else:
        with open_repo(repo, key_file) as r:
            lines = fetch.fetch(r, found, dest)
    _report(lines, json_out, "fetched")


def _as_runs(catalog: Any, names: list[str], repo: Path | None, key_file: Path | None) -> list[str]:
    """Catalog runs as given; versions (latest, an id or a prefix) as the runs holding them."""
    from dr.store import fetch

    if all(fetch.is_run(n) for n in names):
        return names
    with open_repo(repo, key_file) as r:
        return [n if fetch.is_run(n) else fetch.run_of_version(catalog, r, n) for n in names]


@app.command("check-chain")
def check_chain_command(
    runs: list[str] = RUNS,
    logs: str = typer.Option(
        None, "--logs", help="Generations the restore replays, FIRST-LAST (decimal)."
    ),
    repo: Path | None = RepoOpt,
    key_file: Path | None = KeyOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Check a plan's chain before anything changes: every run still in the catalog and not
    expired, no generation missing in the range to replay, and the repository versions
    holding them intact. Exit 0 when ready; exit 6 naming each problem otherwise.

    Example: dr store check-chain run-12 run-14 --logs 6-7
    """
    from dr.catalog import Catalog
    from dr.errors import IntegrityError
    from dr.store import fetch

    span = _span(logs) if logs else None
    with Catalog.open(workspace().catalog_path) as catalog:
        found = fetch.sources(catalog, runs)
        stored = any(s.version for s in found)
        r = _repository_if_any(repo, key_file) if stored else None
        try:
            problems = fetch.check_chain(catalog, r, found, span)
        finally:
            if r is not None:
                r.close()
    if problems:
        raise IntegrityError(
            f"the chain is not ready: {'; '.join(problems[:5])}", details={"problems": problems}
        )
    _report([f"{len(found)} runs ready" + (f", generations {logs}" if logs else "")], json_out)


def _span(text: str) -> tuple[int, int]:
    from dr.errors import ParameterError

    first, sep, last = text.partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise ParameterError(f"--logs {text!r}: write FIRST-LAST, e.g. 254298-254303")
    return int(first), int(last)


def _report(lines: list[str], json_out: bool, key: str = "ok") -> None:
    if json_out:
        emit_json({key: True, "lines": lines})
        return
    for line in lines:
        console.print(line, highlight=False)
