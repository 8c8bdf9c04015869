"""Importing backup runs made by other tools (FEATURES A12): JSON, CSV, wbadmin.

An import is all or nothing: every record is read and checked first (shape, times, the
inventory's hosts, storage groups and databases, the set), every problem is reported with
its file:line and field, and only a file without problems is recorded, in one transaction
that also applies the Exchange backup rules. Runs already in the catalog (same set, host,
start and type) are skipped, so importing a file twice changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dr.catalog.importers import csv_manifest, json_manifest, wbadmin
from dr.catalog.importers.records import RawRun, fail, to_new_run, validate_run
from dr.catalog.importers.resolve import make_resolver
from dr.catalog.model import ImportReport, NewRun, SetRecord
from dr.errors import ManifestError, ParameterError, Problem

if TYPE_CHECKING:
    from dr.catalog.catalog import Catalog
    from dr.model.inventory import Inventory

FORMATS = ("json", "csv", "wbadmin")


def detect_format(path: Path, text: str) -> str:
    """From the extension, else from the content."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("json", "csv"):
        return suffix
    head = text.lstrip()
    if head.startswith(("[", "{")):
        return "json"
    if wbadmin._IDENT.search(text) and "run_id" not in text.partition("\n")[0]:
        return "wbadmin"
    if "run_id" in text.partition("\n")[0]:
        return "csv"
    raise ManifestError(
        f"{path}: cannot tell the format of this file",
        hint="pass --format json, csv or wbadmin",
    )


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: no such file", hint="check the path") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{path}: not UTF-8 text (byte {exc.start})",
            hint="save the manifest as UTF-8 (wbadmin output: redirect with `> file.txt`, "
            "then convert with `Get-Content f.txt | Set-Content -Encoding UTF8 g.txt`)",
        ) from exc
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from exc


def import_file(
    catalog: Catalog,
    path: Path,
    inventory: Inventory | None,
    fmt: str | None = None,
    *,
    host: str | None = None,
    set_name: str | None = None,
) -> ImportReport:
    text = read_text(path)
    fmt = fmt or detect_format(path, text)
    if fmt not in FORMATS:
        raise ParameterError(f"unknown format {fmt!r}", hint="use json, csv or wbadmin")
    registered = catalog.sync_sets(inventory.backup_sets) if inventory is not None else []
    file = str(path)
    raws = _read(catalog, fmt, text, file, host, set_name)
    runs = _check(catalog, raws, inventory, file)
    added, skipped, artifacts, copies = catalog.record_runs(
        runs, where=lambda run: f"{file}:{run.line}"
    )
    return ImportReport(
        file=file,
        format=fmt,
        runs_added=added,
        runs_skipped=skipped,
        artifacts_added=artifacts,
        sets_registered=tuple(registered),
        converted_to_copy=tuple(copies),
    )


def _read(
    catalog: Catalog, fmt: str, text: str, file: str, host: str | None, set_name: str | None
) -> list[RawRun]:
    if fmt == "json":
        return json_manifest.read(text, file)
    if fmt == "csv":
        return csv_manifest.read(text, file)
    if host is None:
        raise ParameterError(
            "wbadmin output does not say which server it came from",
            hint="pass --host SERVER (the machine `wbadmin get versions` ran on)",
        )
    versions = wbadmin.parse(text, file)
    bare_metal = any("bare metal" in c.lower() for v in versions for c in v.can_recover)
    chosen = _wbadmin_set(catalog.sets(), host, set_name, bare_metal)
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


def _check(
    catalog: Catalog, raws: list[RawRun], inventory: Inventory | None, file: str
) -> list[NewRun]:
    resolve = make_resolver(inventory)
    sets = {s.name: s for s in catalog.sets()}
    runs: list[NewRun] = []
    problems: list[Problem] = []
    for raw in raws:
        model, found = validate_run(raw, file)
        if model is not None:
            found = _set_problems(model.set, model.host, sets, raw, file)
            run, more = to_new_run(model, raw, resolve, file) if not found else (None, [])
            found += more
            if run is not None:
                runs.append(run)
        problems.extend(found)
    if problems:
        raise fail(problems, file)
    return runs


def _set_problems(
    name: str, host: str, sets: dict[str, SetRecord], raw: RawRun, file: str
) -> list[Problem]:
    record = sets.get(name)
    if record is None:
        message = (
            f"unknown backup set {name!r}: declare it under backup_sets in the inventory "
            "or create it with `dr set add`"
        )
        return [Problem(message, file, raw.record.line_of("set"), field="set")]
    if record.definition.host.casefold() != host.casefold():
        message = f"set {name!r} belongs to host {record.definition.host}, not {host}"
        return [Problem(message, file, raw.record.line_of("host"), field="host")]
    return []
