"""Exchange 2000/2003 restores on a lab host: what NTBackup writes, and ``eseutil /cc``.

NTBackup has no command-line restore, so a runbook's NTBackup step is manual; the lab models
the operator's action (:func:`ntbackup_restore`, ``dr lab operator ntbackup-restore``) and
then the hard recovery the store or ``eseutil /cc`` performs (:func:`hard_recovery`), as the
Exchange Server 2003 Disaster Recovery Operations Guide describes them:

* a backup restore needs the store dismounted and "This database can be overwritten by a
  restore" set on it;
* the database files go to their place; the restored logs and ``restore.env`` go to a
  temporary folder, one per storage group — a ``restore.env`` of another group there makes
  the restore fail;
* "Last Restore Set" starts hard recovery at the end of the restore; otherwise
  ``eseutil /cc <temp>`` does: it replays the restore folder's logs and then the storage
  group's own log folder, or with ``/t`` only the restore folder's;
* a missing generation (-543) or a log of another stream (-530) stops recovery with the real
  JET error; after a successful hard recovery ``restore.env`` and the restored logs are gone.

The lab's ``restore.env`` is its own stand-in (a marker line and JSON), not Microsoft's binary
format: nothing but the lab and its own ``eseutil`` read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any

from dr.exchange import ese
from dr.lab import exstore
from dr.lab.hostsim import _ToolError

if TYPE_CHECKING:
    from dr.lab.exhost import ExchangeHost
    from dr.model.inventory import StorageGroup

__all__ = [
    "RESTORE_ENV", "RestoreEnv", "describe_restore_env", "esm_allow_restore", "esm_dismount",
    "esm_mount", "hard_recovery", "ntbackup_restore", "open_mailbox", "read_bkf",
]  # fmt: skip

RESTORE_ENV = "restore.env"
_ENV_MARK = "DR-LAB-RESTORE-ENV 1\n"
_BKF_MARK = b"DR-LAB-BKF 1\n"


@dataclass(frozen=True)
class RestoreEnv:
    """What ``restore.env`` tells hard recovery: the group, its logs, the databases restored."""

    storage_group: str
    prefix: str
    log_random: int
    databases: tuple[str, ...]
    first: int
    last: int
    backup_set: str

    def text(self) -> str:
        return _ENV_MARK + json.dumps(vars(self) | {"databases": list(self.databases)})

    @classmethod
    def parse(cls, text: str, where: str) -> RestoreEnv:
        if not text.startswith(_ENV_MARK):
            raise exstore.RecoveryError(-1, "JET_errInvalidParameter", "Invalid parameter", where)
        data = json.loads(text[len(_ENV_MARK) :])
        return cls(**{**data, "databases": tuple(data["databases"])})


def read_bkf(data: bytes) -> dict[str, bytes]:
    """The members of the lab's NTBackup media file, in order (``hostsim._container``)."""
    if not data.startswith(_BKF_MARK):
        raise _ToolError("The file is not a valid backup file (no NTBackup media header).", 1)
    out: dict[str, bytes] = {}
    pos = len(_BKF_MARK)
    while pos < len(data):
        end = data.index(b"\n", pos)
        name, size = data[pos:end].decode().rsplit("\t", 1)
        out[name] = data[end + 1 : end + 1 + int(size)]
        pos = end + 1 + int(size)
    return out


