"""A backup set's procedure on its host, as an engine plan (pure: no I/O).

``backup_plan(inventory, set, backup_type)`` returns a :class:`engine.plan.Plan` of the
step kinds in ``runbooks/backup.yaml`` for the set's host and platform:

* an Exchange set, per covered storage group (one log stream; a database on 2010+):
  ``check-circular-logging`` → ``list-logs`` → the backup → ``collect-backup-files``.
  On 2007+ the backup is ``vss-backup`` (full / copy, the database with its logs) then
  ``dump-database-header`` on the copied database, or ``log-backup`` (incremental /
  differential, logs only). On 2000/2003 it is ``ntbackup-online`` for every type.
  Streams run in parallel; one VSS or NTBackup job at a time per host.
* system state, IIS metabase, KMS and CA sets: their one backup step, then
  ``collect-backup-files``.

Every step writes under ``<temp folder>\\dr-backup\\<set>\\<part>`` on the host; ``facts``
tells :mod:`dr.backup.run` which step printed what and where each part's files are.
Secrets appear only as references (the CA certificate password's environment variable).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from dr.errors import ParameterError
from dr.model.inventory import Inventory, SecretRef, Server, StorageGroup, install_path_of
from dr.model.refs import covered_storage_groups
from dr.model.sets import BackupSet
from dr.suggest import Placeholder, suggest
from engine.plan import Plan, Step, Target
from engine.plan import SecretRef as StepSecret

BackupType = Literal["full", "copy", "incremental", "differential"]
BACKUP_TYPES: tuple[BackupType, ...] = ("full", "copy", "incremental", "differential")
SUPPORTED_SETS = ("exchange", "system-state", "iis-metabase", "kms", "ca")
CA_SECRET = "ca-certificate-password"


def backup_plan(inv: Inventory, bset: BackupSet, backup_type: BackupType) -> Plan:
    """The plan that takes a ``backup_type`` backup of ``bset`` on its host."""
    server = _server(inv, bset)
    _check_type(bset, backup_type)
    if bset.type == "exchange":
        steps, parts = _exchange_steps(server, bset, backup_type)
    else:
        steps, parts = _single_steps(inv, server, bset)
    facts = {
        "set": bset.name,
        "set_type": bset.type,
        "host": server.name,
        "backup_type": backup_type,
        "parts": parts,
    }
    return Plan(
        scenario="backup",
        target=Target(what=f"backup set {bset.name} on {server.name}"),
        created_from=_digest(bset, server, backup_type),
        facts=facts,
        steps=steps,
    ).sealed()


def _server(inv: Inventory, bset: BackupSet) -> Server:
    try:
        return inv.server(bset.host)
    except KeyError:
        raise ParameterError(
            f"set {bset.name}: host {bset.host!r} is not a server of the inventory",
            hint="fix the set's host, or add the server to the inventory",
        ) from None


def _check_type(bset: BackupSet, backup_type: str) -> None:
    if backup_type not in BACKUP_TYPES:
        raise ParameterError(f"--type {backup_type!r}: use {', '.join(BACKUP_TYPES)}")
    if bset.type not in SUPPORTED_SETS:
        raise ParameterError(
            f"set {bset.name} is a {bset.type} set: `dr backup run` drives "
            f"{', '.join(SUPPORTED_SETS)} sets on their host",
            hint="store its files with "
            f"`{suggest('dr', 'backup', 'run', bset.name, '--from', Placeholder('PATH'))}`",
        )
    if bset.type != "exchange" and backup_type != "full":
        raise ParameterError(
            f"set {bset.name} ({bset.type}): only full backups are taken on the host; "
            "the store keeps later versions as in-file deltas"
        )


def _digest(bset: BackupSet, server: Server, backup_type: str) -> str:
    body = json.dumps(
        [bset.model_dump(mode="json"), server.model_dump(mode="json"), backup_type],
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _token(text: str) -> str:
    """A name as a step-id fragment: no spaces, nothing a reader would trip on."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def win_join(*parts: str) -> str:
    """Windows path join (the orchestrator may run on Linux)."""
    head, *rest = parts
    return "\\".join([head.rstrip("\\"), *(p.strip("\\") for p in rest)])


def temp_folder(server: Server, bset: BackupSet) -> str:
    folder = bset.temp_folder or server.temp_folder
    if not folder:
        raise ParameterError(
            f"set {bset.name}: no temporary folder for {server.name}",
            hint="set temp_folder on the set or the server in the inventory (A10: not on "
            "the system drive; 1.5 x the largest database on 2007)",
        )
    return win_join(folder, "dr-backup", _token(bset.name))


