"""Importing backup runs made by other tools (FEATURES A12): JSON, CSV, wbadmin.

An import is all or nothing and runs in one transaction (for a large manifest on a machine
with two cores, written by a child process while this one reads: :mod:`dr.catalog.writer`).
The file is read run by run (memory does not grow with it); each record is checked (shape,
times, the inventory's hosts, storage groups and databases, the set) and, while no record
has been bad, recorded in batches under the Exchange backup rules. A bad record stops the
recording but not the reading, so every problem is reported with its file:line and field;
then the transaction is rolled back and nothing of the file remains. Runs already in the
catalog (same set, host, start and type) are skipped, so importing a file twice changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dr.catalog import writer
from dr.catalog.importers import csv_manifest, json_manifest, wbadmin
from dr.catalog.importers.records import RawRun, fail, to_new_run
from dr.catalog.importers.resolve import Resolver
from dr.catalog.importers.source import Progress, Source
from dr.catalog.loader import Loader, Prepared
from dr.catalog.model import ImportReport, SetRecord
from dr.catalog.store import cycle_collection_paused, transaction
from dr.errors import ManifestError, ParameterError, Problem

if TYPE_CHECKING:
    from dr.catalog.catalog import Catalog
    from dr.model.inventory import Inventory

FORMATS = ("json", "csv", "wbadmin")
#: Reporting stops after this many bad records: enough to see the pattern, bounded memory.
MAX_PROBLEMS = 200


def detect_format(path: Path, head: str) -> str:
    """From the extension, else from the start of the content."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("json", "csv"):
        return suffix
    first_line = head.partition("\n")[0]
    if head.lstrip().startswith(("[", "{")):
        return "json"
    if "run_id" in first_line:
        return "csv"
    if wbadmin.IDENTIFIER.search(head) or "wbadmin" in head.casefold():
        return "wbadmin"
    raise ManifestError(
        f"{path}: cannot tell the format of this file",
        hint="pass --format json, csv or wbadmin",
    )


def import_file(
    catalog: Catalog,
    path: Path,
    inventory: Inventory | None,
    fmt: str | None = None,
    *,
    host: str | None = None,
    set_name: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    source = Source(path, progress)
    fmt = fmt or detect_format(path, source.head())
    if fmt not in FORMATS:
        raise ParameterError(f"unknown format {fmt!r}", hint="use json, csv or wbadmin")
    registered = catalog.sync_sets(inventory.backup_sets) if inventory is not None else []
    file = str(path)
    sets = {s.name: s for s in catalog.sets()}
    resolve = Resolver(inventory)
    raws = _read(catalog, fmt, source, file, host, set_name, sets, resolve)
    where = _where(file)
    if writer.wanted(catalog.path, source.size):
        with writer.ProcessWriter(catalog.path) as child, cycle_collection_paused():
            loader = Loader(catalog.conn, where, refuse_repeats=True, writer=child)
            _load(raws, loader, sets=sets, resolve=resolve, file=file)
    else:
        with transaction(catalog.conn), cycle_collection_paused():
            loader = Loader(catalog.conn, where, refuse_repeats=True, bulk=True)
            _load(raws, loader, sets=sets, resolve=resolve, file=file)
    return ImportReport(
        file=file,
        format=fmt,
        runs_added=loader.added,
        runs_skipped=loader.skipped,
        artifacts_added=loader.artifacts,
        sets_registered=tuple(registered),
        converted_to_copy=tuple(loader.converted),
    )


def _load(
    raws: Iterable[RawRun | Prepared],
    loader: Loader,
    *,
    sets: dict[str, SetRecord],
    resolve: Resolver,
    file: str,
) -> None:
    """Check every record; record them while none is bad; report every bad one at the end."""
    problems: list[Problem] = []
    for raw in raws:
        if isinstance(raw, Prepared):
            if not problems:
                loader.add_prepared(raw)
            continue
        run, found = to_new_run(raw, sets, resolve, file)
        if found:
            problems.extend(found)
            if len(problems) >= MAX_PROBLEMS:
                break
        elif not problems and run is not None:
            loader.add(run)
    if problems:
        raise fail(problems, file)
    loader.finish()


def _where(file: str) -> Callable[[Prepared], str]:
    return lambda run: f"{file}:{run.line}"


def _read(
    catalog: Catalog,
    fmt: str,
    source: Source,
    file: str,
    host: str | None,
    set_name: str | None,
    sets: dict[str, SetRecord],
    resolve: Resolver,
) -> Iterable[RawRun | Prepared]:
    if fmt == "json":
        return json_manifest.read(source, file)
    if fmt == "csv":
        return csv_manifest.read(source, file, sets, resolve)
    if host is None:
        raise ParameterError(
            "wbadmin output does not say which server it came from",
            hint="pass --host SERVER (the machine `wbadmin get versions` ran on)",
        )
    versions = wbadmin.parse(source.text(), file)
    chosen = _wbadmin_set(catalog.sets(), host, set_name, wbadmin.bare_metal(versions))
    kind = "system-image" if chosen.definition.type == "system" else "system-state"
    return wbadmin.to_raw_runs(versions, chosen.definition.host, chosen.name, kind)


def _wbadmin_set(
    sets: list[SetRecord], host: str, set_name: str | None, bare_metal: bool
) -> SetRecord:
    if set_name is not None:
        found = [s for s in sets if s.name == set_name]
    else:
        wanted = ("system", "system-state") if bare_metal else ("system-state",)
        mine = [s for s in sets if s.definition.host.casefold() == host.casefold()]
        found = next(
            (
                [s for s in mine if s.definition.type == t]
                for t in wanted
                if any(s.definition.type == t for s in mine)
            ),
            [],
        )
    if len(found) != 1:
        raise ParameterError(
            f"cannot choose the backup set for wbadmin versions of {host}"
            + (f" ({len(found)} candidates)" if found else ""),
            hint="declare a system-state (or system) set for the host, or pass --set NAME",
        )
    return found[0]
