"""Between the store and the catalog: admit a run before it is stored, record it after.

The Exchange backup rules are checked BEFORE anything is written, so a refused incremental
costs nothing and leaves no trace; the run is recorded only once its manifest is committed.
If recording fails after that, the version is safe in the repository and
``dr store rebuild-catalog`` records it later (the manifest carries the same records).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dr.errors import ParameterError
from dr.store.format import iso, parse_iso

if TYPE_CHECKING:
    from dr.catalog import Catalog, NewArtifact, NewRun

LOG_KINDS = {"logs"}


def artifact_fields(rel: str, kind: str, storage_group: str | None) -> dict[str, Any]:
    """Catalog fields the store can derive from a file: its stream and log generation."""
    if storage_group is None or kind not in {"database", "stm", "logs", "checkpoint"}:
        return {}
    fields: dict[str, Any] = {"storage_group": storage_group}
    if kind in LOG_KINDS:
        from dr.exchange.logs import parse_log_file_name

        try:
            prefix, generation, _ = parse_log_file_name(rel.rsplit("/", 1)[-1])
        except ParameterError:
            return fields
        fields.update(log_prefix=prefix, first_gen=generation, last_gen=generation)
    return fields


def run_records(run: NewRun) -> dict[str, Any]:
    """A NewRun as the manifest carries it: every catalog field, so a rebuild loses nothing.

    The remote backup path knows facts the store cannot derive from files (database header
    state, Log Required, signatures, mailbox, item counts); they travel in this record.
    """
    fields = asdict(run)
    artifacts = [{k: v for k, v in a.items() if k != "line"} for a in fields.pop("artifacts")]
    fields.pop("line", None)
    fields["started"], fields["ended"] = iso(run.started), iso(run.ended)
    return {"run": fields, "artifacts": artifacts}


def new_run(records: dict[str, Any], *, ended: datetime | None = None) -> NewRun:
    """The catalog's NewRun for a manifest's records (``ended`` overrides for the pre-check)."""
    from dr.catalog import NewArtifact, NewRun

    run = records["run"]
    names = NewArtifact.__dataclass_fields__
    artifacts = tuple(
        NewArtifact(**{k: v for k, v in a.items() if k in names}) for a in records["artifacts"]
    )
    return NewRun(
        set_name=run["set_name"],
        host=run["host"],
        backup_type=run["backup_type"],
        started=parse_iso(run["started"]),
        ended=ended or parse_iso(run["ended"]),
        status=run.get("status", "success"),
        error=run.get("error"),
        source=run.get("source", "dr"),
        compression=run.get("compression"),
        artifacts=artifacts,
    )


def admit(catalog: Catalog, run: NewRun) -> None:
    """Raise the catalog's RuleViolation if recording ``run`` would be refused; write nothing."""
    from dr.catalog import admission

    admission.admit_run(
        admission.Histories(catalog.conn), run, lambda r: f"set {r.set_name} on {r.host}"
    )


def record(catalog: Catalog, records: dict[str, Any]) -> int:
    """Record a committed version; returns the catalog's run id."""
    return catalog.record_run(new_run(records)).id


def rebuild(catalog: Catalog, documents: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Record every version's runs (oldest first); registers sets the catalog lacks."""
    from dr.model.sets import BackupSet

    docs = list(documents)
    known = {s.name for s in catalog.sets()}
    for doc in docs:
        name = doc["run"]["set_name"]
        if name not in known:
            definition = doc.get("set") or {
                "name": name,
                "host": doc["run"]["host"],
                "type": "files",
            }
            catalog.register_set(BackupSet.model_validate(definition))
            known.add(name)
    added, skipped, _, _ = catalog.record_runs([new_run(d) for d in docs])
    return added, skipped


def artifacts_of(records: dict[str, Any]) -> list[NewArtifact]:
    return list(new_run(records).artifacts)