def platform_of(server: Server) -> dict[str, str]:
    platform = {"windows": server.windows_version}
    if server.exchange_version is not None:
        platform["exchange"] = str(server.exchange_version)
    return platform


# -- Exchange sets ---------------------------------------------------------------------------


def _exchange_steps(
    server: Server, bset: BackupSet, backup_type: BackupType
) -> tuple[list[Step], list[dict[str, Any]]]:
    if server.exchange_version is None:
        raise ParameterError(f"set {bset.name}: {server.name} runs no Exchange")
    groups = covered_storage_groups(server, bset.covers)
    if not groups:
        raise ParameterError(
            f"set {bset.name}: covers {bset.covers} selects no storage group of {server.name}"
        )
    base = temp_folder(server, bset)
    steps: list[Step] = []
    parts: list[dict[str, Any]] = []
    for sg in groups:
        stream_steps, part = _stream(server, sg, backup_type, win_join(base, _token(sg.name)))
        steps += stream_steps
        parts.append(part)
    return steps, parts


def _stream(
    server: Server, sg: StorageGroup, backup_type: BackupType, dest: str
) -> tuple[list[Step], dict[str, Any]]:
    if not sg.databases:
        raise ParameterError(f"{server.name}/{sg.name}: the storage group has no database")
    legacy = server.family == "legacy"
    if not legacy and len(sg.databases) > 1:
        raise ParameterError(
            f"{server.name}/{sg.name}: {len(sg.databases)} databases in one storage group; "
            "dr backs up one database per log stream on 2007+",
        )
    make = _StepMaker(server, f"{server.name}.{_token(sg.name)}")
    db = sg.databases[0]
    check = make("check-circular-logging", [], server=server.name, sg=sg.name, db=db.name,
                 backup_type=backup_type)  # fmt: skip
    listing = make("list-logs", [check.id], prefix=sg.log_prefix, log_path=sg.log_path,
                   install_path=install_path_of(server))  # fmt: skip
    counts = _count_steps(make, server, sg, listing.id)
    backup, header = _backup_steps(
        make, server, sg, backup_type, dest, [c.id for c in counts.values()] or [listing.id]
    )
    last = header or backup
    collect = make("collect-backup-files", [last.id], dest=dest)
    steps = [check, listing, *counts.values(), backup, *([header] if header else []), collect]
    part = _part(server, sg, dest, check, listing, header, collect, legacy)
    part["steps"]["counts"] = {key: step.id for key, step in counts.items()}
    return steps, part


def _count_steps(make: _StepMaker, server: Server, sg: StorageGroup, after: str) -> dict[str, Step]:
    """``mailbox-counts`` per database, just before the backup: the item count of every
    mailbox, recorded with the backup for drills to compare with (C1). Not on Exchange 2000
    (no Exchange_Mailbox WMI class) nor on a host without PowerShell."""
    if server.exchange_version is None or server.exchange_version < 2003:
        return {}
    from dr.planner.builder import _powershell_of

    if _powershell_of(server) == "none":
        return {}
    found = {}
    for db in sg.databases:
        key = f"{server.name}/{sg.name}/{db.name}"
        found[key] = make("mailbox-counts", [after], suffix=_token(db.name),
                          server=server.name, sg=sg.name, db=db.name)  # fmt: skip
    return found


def _backup_steps(
    make: _StepMaker,
    server: Server,
    sg: StorageGroup,
    backup_type: BackupType,
    dest: str,
    after: list[str],
) -> tuple[Step, Step | None]:
    if server.family == "legacy":
        step = make("ntbackup-online", after, server=server.name, sg=sg.name,
                    backup_type=backup_type, dest=dest)  # fmt: skip
        return step, None
    volumes = sorted({p[0].upper() for p in (sg.databases[0].edb, sg.log_path)})
    if backup_type in ("incremental", "differential"):
        step = make("log-backup", after, server=server.name, sg=sg.name,
                    backup_type=backup_type, prefix=sg.log_prefix, log_path=sg.log_path,
                    volumes=volumes, dest=dest)  # fmt: skip
        return step, None
    edb = sg.databases[0].edb
    step = make("vss-backup", after, server=server.name, sg=sg.name,
                db=sg.databases[0].name, backup_type=backup_type, edb=edb,
                log_path=sg.log_path, volumes=volumes, dest=dest)  # fmt: skip
    header = make("dump-database-header", [step.id], edb=win_join(dest, _basename(edb)),
                  install_path=install_path_of(server))  # fmt: skip
    return step, header


