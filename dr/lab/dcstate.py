"""The state of a lab domain controller, kept in its ``dc.json`` between processes.

``dr lab serve`` answers over WinRM while ``dr lab break`` and ``dr lab operator`` change the
same domain controller from other processes, so every command reads the state first and
writes it after. :class:`DcState` holds:

* ``machine`` — the :class:`dr.lab.machine.Machine` (its boot time);
* ``safeboot`` — what ``bcdedit /set {current} safeboot`` set (``dsrepair`` or ``''``);
* ``mode`` — how it last started: ``normal`` or ``dsrm`` (Directory Services Restore Mode);
* ``ntds`` — ``ok``, or ``unusable`` after ``dr lab break lose-dc`` (the database damaged:
  NTDS does not start; only a system state restore brings it back);
* ``catalog`` — whether the local Windows Server Backup catalog is readable (``lose-dc``
  damages it with the system volume; ``wbadmin`` then needs ``-backupTarget``);
* ``copy`` — this domain controller's own copy of the directory while it is out of
  replication (in DSRM, restored); None while it holds what its partners hold;
* ``restored`` — the backup the copy came from (its version identifier, time, and whether
  SYSVOL was restored as primary, ``-authsysvol``);
* ``sysvol_ready`` — SYSVOL shared (False after a non-authoritative restore with no partner
  to take SYSVOL from: the domain controller waits and does not advertise);
* ``console`` — who is signed in at the console (``dr lab operator dsrm-sign-in``);
* ``going_down`` — the wall-clock time it last restarted into DSRM: the requests of the
  session that restarted it are still answered for a moment, as Windows takes a while to
  go down after ``Restart-Computer``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dr.lab.machine import Machine

__all__ = ["DcState"]


@dataclass
class DcState:
    machine: Machine
    safeboot: str = ""
    mode: str = "normal"
    ntds: str = "ok"
    catalog: bool = True
    copy: dict[str, Any] | None = None
    restored: dict[str, Any] | None = None
    sysvol_ready: bool = True
    console: str = ""
    going_down: float = 0.0
    history: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, *, domain: str, boot: str) -> DcState:
        if not path.exists():
            return cls(machine=Machine(domain=domain, boot=boot))
        data = json.loads(path.read_text(encoding="utf-8"))
        data["machine"] = Machine(**data["machine"])
        return cls(**data)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)

    @property
    def replicating(self) -> bool:
        """Running normally with a working directory: a partner others replicate with."""
        return self.machine.present and self.mode == "normal" and self.ntds == "ok"