def ntbackup_restore(
    host: ExchangeHost,
    bkf: str,
    backup_set: str,
    temp: str,
    *,
    last_restore_set: bool,
    databases: list[str] | None = None,
) -> list[str]:
    """What NTBackup writes when the operator restores ``backup_set`` of ``bkf`` (the
    stores ticked: ``databases``, or every one in the set) with ``temp`` as the temporary
    location for log and patch files; returns the report lines."""
    media = host.fs.host_path(bkf)
    if not media.is_file():
        raise _ToolError(f"The backup file {bkf} could not be found (Tools → Catalog a backup "
                         "file names the .bkf to restore from).", 1)  # fmt: skip
    members = read_bkf(media.read_bytes())
    logs = {n: d for n, d in members.items() if n.lower().endswith(".log")}
    sg = _group_of(host, logs, members, host.fs.host_path(temp))
    restored = _databases_in(host, sg, members)
    if databases is not None:
        wanted = {d.lower() for d in databases}
        restored = [db for db in restored if db.name.lower() in wanted]
        if any(_databases_in(host, sg, members)) and len(restored) != len(wanted):
            raise _ToolError(f"The backup set holds no store named {sorted(wanted)!r} of "
                             f"{sg.name!r}.", 1)  # fmt: skip
    env_dir = host.fs.host_path(temp)
    _check_temp(env_dir, sg)
    for db in restored:
        _check_restorable(host, sg, db)
    env_dir.mkdir(parents=True, exist_ok=True)
    for db in restored:
        for windows in (db.edb, db.stm):
            if windows and PureWindowsPath(windows).name in members:
                target = host.path(windows)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(members[PureWindowsPath(windows).name])
    for name, data in logs.items():
        (env_dir / name).write_bytes(data)
    env = _merge_env(env_dir, sg, host, restored, logs, backup_set)
    (env_dir / RESTORE_ENV).write_text(env.text(), encoding="utf-8")
    report = [f"Restore of {sg.name} from {bkf} (set {backup_set!r}) completed: "
              f"{len(restored)} database(s), {len(logs)} log file(s) to {temp}"]  # fmt: skip
    if last_restore_set:
        done = hard_recovery(host, temp, play_forward=True)
        report.append(f"Last Restore Set: hard recovery replayed into {done}")
    host.save()
    return report


def esm_dismount(host: ExchangeHost, store: str) -> str:
    """Exchange System Manager → the store → **Dismount Store**: the other stores of the
    group stay mounted, the Information Store service keeps running."""
    sg, db = host.find_db(store)
    host.dismount(db.name)
    host.save()
    return f"{host.name}: {sg.name}/{db.name} dismounted"


def esm_allow_restore(host: ExchangeHost, store: str) -> str:
    """The store's **Properties → Database → This database can be overwritten by a
    restore** ticked (the attribute ``msExchPatchMDB``, KB 251409)."""
    sg, db = host.find_db(store)
    host.dbs[host.db_key(sg, db)].allow_file_restore = True
    host.save()
    return f"{host.name}: {sg.name}/{db.name} can be overwritten by a restore"


def esm_mount(host: ExchangeHost, store: str) -> str:
    """**Mount Store**: refused for a database that is not consistent (a restore still
    waiting for its hard recovery, or a crashed one), as the store refuses it."""
    sg, db = host.find_db(store)
    warnings = host.mount(db.name)
    host.save()
    return "; ".join([f"{host.name}: {sg.name}/{db.name} mounted", *warnings])


def open_mailbox(host: ExchangeHost, store: str) -> str:
    """What a person sees opening a mailbox of a mounted store: a message in it."""
    sg, db = host.find_db(store)
    if not host.dbs[host.db_key(sg, db)].mounted:
        raise _ToolError(f"The store {db.name!r} is not mounted: Outlook cannot open a "
                         "mailbox on it.", 1)  # fmt: skip
    held = exstore.contents(host.path(db.edb))
    if not held:
        return f"{host.name}: {db.name} is mounted and holds no message"
    one = max(held.values(), key=lambda m: m.key)
    return (f"{host.name}: {db.name} is mounted; {len(held)} messages; mailbox "
            f"{one.mailbox}, {one.folder}: {one.subject!r}")  # fmt: skip