def _basename(windows: str) -> str:
    return windows.rstrip("\\").rsplit("\\", 1)[-1]


def _part(
    server: Server,
    sg: StorageGroup,
    dest: str,
    check: Step,
    listing: Step,
    header: Step | None,
    collect: Step,
    legacy: bool,
) -> dict[str, Any]:
    databases = [
        {
            "name": db.name,
            "key": f"{server.name}/{sg.name}/{db.name}",
            "files": [_basename(p) for p in (db.edb, db.stm) if p],
        }
        for db in sg.databases
    ]
    return {
        "name": _token(sg.name),
        "kind": "exchange",
        "storage_group": f"{server.name}/{sg.name}",
        "prefix": sg.log_prefix,
        "legacy": legacy,
        "dest": dest,
        "databases": databases,
        "steps": {
            "check": check.id,
            "list": listing.id,
            "header": header.id if header else None,
            "collect": collect.id,
        },
    }


class _StepMaker:
    """Steps of one part of the plan: ids ``<kind>.<part>``, the host's platform."""

    def __init__(self, server: Server, part: str) -> None:
        self.server, self.part = server, part

    def __call__(self, kind: str, needs: list[str], suffix: str = "", **params: Any) -> Step:
        host_lock = [f"host-backup:{self.server.name}"] if kind in _HOST_JOBS else []
        return Step(
            id=f"{kind}.{self.part}" + (f".{suffix}" if suffix else ""),
            kind=kind,
            host=self.server.name,
            params=params,
            platform=platform_of(self.server),
            needs=needs,
            resources=host_lock,
        )


_HOST_JOBS = frozenset(
    {"vss-backup", "log-backup", "ntbackup-online", "system-state-backup", "kms-export"}
)


# -- single-step sets ------------------------------------------------------------------------


def _single_steps(
    inv: Inventory, server: Server, bset: BackupSet
) -> tuple[list[Step], list[dict[str, Any]]]:
    dest = win_join(temp_folder(server, bset), bset.type)
    make = _StepMaker(server, server.name)
    step = _single_step(make, inv, server, bset, dest)
    collect = make("collect-backup-files", [step.id], dest=dest)
    part = {
        "name": bset.type,
        "kind": _ARTIFACT_KIND[bset.type],
        "dest": dest,
        "steps": {"collect": collect.id},
    }
    return [step, collect], [part]


_ARTIFACT_KIND = {
    "system-state": "system-state",
    "iis-metabase": "iis-metabase",
    "kms": "kms-database",
    "ca": "ca-database",
}


def _single_step(
    make: _StepMaker, inv: Inventory, server: Server, bset: BackupSet, dest: str
) -> Step:
    if bset.type == "system-state":
        return make("system-state-backup", [], server=server.name, dest=dest)
    if bset.type == "iis-metabase":
        return make("metabase-backup", [], server=server.name,
                    backup_name=f"dr-{_token(bset.name)}", dest=dest)  # fmt: skip
    if bset.type == "kms":
        install = server.install_path or r"C:\Program Files\Exchsrvr"
        return make("kms-export", [], server=server.name,
                    kms_path=win_join(install, "KMSDATA"), dest=dest)  # fmt: skip
    step = make("ca-backup", [], server=server.name, dest=dest)
    return step.model_copy(update={"secrets": [_ca_secret(inv, server)]})


def _ca_secret(inv: Inventory, server: Server) -> StepSecret:
    """The CA certificate password's reference: where it is kept, which variable holds it."""
    ref = _find_secret(inv.secrets, server.name)
    if ref is None:
        return StepSecret(
            name=CA_SECRET,
            location="not recorded in the inventory (add a ca-certificate-password secret)",
            env="DR_CA_CERTIFICATE_PASSWORD",
        )
    return StepSecret(
        name=CA_SECRET, location=ref.location, env=ref.env or "DR_CA_CERTIFICATE_PASSWORD"
    )


def _find_secret(secrets: list[SecretRef], host: str) -> SecretRef | None:
    kinds = [s for s in secrets if s.kind == CA_SECRET]
    same_host = [s for s in kinds if (s.host or "").lower() == host.lower()]
    return (same_host or [s for s in kinds if s.host is None] or [None])[0]
