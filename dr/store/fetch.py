"""Fetch and check the backups a plan chose, named by catalog run (``run-1826``).

A plan names the backups it uses by catalog run. A run dr took itself lives in a repository
version (its artifacts' location is ``dr-store:<repository id>/<version id>/<path>``); a run
imported from another tool lives wherever that tool put it, and dr says so instead of
pretending it can fetch it. Plans name staging folders as the Exchange host sees them
(``T:\\DRTemp\\DB01\\staging``); where the orchestrator sees the same folder is configured in
the workspace (``staging:`` prefix map in config.yaml), since only the operator knows which
share is mounted where.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any

from dr.catalog.model import FACT_KINDS
from dr.errors import (
    ArtifactExpired,
    IntegrityError,
    NotFoundError,
    NotInRepository,
    ParameterError,
    StoreError,
)

if TYPE_CHECKING:
    from dr.catalog import Artifact, Catalog
    from dr.store.repository import Repository

_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:\\|\\\\)")
_STORE_PREFIX = "dr-store:"


@dataclass(frozen=True)
class Source:
    """One catalog run and where its bytes are."""

    run_id: int
    artifacts: tuple[Artifact, ...]
    repo_id: str | None  # set when dr's repository holds it
    version: str | None

    @property
    def name(self) -> str:
        return f"run-{self.run_id}"

    def locations(self) -> list[str]:
        return sorted({a.location or "(no location recorded)" for a in self.artifacts})


def parse_run(value: str) -> int:
    """``run-1826`` or ``1826`` → 1826."""
    text = value.strip()
    text = text[4:] if text.lower().startswith("run-") else text
    if not text.isdigit():
        raise ParameterError(
            f"{value!r} is not a catalog run", hint="plans name runs like run-1826"
        )
    return int(text)


def is_run(value: str) -> bool:
    """Whether ``value`` names a catalog run (``run-1826`` or ``1826``), not a repository
    version. A version id starts with its date (``20261122T104200Z-3fa1c2``), so a bare
    number of eight digits or more is a version prefix; ``run-N`` is always a run."""
    text = value.strip()
    if text.lower().startswith("run-"):
        return text[4:].isdigit()
    return text.isdigit() and len(text) < 8


def run_of_version(catalog: Catalog, repo: Repository, given: str) -> str:
    """The catalog run a repository version holds, the version named as `dr store restore`
    takes it: ``latest``, its id, or a unique prefix of it (:meth:`Repository.resolve_version`)."""
    try:
        vid = repo.resolve_version(given)
    except NotFoundError:
        raise ParameterError(
            f"{given!r} is not a catalog run (run-1826) nor a version in {repo.root}",
            hint="plans name runs like run-1826; `dr store ls` lists versions (an id, a "
            "unique prefix of 4 or more, or latest)",
        ) from None
    prefix = f"{_STORE_PREFIX}{repo.repo_id}/{vid}"
    row = catalog.conn.execute(
        "SELECT run_id FROM artifacts WHERE location = ? OR substr(location, 1, ?) = ? "
        "ORDER BY run_id DESC",
        (prefix, len(prefix) + 1, prefix + "/"),
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"version {vid} ({given}) is in the repository but no catalog run records it",
            hint="fetch it by hand with `dr store restore`, or name the run: `dr catalog list`",
        )
    return f"run-{row[0]}"


def sources(catalog: Catalog, runs: Sequence[str]) -> list[Source]:
    """The runs, with the repository version holding each (refuses unknown or expired)."""
    found: list[Source] = []
    for value in runs:
        run_id = parse_run(value)
        artifacts = tuple(
            a
            for a in catalog.artifacts(run_id=run_id, include_expired=True)
            if a.kind not in FACT_KINDS
        )
        if not artifacts:
            raise NotFoundError(
                f"run-{run_id} is not in the catalog (or recorded no artifacts)",
                hint="make the plan again: `dr plan ...` reads the catalog as it is now",
            )
        expired = [a.name for a in artifacts if a.expired]
        if expired:
            raise ArtifactExpired(
                f"run-{run_id} was expired by retention ({len(expired)} artifacts)",
                hint="make the plan again; it will choose backups that are kept",
            )
        found.append(Source(run_id, artifacts, *_stored_in(artifacts)))
    return found


def _stored_in(artifacts: Sequence[Artifact]) -> tuple[str | None, str | None]:
    versions = set()
    for artifact in artifacts:
        location = artifact.location or ""
        if not location.startswith(_STORE_PREFIX):
            return None, None
        repo_id, _, rest = location[len(_STORE_PREFIX) :].partition("/")
        versions.add((repo_id, rest.split("/", 1)[0]))
    if len(versions) != 1:
        return None, None
    return next(iter(versions))


def local_path(dest: str, staging: Mapping[str, Any], host: str | None = None) -> Path:
    """Where this machine sees ``dest``: a Windows path goes through the staging map.

    The map's entries are ``WINDOWS-PREFIX: local path``, for any host, or ``HOST: {prefix:
    local path}`` for one host's folders (two hosts both have a T: drive); a host's own
    entries are tried first."""
    if not _WINDOWS_PATH.match(dest) or os.name == "nt":
        return Path(dest)
    wanted = PureWindowsPath(dest)
    scoped = {str(k).lower(): v for k, v in staging.items() if isinstance(v, Mapping)}
    tables = [scoped.get(host.lower(), {})] if host else []
    tables.append({k: v for k, v in staging.items() if not isinstance(v, Mapping)})
    for table in tables:
        for prefix in sorted(table, key=len, reverse=True):
            base = PureWindowsPath(prefix)
            if wanted == base or base in wanted.parents:
                return Path(str(table[prefix])).joinpath(*wanted.relative_to(base).parts)
    raise ParameterError(
        f"{dest} is a folder on a Windows host; this machine does not know where it is mounted",
        hint="add it to the workspace config.yaml, e.g. staging: {'T:\\\\DRTemp': /mnt/ex-temp}",
    )


def fetch(repo: Repository, found: Sequence[Source], dest: Path) -> list[str]:
    """Restore every source into ``dest/run-N`` (SHA-256 of every file checked)."""
    from dr.store.restore import restore_version

    outside = [s for s in found if s.version is None]
    if outside:
        raise NotInRepository(_not_ours(outside, dest))
    lines = []
    for source in found:
        if source.repo_id != repo.repo_id:
            raise StoreError(
                f"{source.name} is in repository {source.repo_id}, not {repo.repo_id}",
                hint="pass --repo for that repository",
            )
        assert source.version is not None
        target = dest / source.name
        # an earlier fetch of this version was interrupted (the step is being run again):
        # finish it, replacing what it left by checked files
        # files an earlier fetch of the same version left (an earlier restore from this
        # staging folder) are kept when their SHA-256 is the version's; others are refused
        unfinished = _marker(target, source.version).exists()
        restore_version(repo, source.version, target, overwrite=unfinished, keep_identical=True)
        done = " (finished an interrupted fetch)" if unfinished else ""
        lines.append(f"{source.name}: version {source.version} restored into {target}{done}")
    return lines


def _marker(target: Path, version: str) -> Path:
    from dr.store.restore import MARKER_PREFIX

    return target / f"{MARKER_PREFIX}{version}"


def _not_ours(outside: Sequence[Source], dest: Path) -> str:
    parts = [f"{s.name} (at {', '.join(s.locations()[:3])})" for s in outside]
    return (
        f"not taken by dr, so not in its repository: {'; '.join(parts)} — copy each into "
        f"{dest}/run-N by hand, then mark the step done with `dr run ack`"
    )


def fetched(found: Sequence[Source], dest: Path) -> list[str]:
    """Problems with what is already in ``dest`` (empty: everything fetched and intact)."""
    problems: list[str] = []
    for source in found:
        if source.version is not None and _marker(dest / source.name, source.version).exists():
            problems.append(
                f"{source.name}: an earlier fetch into {dest / source.name} did not finish"
            )
        for artifact in source.artifacts:
            rel = _relative(artifact)
            if rel is None or artifact.sha256 is None:
                continue
            path = dest / source.name / rel
            if not path.is_file():
                problems.append(f"{source.name}: {rel} is missing")
            elif _sha256(path) != artifact.sha256:
                problems.append(f"{source.name}: {rel} does not match its SHA-256")
    return problems


def _relative(artifact: Artifact) -> str | None:
    location = artifact.location or ""
    if location.startswith(_STORE_PREFIX):
        parts = location[len(_STORE_PREFIX) :].split("/", 2)
        return parts[2] if len(parts) == 3 else None
    return PureWindowsPath(artifact.name).name if artifact.name else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_chain(
    catalog: Catalog, repo: Repository | None, found: Sequence[Source], logs: tuple[int, int] | None
) -> list[str]:
    """Problems with a chain before a restore uses it: missing log generations in the range
    the plan replays, and damaged repository versions. Empty means ready."""
    problems = _log_problems(found, logs) if logs else []
    for source in found:
        if source.version is None or repo is None:
            continue
        problems += [f"{source.name}: {p}" for p in _version_problems(repo, source.version)]
    return problems


def _log_problems(found: Sequence[Source], logs: tuple[int, int]) -> list[str]:
    """Holes in the generations the backups hold within the range to replay. Generations
    past the backups' last one may come from the logs still on the server: those are
    checked on the host (`verify-log-sequence`) before replay."""
    from dr.exchange.rules import LogRange, check_sequence

    first, last = logs
    ranges = [
        LogRange(a.log_prefix or "", a.first_gen, a.last_gen, a.log_signature)
        for s in found
        for a in s.artifacts
        if a.holds_logs and a.first_gen is not None and a.last_gen is not None
    ]
    bounded = [r for r in ranges if r.last >= first and r.first <= last]
    if first > last or not bounded:
        return []
    problems = [f"log {g.describe()} missing" for g in check_sequence(bounded)]
    if min(r.first for r in bounded) > first:
        problems.append(f"no backup holds generation {first}, where replay starts")
    return problems


def _version_problems(repo: Repository, version: str) -> list[str]:
    from dr.store.verify import version_problems

    try:
        manifest = repo.read_manifest(version)
    except NotFoundError:
        return [f"version {version} is not in the repository (deleted, or the repository lost it)"]
    except (StoreError, OSError) as exc:
        return [f"version {version}: {getattr(exc, 'message', exc)}"]
    repo.reload_index()
    return version_problems(repo, manifest, {})


def require_fetched(found: Sequence[Source], dest: Path) -> None:
    problems = fetched(found, dest)
    if problems:
        raise IntegrityError(f"not fetched yet: {problems[0]}", details={"problems": problems})