def _group_of(
    host: ExchangeHost, logs: dict[str, bytes], members: dict[str, bytes], temp: Path
) -> Any:
    """The storage group a set belongs to. On the server it was taken on: by its logs'
    signature (each stream has its own). Restored to another server ("Restore To", an
    alternate-server recovery): the group whose stores have the set's names — the lab's
    media file carries the stores' file names — or, for a log-only set, the group the
    restore.env already in the temporary folder names (the full restored before it)."""
    for sg in host.groups():
        sig = host.streams[sg.name].sig
        for data in logs.values():
            header = ese.read_header(data)
            if isinstance(header, ese.LogHeader) and header.signature == sig:
                return sg
    names = {n.lower() for n in members}
    for sg in host.groups():
        if any(PureWindowsPath(db.edb).name.lower() in names for db in sg.databases):
            return sg
    if (temp / RESTORE_ENV).exists():
        env = RestoreEnv.parse((temp / RESTORE_ENV).read_text(encoding="utf-8"), str(temp))
        for sg in host.groups():
            if sg.name == env.storage_group:
                return sg
    raise _ToolError("The backup set belongs to no storage group of this server: restore "
                     "its full (with the stores) first, to a server whose storage group and "
                     "stores have the same names.", 1)  # fmt: skip


def _databases_in(host: ExchangeHost, sg: StorageGroup, members: dict[str, bytes]) -> list[Any]:
    return [db for db in sg.databases if PureWindowsPath(db.edb).name in members]


def _check_temp(temp: Path, sg: StorageGroup) -> None:
    """Each storage group needs a temporary folder of its own: another group's
    ``restore.env`` where this one would be written fails the restore."""
    path = temp / RESTORE_ENV
    if path.exists():
        found = RestoreEnv.parse(path.read_text(encoding="utf-8"), str(path))
        if found.storage_group != sg.name:
            raise _ToolError(f"The restore failed: {path.parent} already holds the restore.env "
                             f"of storage group {found.storage_group!r}. Give each storage group "
                             "its own temporary folder.", 1)  # fmt: skip


def _check_restorable(host: ExchangeHost, sg: StorageGroup, db: Any) -> None:
    state = host.dbs[host.db_key(sg, db)]
    if state.mounted:
        raise _ToolError(f"The restore failed: database {db.name!r} is mounted. Dismount it "
                         "in Exchange System Manager first.", 1)  # fmt: skip
    if host.version <= 2003 and not state.allow_file_restore:
        raise _ToolError(f"The restore failed: database {db.name!r} is not marked \"This "
                         "database can be overwritten by a restore\" (Properties → Database).",
                         1)  # fmt: skip


def _merge_env(env_dir: Path, sg: StorageGroup, host: ExchangeHost, restored: list[Any],
               logs: dict[str, bytes], backup_set: str) -> RestoreEnv:  # fmt: skip
    """A later set (an incremental after the full) adds its logs to the same restore.env."""
    gens = sorted(_generation(d) for d in logs.values())
    old = None
    if (env_dir / RESTORE_ENV).exists():
        old = RestoreEnv.parse((env_dir / RESTORE_ENV).read_text(encoding="utf-8"), "restore.env")
    names = tuple(sorted({*(old.databases if old else ()), *(d.name for d in restored)}))
    first = min([*gens, *([old.first] if old else [])], default=0)
    last = max([*gens, *([old.last] if old else [])], default=0)
    return RestoreEnv(sg.name, sg.log_prefix, _log_random(host, sg, logs, old), names, first,
                      last, backup_set)  # fmt: skip


def _log_random(
    host: ExchangeHost, sg: StorageGroup, logs: dict[str, bytes], old: RestoreEnv | None
) -> int:
    """The signature of the logs restored — the source server's stream on an alternate
    server, not the recovery server's own — which hard recovery replays."""
    for data in logs.values():
        header = ese.read_header(data)
        if isinstance(header, ese.LogHeader):
            return int(header.signature.random)
    return old.log_random if old else int(host.streams[sg.name].sig.random)


def _generation(data: bytes) -> int:
    header = ese.read_header(data)
    return header.generation if isinstance(header, ese.LogHeader) else 0


