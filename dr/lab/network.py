"""Whether a lab host answers on the network: the ``unreachable`` fault.

A host that drops off the network mid-run — its switch port dies, its NIC resets, WinRM
stops — leaves the orchestrator with a command whose answer never came: it may have run to
its end on the host, or not at all. The lab models the worst case, the one an orchestrator
must survive: the chosen command runs on the host to its end, and the host stops answering
just before its result would go back. From then on every connection is refused (the
listener is gone), as pywinrm sees a host whose WinRM listener is down, until the fault is
repaired.

The state lives in ``<host>/.lab/network.json``, beside the host's own state, because two
processes share it: ``dr lab break`` / ``dr lab repair`` write it, and ``dr lab serve``
reads it (each time a command ends, and twice a second) and writes it when the host drops.

* ``{"down": true, ...}`` — the host does not answer now;
* ``{"after": N}`` — it answers N more commands, then drops during the next one (which runs
  to its end; its answer is lost);
* ``{"at_command": REGEX}`` — it drops during the first command whose script matches REGEX
  (case-insensitive), after running it;
* ``{"at_script": TEXT, "at_step": ID}`` — it drops during the first command whose script
  holds TEXT, a plan step's rendered command (``dr lab break unreachable --at-step``).

A step runs one command, then its verify check (another command), and a file transfer
runs several: the lab sees commands, never steps, so it counts commands.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["Reachability"]


class Reachability:
    """One host's network state, read from and written to its ``network.json``."""

    def __init__(self, host_root: Path) -> None:
        self.path = Path(host_root) / ".lab" / "network.json"
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, data: dict[str, Any]) -> None:
        if not data:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)

    def is_down(self) -> bool:
        return bool(self.read().get("down"))

    def break_(
        self,
        after: int | None = None,
        at_command: str | None = None,
        at_script: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Arm the fault (or drop now, with no option); returns what was written.
        ``at_script`` is (step id, the script its command sends)."""
        if at_script is not None:
            data: dict[str, Any] = {"at_step": at_script[0], "at_script": at_script[1].strip()}
        elif at_command is not None:
            re.compile(at_command)  # a bad pattern fails here, at the command line
            data = {"at_command": at_command}
        elif after is not None:
            data = {"after": int(after)}
        else:
            data = {"down": True, "since": _now(), "during": None}
        self.write(data)
        return data

    def repair(self) -> bool:
        """The host answers again; False if it was not down nor armed."""
        was = bool(self.read())
        self.write({})
        return was

    def command_ended(self, script: str) -> bool:
        """A command ran to its end on the host: True when the host drops now (its answer
        is lost), with the state written for ``dr lab status`` and ``dr lab repair``."""
        with self._lock:
            data = self.read()
            if not data or data.get("down"):
                return False
            pattern = data.get("at_command")
            if data.get("at_script"):
                if str(data["at_script"]) not in script:
                    return False
            elif pattern is not None:
                if not re.search(str(pattern), script, re.IGNORECASE):
                    return False
            elif data.get("after") is not None:
                left = int(data["after"])
                if left > 0:
                    self.write({**data, "after": left - 1})
                    return False
            else:
                return False
            first = next((line.strip() for line in script.splitlines() if line.strip()), "")
            self.write({**data, "down": True, "since": _now(), "during": first[:200]})
            return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