def hard_recovery(host: ExchangeHost, temp: str, *, play_forward: bool) -> str:
    """``eseutil /cc TEMP`` (``/t`` when not ``play_forward``): replay the restore folder's
    logs into the restored databases, then — unless ``/t`` — the storage group's own logs;
    each database ends Clean Shutdown; ``restore.env`` and the restored logs are removed."""
    from dr.lab.exhost import _replay_into

    folder = host.fs.host_path(temp)
    env_path = folder / RESTORE_ENV
    if not env_path.exists():
        raise FileNotFoundError(f"{temp}\\{RESTORE_ENV}")
    env = RestoreEnv.parse(env_path.read_text(encoding="utf-8"), str(env_path))
    sg = next(g for g in host.groups() if g.name == env.storage_group)
    logs = _logs_in(folder, env.prefix)
    if play_forward:
        live = _logs_in(host.log_dir(host.streams[sg.name]), env.prefix)
        logs.update({g: p for g, p in live.items() if g not in logs})
    done = []
    for db in sg.databases:
        if db.name not in env.databases:
            continue
        path = host.path(db.edb)
        header = exstore.read_db_header(path)
        last, dbtime = _replay_into(path, header, logs)
        _mark_clean(host, path, header, last, dbtime)
        host.dbs[host.db_key(sg, db)].dbtime = dbtime
        done.append(db.name)
    for gen_path in _logs_in(folder, env.prefix).values():
        gen_path.unlink()
    env_path.unlink()
    host.save()
    return ", ".join(done)


def describe_restore_env(host: ExchangeHost, temp: str) -> list[str]:
    """``eseutil /cm TEMP``: the restore folder, the databases restored and their files,
    the log range and the recovery status (not started: a finished one removes the file)."""
    path = host.fs.host_path(temp) / RESTORE_ENV
    if not path.exists():
        raise FileNotFoundError(f"{temp}\\{RESTORE_ENV}")
    env = RestoreEnv.parse(path.read_text(encoding="utf-8"), str(path))
    sg = next(g for g in host.groups() if g.name == env.storage_group)
    lines = [f"Restore log file: {temp}", "", f"Restore Path: {temp}",
             "Annotation: Microsoft Information Store", f"Backup Instance: {sg.name}",
             "Target Instance:", "", f"Databases: {len(env.databases)} database(s)"]  # fmt: skip
    for db in (d for d in sg.databases if d.name in env.databases):
        files = " ".join(p for p in (db.edb, db.stm) if p)
        lines += [f"Database Name: {db.name}", f"Source Files: {files}",
                  f"Destination Files: {files}", ""]  # fmt: skip
    name = f"{env.prefix}{{:05X}}.log"
    lines += [f"Log files range: {name.format(env.first)} - {name.format(env.last)}",
              f"Backup Set: {env.backup_set}", "", "Recover Status: recoverNotStarted",
              "Recover Error: 0x00000000"]  # fmt: skip
    return lines


def _logs_in(folder: Path, prefix: str) -> dict[int, Path]:
    """Every log of the stream ``prefix`` in ``folder`` by generation, the current one too."""
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        name = path.name.lower()
        if name.startswith(prefix.lower()) and name.endswith(".log"):
            found[exstore.read_log(path).generation] = path
    return found


def _mark_clean(host: ExchangeHost, path: Path, header: ese.DatabaseHeader, last: int,
                dbtime: int) -> None:  # fmt: skip
    now = ese.LogTime.from_datetime(host.clock())
    exstore.write_header(path, replace(
        header, state=ese.DbState.CLEAN_SHUTDOWN, gen_min_required=0, gen_max_required=0,
        dbtime=dbtime, last_consistent=ese.LgPos(last + 1), consistent_time=now,
        last_detach=ese.LgPos(last + 1), detach_time=now,
    ))  # fmt: skip
